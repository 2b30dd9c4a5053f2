package pooling_test

// Graceful shutdown: new connections are refused at once, idle clients are
// told 57P01 at once, a client inside a transaction may still COMMIT before
// the deadline and is then told 57P01; a transaction still open at the
// deadline is closed with 57P01 and rolled back.

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// readGoodbye waits (reading only) for what the proxy sends an idle
// client and returns it as an error.
func readGoodbye(ctx context.Context, conn *pgx.Conn, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return conn.PgConn().WaitForNotification(wctx)
}

// startShutdown runs n.Shutdown with a deadline in the background.
func startShutdown(n *node.Node, drain time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		done <- n.Shutdown(ctx)
	}()
	return done
}

// requireRefused checks that a new client cannot log in.
func requireRefused(t *testing.T, ctx context.Context, n *node.Node) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatal("a new client logged in during shutdown")
	}
	if testenv.PGCode(err) != "57P01" && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a new client during shutdown: %v; want connection refused or 57P01", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	n := startNode(t, func(c *config.Config) { txPool(4)(c) }, node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	admin := testenv.Connect(t, ctx, directURL())
	mustExec(t, ctx, admin, "drop table if exists shutdown_t; create table shutdown_t (x int)")

	inTx := testenv.Connect(t, ctx, proxyURL(n))
	idle := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, idle, "select 1")
	mustExec(t, ctx, inTx, "begin")
	mustExec(t, ctx, inTx, "insert into shutdown_t values (1)")

	began := time.Now()
	shutdown := startShutdown(n, 2*time.Second)

	// The idle client is told at once.
	err := readGoodbye(ctx, idle, 5*time.Second)
	testenv.RequireCode(t, err, "57P01")
	if d := time.Since(began); d > time.Second {
		t.Errorf("the idle client was told after %s; want at once (well before the 2s deadline)", d)
	}
	requireRefused(t, ctx, n)

	// The client in a transaction finishes it, and is then told.
	mustExec(t, ctx, inTx, "insert into shutdown_t values (2)")
	if _, err := inTx.Exec(ctx, "commit"); err != nil {
		t.Fatalf("COMMIT during shutdown: %v", err)
	}
	testenv.RequireCode(t, readGoodbye(ctx, inTx, 5*time.Second), "57P01")
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v; want nil (every client finished before the deadline)", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not return")
	}
	var count int
	if err := admin.QueryRow(ctx, "select count(*) from shutdown_t").Scan(&count); err != nil || count != 2 {
		t.Errorf("committed rows: %d, %v; want 2", count, err)
	}
	// The pool's server connections are closed.
	super := testenv.Connect(t, ctx, superURL())
	testenv.WaitFor(t, ctx, "the proxy's server connections to close", func() (bool, error) {
		var k int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity where usename = 'app'
			and backend_type = 'client backend' and pid <> $1`, int(admin.PgConn().PID())).Scan(&k)
		return k == 0, err
	})
}

func TestShutdownDeadlineEndsTransaction(t *testing.T) {
	n := startNode(t, func(c *config.Config) { txPool(4)(c) }, node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	admin := testenv.Connect(t, ctx, directURL())
	mustExec(t, ctx, admin, "drop table if exists shutdown_d; create table shutdown_d (x int)")

	open := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, open, "begin")
	mustExec(t, ctx, open, "insert into shutdown_d values (1)")
	const drain = 500 * time.Millisecond
	began := time.Now()
	shutdown := startShutdown(n, drain)
	testenv.RequireCode(t, readGoodbye(ctx, open, 5*time.Second), "57P01")
	if d := time.Since(began); d < drain {
		t.Errorf("the client in a transaction was closed after %s, before the %s deadline", d, drain)
	}
	select {
	case err := <-shutdown:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v; want the deadline's error", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not return")
	}
	super := testenv.Connect(t, ctx, superURL())
	testenv.WaitFor(t, ctx, "the open transaction to be rolled back", func() (bool, error) {
		var k int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity where usename = 'app'
			and state like 'idle in transaction%'`).Scan(&k)
		return k == 0, err
	})
	var count int
	if err := admin.QueryRow(ctx, "select count(*) from shutdown_d").Scan(&count); err != nil || count != 0 {
		t.Errorf("rows of the unfinished transaction: %d, %v; want 0", count, err)
	}
}
