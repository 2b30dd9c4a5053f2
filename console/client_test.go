package console_test

// Real clients against the console in-process: a wire.Server on loopback
// with console.Serve as its handler (as the node will route database
// "shardproxy"), then pgx in every query mode and, when installed, psql.
// No PostgreSQL is needed: the console answers everything itself.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/console"
	"github.com/shardproxy/shardproxy/wire"
)

const adminPassword = "secret"

type consoleHandler struct{ src console.Source }

func (h consoleHandler) Serve(ctx context.Context, c *wire.Conn) error {
	return console.Serve(ctx, c, h.src)
}

func (consoleHandler) Cancel(context.Context, uint32, uint32) {}

// serve starts a wire server whose every session is a console session;
// "admin" is an admin user, "app" is not. It returns the listen address.
func serve(t *testing.T, src console.Source) string {
	t.Helper()
	users := map[string]wire.UserAuth{}
	for name, admin := range map[string]bool{"admin": true, "app": false} {
		v, err := wire.NewSCRAMVerifier(adminPassword, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = wire.UserAuth{Verifier: v, Admin: admin}
	}
	srv, err := wire.NewServer(wire.Config{
		MaxMessageSize: 1 << 20,
		LoginTimeout:   10 * time.Second,
		LookupUser: func(name string) (wire.UserAuth, bool) {
			ua, ok := users[name]
			return ua, ok
		},
	}, consoleHandler{src: src})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func consoleURL(addr, user string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, adminPassword, addr, console.Database)
}

func connect(t *testing.T, ctx context.Context, url string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// queryRows runs q and renders its rows as "a|b|c" lines.
func queryRows(ctx context.Context, conn *pgx.Conn, q string) ([]string, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				cells[i] = "NULL"
			} else {
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out, rows.Err()
}

func TestPgx(t *testing.T) {
	addr := serve(t, fixture())
	want := map[string][]string{
		"SHOW SHARDS":   {"s1|primary|10.0.0.1|5432", "s1|replica|10.0.0.11|5433", "s2|primary|::1|5434"},
		"SHOW RANGES":   {"-9223372036854775808|0|s1", "0||s2"},
		"SHOW TABLES":   {"public|orders|sharded|customer_id", "public|countries|reference|"},
		"SHOW POOLS":    {"app|app|s1|10.0.0.1:5432|3|1|2", "app|app||10.9.9.9:5432|0|0|0"},
		"SHOW REPLICAS": {"s1|10.0.0.11|5433|configured|NULL"},
		"SHOW NODES": {"n1|10.0.1.1:6432|10.0.1.1:8080|10.0.1.1:7000|leader|7",
			"n2|10.0.1.2:6432|10.0.1.2:8080|10.0.1.2:7000|follower|NULL"},
		"show version;": {"shardproxy 1.2.3"},
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn := connect(t, ctx, consoleURL(addr, "admin"), mode)
			for q, w := range want {
				// Twice: the second run uses the statement caches.
				for range 2 {
					got, err := queryRows(ctx, conn, q)
					if err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					if !slices.Equal(got, w) {
						t.Errorf("%s:\n got %q\nwant %q", q, got, w)
					}
				}
			}
			var n int64
			if err := conn.QueryRow(ctx, "SHOW POOLS").Scan(nil, nil, nil, nil, &n, nil, nil); err != nil || n != 3 {
				t.Errorf("scanning a count: %d, %v", n, err)
			}
			_, err := conn.Exec(ctx, "SELECT 1")
			requireCode(t, err, "0A000")
			_, err = queryRows(ctx, conn, "SHOW SHARD")
			requireCode(t, err, "42601")
			if got, err := queryRows(ctx, conn, "SHOW VERSION"); err != nil || len(got) != 1 {
				t.Errorf("after errors: %q, %v", got, err)
			}
		})
	}
}

// TestPgconnMultiStatement: one simple query of several statements yields
// one result each, like PgBouncer's console.
func TestPgconnMultiStatement(t *testing.T) {
	addr := serve(t, fixture())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := connect(t, ctx, consoleURL(addr, "admin"), pgx.QueryExecModeSimpleProtocol)
	results, err := conn.PgConn().Exec(ctx, "SHOW VERSION; SHOW REPLICAS; -- done").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	if got := string(results[0].Rows[0][0]); got != "shardproxy 1.2.3" {
		t.Errorf("first result %q", got)
	}
	if got := string(results[1].FieldDescriptions[3].Name); got != "state" || len(results[1].Rows) != 1 {
		t.Errorf("second result: column %q, %d rows", got, len(results[1].Rows))
	}
}

func TestPgxNotAdmin(t *testing.T) {
	addr := serve(t, fixture())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(consoleURL(addr, "app"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatal("a non-admin user reached the console")
	}
	requireCode(t, err, "42501")
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want SQLSTATE %s, got %v", code, err)
	}
	if pe.Code != code {
		t.Fatalf("want SQLSTATE %s, got %s: %s", code, pe.Code, pe.Message)
	}
}

// TestPsql drives the psql binary: unaligned output so rows compare as
// lines, several statements in one -c, and an error with its hint.
func TestPsql(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("psql is required (make test installs postgresql-client-15): %v", err)
	}
	addr := serve(t, fixture())
	url := consoleURL(addr, "admin")
	out, stderr, err := psql(t, url, "-c", "SHOW SHARDS; show version")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, stderr)
	}
	want := "s1|primary|10.0.0.1|5432\ns1|replica|10.0.0.11|5433\ns2|primary|::1|5434\nshardproxy 1.2.3\n"
	if out != want {
		t.Errorf("psql printed\n%s\nwant\n%s", out, want)
	}
	for _, q := range []string{"SHOW RANGES", "SHOW TABLES", "SHOW POOLS", "SHOW REPLICAS", "SHOW NODES", "SHOW HELP"} {
		if _, stderr, err := psql(t, url, "-c", q); err != nil {
			t.Errorf("psql -c %q: %v\n%s", q, err, stderr)
		}
	}
	_, stderr, err = psql(t, url, "-c", "SHOW SHARD")
	if err == nil || !strings.Contains(stderr, "unrecognized console command") || !strings.Contains(stderr, "HINT:") {
		t.Errorf("psql -c 'SHOW SHARD': %v\n%s", err, stderr)
	}
	_, stderr, err = psql(t, consoleURL(addr, "app"), "-c", "SHOW SHARDS")
	if err == nil || !strings.Contains(stderr, "permission denied") {
		t.Errorf("psql as a non-admin: %v\n%s", err, stderr)
	}
}

func psql(t *testing.T, url string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", append([]string{"-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PAGER=", "PSQL_PAGER=", "LC_ALL=C.UTF-8")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
