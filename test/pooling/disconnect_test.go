package pooling_test

// What a client leaves behind on the ONE server connection it shares: a
// transaction abandoned by a vanished client, a statement still running
// when the client vanished, and a transaction left idle past
// limits.idle_transaction_timeout. The next client must get a clean
// connection that is not inside anybody's transaction.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
)

// checkCleanConnection checks that conn's statements run outside any
// transaction and that table holds no rows.
func checkCleanConnection(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) {
	t.Helper()
	var count int
	var fresh, noXID bool
	// now() is the transaction's start: equal to the statement's start
	// only in a transaction that began with this statement (in one Query
	// message: the simple protocol). The abandoned transaction wrote, so
	// it had a transaction id; this statement's has none.
	if err := conn.QueryRow(ctx, "select count(*), now() = statement_timestamp(), pg_current_xact_id_if_assigned() is null from "+table,
		pgx.QueryExecModeSimpleProtocol).Scan(&count, &fresh, &noXID); err != nil {
		t.Fatalf("the next client: %v", err)
	}
	if count != 0 {
		t.Errorf("%s has %d rows: the abandoned transaction was not rolled back", table, count)
	}
	if !fresh || !noXID {
		t.Errorf("the next client's statement ran inside an older transaction (now() = statement_timestamp(): %v, no xid: %v)", fresh, noXID)
	}
	// And a transaction of its own works.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into "+table+" values (2)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitNoIdleInTransaction waits until no app backend is idle in a
// transaction.
func waitNoIdleInTransaction(t *testing.T, ctx context.Context, super *pgx.Conn) {
	t.Helper()
	testenv.WaitFor(t, ctx, "no app backend idle in transaction", func() (bool, error) {
		var n int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
			where usename = 'app' and state like 'idle in transaction%'`).Scan(&n)
		return n == 0, err
	})
}

func TestClientVanishesInTransaction(t *testing.T) {
	n := startNode(t, txPool(1), node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	admin := testenv.Connect(t, ctx, directURL())
	mustExec(t, ctx, admin, "drop table if exists vanish; create table vanish (x int)")

	a := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, a, "begin")
	mustExec(t, ctx, a, "insert into vanish values (1)")
	// The socket closes without a Terminate message.
	if err := a.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	b := testenv.Connect(t, ctx, proxyURL(n))
	checkCleanConnection(t, ctx, b, "vanish")
	waitNoIdleInTransaction(t, ctx, super)
}

func TestClientVanishesMidStatement(t *testing.T) {
	n := startNode(t, txPool(1), node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	admin := testenv.Connect(t, ctx, directURL())
	mustExec(t, ctx, admin, "drop table if exists vanish2; create table vanish2 (x int)")

	a := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, a, "begin")
	mustExec(t, ctx, a, "insert into vanish2 values (1)")
	done := make(chan error, 1)
	go func() {
		_, err := a.Exec(ctx, "select pg_sleep(30) /* vanishing */")
		done <- err
	}()
	testenv.WaitActive(t, ctx, super, "/* vanishing */")
	if err := a.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitErr(t, ctx, done); err == nil {
		t.Fatal("the statement of a closed connection succeeded")
	}
	// The next client is served promptly (the sleeping statement is not
	// waited for) on a clean connection.
	b := testenv.Connect(t, ctx, proxyURL(n))
	checkCleanConnection(t, ctx, b, "vanish2")
	testenv.WaitFor(t, ctx, "the abandoned statement to end on the server", func() (bool, error) {
		var n int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
			where usename = 'app' and query like '%/* vanishing */%' and state = 'active'`).Scan(&n)
		return n == 0, err
	})
}

func TestIdleTransactionTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n := startNode(t, func(c *config.Config) {
		txPool(1)(c)
		c.Limits.IdleTransactionTimeout = timeout
	}, node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	admin := testenv.Connect(t, ctx, directURL())
	mustExec(t, ctx, admin, "drop table if exists idle_tx; create table idle_tx (x int)")

	a := testenv.Connect(t, ctx, proxyURL(n))
	// Statements inside a transaction, each within the limit, are fine.
	mustExec(t, ctx, a, "begin")
	mustExec(t, ctx, a, "insert into idle_tx values (1)")
	began := time.Now()
	// Then the client waits. WaitForNotification only reads, so it sees
	// what the proxy sends: the FATAL error, then the end of the stream.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := a.PgConn().WaitForNotification(wctx)
	waited := time.Since(began)
	pe := testenv.RequireCode(t, err, "25P03")
	if pe.Severity != "FATAL" {
		t.Errorf("severity %s, want FATAL", pe.Severity)
	}
	// The proxy's clock starts when it has sent the answer, a little
	// before the client has it (began): the wait seen here can fall short
	// of the timeout by that delivery time, never by a tenth of it.
	if waited < timeout-timeout/10 {
		t.Errorf("the connection was closed after %s, before the %s timeout", waited, timeout)
	}
	if _, err := a.Exec(ctx, "select 1"); err == nil {
		t.Error("the timed-out connection still runs statements")
	}

	// The next client gets the pool's connection, rolled back.
	b := testenv.Connect(t, ctx, proxyURL(n))
	checkCleanConnection(t, ctx, b, "idle_tx")
	waitNoIdleInTransaction(t, ctx, super)

	// A client idle outside a transaction is not affected.
	c := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, c, "select 1")
	wctx2, cancel2 := context.WithTimeout(ctx, 3*timeout)
	defer cancel2()
	if err := c.PgConn().WaitForNotification(wctx2); !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
		t.Errorf("an idle client outside a transaction: %v, want only our own deadline", err)
	}
	// pgx closes a connection whose wait timed out; open another to check
	// the proxy still serves this user.
	d := testenv.Connect(t, ctx, proxyURL(n))
	mustExec(t, ctx, d, "select 1")
}
