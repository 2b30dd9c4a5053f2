package pooling_test

// Second review: server-side failures (pg_terminate_backend), LISTEN in
// session pooling, query_timeout against a client's own statement_timeout,
// and cancel keys. Each was written against a bug a review found.
//
//	go test -count=1 ./test/pooling/ -run TestReview2 -v

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/backend"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// terminate kills a backend from a superuser connection and waits until it
// is gone from pg_stat_activity.
func terminate(t *testing.T, ctx context.Context, super *pgx.Conn, pid uint32) {
	t.Helper()
	mustExec(t, ctx, super, "select pg_terminate_backend($1)", int(pid))
	testenv.WaitFor(t, ctx, "backend to exit", func() (bool, error) {
		var n int
		err := super.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", int(pid)).Scan(&n)
		return n == 0, err
	})
}

func backendPID(t *testing.T, ctx context.Context, c *pgx.Conn) uint32 {
	t.Helper()
	var pid uint32
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// listenThenTerminate: a client LISTENs and waits for notifications; its
// server backend is terminated. Returns the wait's error (nil never: a
// notification cannot arrive) and how long it took.
func listenThenTerminate(t *testing.T, ctx context.Context, url string) (error, time.Duration) {
	super := testenv.Connect(t, ctx, superURL())
	c := testenv.Connect(t, ctx, url)
	mustExec(t, ctx, c, "listen rv2_term")
	pid := backendPID(t, ctx, c)
	done := make(chan error, 1)
	wctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	began := time.Now()
	go func() {
		_, err := c.WaitForNotification(wctx)
		done <- err
	}()
	terminate(t, ctx, super, pid)
	err := testenv.WaitErr(t, ctx, done)
	return err, time.Since(began)
}

// Fixed (was a hang). Session pooling, a LISTENing client idle in
// WaitForNotification, its server backend terminated. PostgreSQL sends
// FATAL 57P01 at once and the client's wait ends with it. Through the
// proxy, the idle watcher (router/listen.go watchServer) reads the
// ErrorResponse, treats it as "unexpected", returns and drops it; nothing
// is sent to the client, whose wait never ends (here: until its own 4s
// deadline).
func TestReview2ListenServerTerminated(t *testing.T) {
	ctx := testenv.TestCtx(t, 30*time.Second)
	directErr, _ := listenThenTerminate(t, ctx, directURL())
	if testenv.PGCode(directErr) != "57P01" {
		t.Fatalf("direct: want 57P01, got %v", directErr)
	}
	n := startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolSession
		c.Pool.Size = 2
	}, node.Options{})
	proxyErr, took := listenThenTerminate(t, ctx, proxyURL(n))
	if errors.Is(proxyErr, context.DeadlineExceeded) || testenv.PGCode(proxyErr) != "57P01" {
		t.Errorf("through the proxy the waiting client got %v after %s; PostgreSQL gives FATAL 57P01 at once (direct: %v)",
			proxyErr, took.Round(time.Millisecond), directErr)
	}
}

// PASSES. Transaction pooling, ONE server connection: the server backend is
// terminated while the client is idle (pooled), idle in a transaction,
// and mid-query. The client sees what PostgreSQL would say (57P01), and
// the pool recovers for another client.
func TestReview2TerminateBackend(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = 1
		c.Pool.WaitTimeout = 3 * time.Second
	}, node.Options{})
	ctx := testenv.TestCtx(t, 60*time.Second)
	super := testenv.Connect(t, ctx, superURL())

	t.Run("idle_pooled", func(t *testing.T) {
		a := testenv.Connect(t, ctx, proxyURL(n))
		mustExec(t, ctx, a, "set work_mem = '21MB'")
		terminate(t, ctx, super, backendPID(t, ctx, a))
		if got := scalar(t, ctx, a, "show work_mem"); got != "21MB" {
			t.Errorf("after its pooled server died, the client's work_mem is %q, want 21MB", got)
		}
	})

	t.Run("idle_in_transaction", func(t *testing.T) {
		// Direct baseline.
		d := testenv.Connect(t, ctx, directURL())
		mustExec(t, ctx, d, "begin")
		terminate(t, ctx, super, backendPID(t, ctx, d))
		_, derr := d.Exec(ctx, "select 1")

		a := testenv.Connect(t, ctx, proxyURL(n))
		mustExec(t, ctx, a, "begin")
		terminate(t, ctx, super, backendPID(t, ctx, a))
		_, perr := a.Exec(ctx, "select 1")
		if testenv.PGCode(perr) != testenv.PGCode(derr) {
			t.Errorf("idle in transaction, server terminated: proxy gives %v, PostgreSQL %v", perr, derr)
		}
		b := testenv.Connect(t, ctx, proxyURL(n))
		if got := scalar(t, ctx, b, "select 'b ok'"); got != "b ok" {
			t.Errorf("another client: %q", got)
		}
	})

	t.Run("mid_query", func(t *testing.T) {
		d := testenv.Connect(t, ctx, directURL())
		dpid := backendPID(t, ctx, d)
		ddone := make(chan error, 1)
		go func() { _, err := d.Exec(ctx, "select pg_sleep(20) /* rv2_direct */"); ddone <- err }()
		testenv.WaitActive(t, ctx, super, "rv2_direct")
		terminate(t, ctx, super, dpid)
		derr := testenv.WaitErr(t, ctx, ddone)

		a := testenv.Connect(t, ctx, proxyURL(n))
		b := testenv.Connect(t, ctx, proxyURL(n))
		adone := make(chan error, 1)
		go func() { _, err := a.Exec(ctx, "select pg_sleep(20) /* rv2_proxy */"); adone <- err }()
		testenv.WaitActive(t, ctx, super, "rv2_proxy")
		var pid int
		if err := super.QueryRow(ctx, "select pid from pg_stat_activity where query like '%rv2_proxy%' and pid <> pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		// B waits for the only server connection meanwhile.
		bdone := make(chan error, 1)
		go func() { _, err := b.Exec(ctx, "select 1"); bdone <- err }()
		terminate(t, ctx, super, uint32(pid))
		perr := testenv.WaitErr(t, ctx, adone)
		if testenv.PGCode(perr) != testenv.PGCode(derr) {
			t.Errorf("mid-query terminate: proxy gives %v, PostgreSQL %v", perr, derr)
		}
		if err := testenv.WaitErr(t, ctx, bdone); err != nil {
			t.Errorf("the waiting client B failed after A's server died: %v", err)
		}
	})
}

// PASSES. limits.query_timeout against a client's own statement_timeout, with two
// clients on one server connection.
func TestReview2QueryTimeout(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = 1
		c.Limits.QueryTimeout = 300 * time.Millisecond
	}, node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, a, "set statement_timeout = '5s'")
	if _, err := a.Exec(ctx, "select pg_sleep(0.6)"); err != nil {
		t.Errorf("A raised its own statement_timeout to 5s, yet: %v", err)
	}
	_, err := b.Exec(ctx, "select pg_sleep(0.6)")
	if testenv.PGCode(err) != "57014" {
		t.Errorf("B (query_timeout 300ms) after A's SET on the same server: want 57014, got %v", err)
	}
	mustExec(t, ctx, a, "reset statement_timeout")
	_, err = a.Exec(ctx, "select pg_sleep(0.6)")
	if testenv.PGCode(err) != "57014" {
		t.Errorf("A after RESET statement_timeout: want 57014 (query_timeout), got %v", err)
	}
}

// PASSES. A cancel with a wrong secret, or with another idle client's key, must
// not cancel A's query.
func TestReview2CancelKeys(t *testing.T) {
	n := startNode(t, txPool(2), node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))
	done := make(chan error, 1)
	go func() { _, err := a.Exec(ctx, "select pg_sleep(1) /* rv2_cancel */"); done <- err }()
	testenv.WaitActive(t, ctx, super, "rv2_cancel")
	ak := a.PgConn().SecretKey()
	bad := append([]byte(nil), ak...)
	bad[0] ^= 0xff
	if err := backend.SendCancel(ctx, n.Addr(), a.PgConn().PID(), bad); err != nil {
		t.Fatal(err)
	}
	if err := backend.SendCancel(ctx, n.Addr(), b.PgConn().PID(), b.PgConn().SecretKey()); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitErr(t, ctx, done); err != nil {
		t.Errorf("A's query was cancelled by a wrong key / another client's key: %v", err)
	}
}
