package clients_test

// TLS between clients and the proxy: with a certificate configured,
// sslmode=require gets an encrypted connection (and cancel requests work
// over TLS too); without one, sslmode=require fails clearly while prefer
// and disable connect in plaintext.

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
	"github.com/shardproxy/shardproxy/testcert"
)

// selfSignedCert writes a certificate and key for 127.0.0.1 into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	c, err := testcert.New("shardproxy test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = c.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// urlWithSSL is the app user's URL through n with the given sslmode.
func urlWithSSL(n *node.Node, mode string) string {
	return strings.Replace(testenv.URL(n, testenv.AppUser, testenv.AppPassword), "sslmode=disable", "sslmode="+mode, 1)
}

func TestTLS(t *testing.T) {
	cert, key := selfSignedCert(t, t.TempDir())
	n := startNode(t, func(c *config.Config) { c.TLS = &config.TLS{Cert: cert, Key: key} })
	ctx := testenv.TestCtx(t, 30*time.Second)

	for _, mode := range []string{"require", "prefer"} {
		t.Run("sslmode="+mode, func(t *testing.T) {
			conn := testenv.Connect(t, ctx, urlWithSSL(n, mode))
			tc, ok := conn.PgConn().Conn().(*tls.Conn)
			if !ok {
				t.Fatalf("the connection is a %T, not TLS", conn.PgConn().Conn())
			}
			if st := tc.ConnectionState(); !st.HandshakeComplete || st.Version < tls.VersionTLS12 {
				t.Fatalf("TLS state: handshake %v, version %x", st.HandshakeComplete, st.Version)
			}
			checkUsable(t, ctx, conn)
			// A large result crosses many TLS records.
			var l int
			if err := conn.QueryRow(ctx, "select length(string_agg(md5(i::text), '')) from generate_series(1, 20000) i").Scan(&l); err != nil || l != 640000 {
				t.Fatalf("large result over TLS: %d, %v", l, err)
			}
		})
	}

	t.Run("psql", func(t *testing.T) {
		out := psql(t, ctx, urlWithSSL(n, "require"), "-c", `\conninfo`)
		if !strings.Contains(out, "SSL connection (protocol: TLSv1.3") {
			t.Fatalf("psql \\conninfo with sslmode=require: %s", out)
		}
	})

	t.Run("cancel over TLS", func(t *testing.T) {
		super := testenv.Connect(t, ctx, superURL())
		conn := testenv.Connect(t, ctx, urlWithSSL(n, "require"))
		done := make(chan error, 1)
		go func() {
			_, err := conn.Exec(ctx, "select pg_sleep(10) /* tls */")
			done <- err
		}()
		testenv.WaitActive(t, ctx, super, "pg_sleep(10) /* tls */")
		if err := conn.PgConn().CancelRequest(ctx); err != nil {
			t.Fatalf("CancelRequest over TLS: %v", err)
		}
		testenv.RequireCode(t, testenv.WaitErr(t, ctx, done), "57014")
		checkUsable(t, ctx, conn)
	})
}

func TestWithoutTLS(t *testing.T) {
	n := startNode(t, nil)
	ctx := testenv.TestCtx(t, 30*time.Second)

	t.Run("sslmode=require", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(urlWithSSL(n, "require"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnectTimeout = 10 * time.Second
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_ = conn.Close(ctx)
			t.Fatal("sslmode=require connected to a proxy without TLS")
		}
		if !strings.Contains(err.Error(), "refused TLS") {
			t.Fatalf("sslmode=require: want an error saying the server refused TLS, got: %v", err)
		}
	})
	for _, mode := range []string{"prefer", "disable", "allow"} {
		t.Run("sslmode="+mode, func(t *testing.T) {
			conn := testenv.Connect(t, ctx, urlWithSSL(n, mode))
			if _, isTLS := conn.PgConn().Conn().(*tls.Conn); isTLS {
				t.Fatal("a TLS connection to a proxy without TLS")
			}
			checkUsable(t, ctx, conn)
		})
	}
}
