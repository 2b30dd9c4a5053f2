package pooling_test

// The package's shared cluster and the helpers every test in it uses.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// cluster is one shard without replicas, shared by every test here.
var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	c, err := testenv.StartCluster(1, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test cluster:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// startNode starts a node in front of the cluster with cfg adjusted by
// tune; it is shut down at cleanup.
func startNode(t *testing.T, tune func(*config.Config), opts node.Options) *node.Node {
	t.Helper()
	cfg := testenv.Config(cluster)
	cfg.DataDir = t.TempDir()
	if tune != nil {
		tune(cfg)
	}
	return testenv.StartNode(t, cfg, opts)
}

// txPool is the tune for transaction pooling with size server connections.
func txPool(size int) func(*config.Config) {
	return func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = size
	}
}

// testCtx bounds one test's network waits.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a pgx connection, closed at cleanup.
func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return connectConfig(t, ctx, cfg)
}

func connectConfig(t *testing.T, ctx context.Context, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to %s:%d as %s: %v", cfg.Host, cfg.Port, cfg.User, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

// proxyURL is the app user's URL through n.
func proxyURL(n *node.Node) string { return testenv.URL(n, testenv.AppUser, testenv.AppPassword) }

// directURL is the app user's URL straight to the shard's primary.
func directURL() string {
	return testenv.DirectURL(cluster, cluster.Shards[0].Primary, testenv.AppUser, testenv.AppPassword)
}

// superURL is the superuser's URL straight to the shard's primary.
func superURL() string { return cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database) }

// pgCode returns the SQLSTATE of err, "" when it carries none.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// requireCode fails unless err is a PostgreSQL error with SQLSTATE code.
func requireCode(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want SQLSTATE %s, got %v (%T)", code, err, err)
	}
	if pe.Code != code {
		t.Fatalf("want SQLSTATE %s, got %s: %s (hint %q)", code, pe.Code, pe.Message, pe.Hint)
	}
	return pe
}

// waitFor polls cond until it is true or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitActive waits until a backend of the app user runs a statement
// containing text (seen on a direct superuser connection).
func waitActive(t *testing.T, ctx context.Context, super *pgx.Conn, text string) {
	t.Helper()
	waitFor(t, ctx, "a backend running "+text, func() (bool, error) {
		var n int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
			where usename = 'app' and state = 'active' and query like '%' || $1 || '%'
			and pid <> pg_backend_pid()`, text).Scan(&n)
		return n > 0, err
	})
}

// waitErr waits for a goroutine's result within ctx.
func waitErr(t *testing.T, ctx context.Context, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatalf("the statement did not end: %v", ctx.Err())
		return nil
	}
}

// scalar runs a one-value query and returns the value as text.
func scalar(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// mustExec runs statements and fails the test on error.
func mustExec(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
