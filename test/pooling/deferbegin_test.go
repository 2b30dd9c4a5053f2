package pooling_test

// Deferred BEGIN (pool.defer_begin, on by default): the proxy answers a
// bare BEGIN and sends it with the block's first statement. Clients must
// see exactly what PostgreSQL answers, and a client inside a block that
// has not run a statement yet must not hold a server connection.

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// deferredBeginScript runs three clients over ONE server connection. With
// BEGIN sent eagerly, b's BEGIN would wait for the connection a holds; it
// does not, because only a block with a statement holds one.
func deferredBeginScript() []step {
	var s []step
	add := func(client string, sqls ...string) {
		for _, q := range sqls {
			s = append(s, step{client: client, sql: q})
		}
	}
	add("a", "BEGIN")
	add("b", "begin;")
	add("c", "START TRANSACTION")
	add("a", "select 1", "COMMIT")
	add("b", "ROLLBACK")                                  // a block without statements
	add("c", "end")                                       // COMMIT's tag
	add("a", "begin work", "BEGIN", "ABORT")              // a BEGIN inside a block: PostgreSQL's warning, tag BEGIN
	add("b", "BEGIN", "select 1/0", "select 1", "COMMIT") // ROLLBACK's tag
	add("c", "BEGIN", "show work_mem", "ROLLBACK")        // c's startup settings apply in the block
	add("a", "BEGIN")
	s = append(s, step{client: "a", sql: "select $1::int + 1", args: []string{"41"}}) // extended protocol inside
	add("a", "COMMIT")
	add("b", "BEGIN", "begin isolation level repeatable read", "commit") // not bare: the server answers
	add("c", "BEGIN ISOLATION LEVEL SERIALIZABLE", "show transaction_isolation", "COMMIT")
	add("a", "commit", "rollback") // outside a block: PostgreSQL's warnings
	return s
}

func TestDeferredBeginAnswersAsPostgres(t *testing.T) {
	got := compareScript(t, deferredBeginScript(), true)
	requireAnswered(t, got,
		"c> START TRANSACTION[] => START TRANSACTION",
		"b> ROLLBACK[] => ROLLBACK",
		"c> end[] => COMMIT",
		"b> COMMIT[] => ROLLBACK",
		"b> select 1[] => ERROR 25P02",
		"c> show work_mem[] => SHOW: 3MB",
		"a> select $1::int + 1[41] => SELECT 1: 42",
	)
}

// TestDeferredBeginHoldsNoServer: one server connection, a client sits in
// a block after BEGIN; another client's query gets the connection at once
// with defer_begin, and waits out the pool's wait timeout without it.
func TestDeferredBeginHoldsNoServer(t *testing.T) {
	for _, c := range []struct {
		name       string
		deferBegin bool
		want       string // the second client's outcome
	}{
		{"deferred", true, "1"},
		{"eager", false, "57P03"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := startNode(t, func(cfg *config.Config) {
				txPool(1)(cfg)
				cfg.Pool.WaitTimeout = 300 * time.Millisecond
				cfg.Pool.DeferBegin = c.deferBegin
			}, node.Options{})
			ctx := testenv.TestCtx(t, 30*time.Second)
			holder, other := connectRaw(t, n), connectRaw(t, n)
			if r := holder.Exec(ctx, "BEGIN"); r.Close() != nil {
				t.Fatal("BEGIN failed")
			}
			if holder.TxStatus() != 'T' {
				t.Fatalf("after BEGIN the client's status is %c, want T", holder.TxStatus())
			}
			got := ""
			res, err := other.Exec(ctx, "select 1").ReadAll()
			if err != nil {
				got = testenv.PGCode(err)
			} else {
				got = string(res[0].Rows[0][0])
			}
			if got != c.want {
				t.Fatalf("another client's query while one sits after BEGIN: %s, want %s", got, c.want)
			}
			// The block goes on as usual.
			for _, sql := range []string{"select 2", "COMMIT"} {
				if _, err := holder.Exec(ctx, sql).ReadAll(); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			if holder.TxStatus() != 'I' {
				t.Fatalf("after COMMIT the client's status is %c, want I", holder.TxStatus())
			}
		})
	}
}

// TestDeferredBlockFailedByProxy: a statement the proxy refuses before any
// server has the block fails the block as PostgreSQL would; the server
// then answers what follows from the same state.
func TestDeferredBlockFailedByProxy(t *testing.T) {
	n := startNode(t, txPool(2), node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	pc := connectRaw(t, n)
	for _, st := range []struct{ sql, want string }{
		{"BEGIN", "BEGIN tx=T"},
		{"LISTEN deferred_ch", "ERROR 0A000 tx=E"}, // refused in transaction pooling
		{"select 1", "ERROR 25P02 tx=E"},           // from PostgreSQL, whose block the proxy failed too
		{"ROLLBACK", "ROLLBACK tx=I"},
		{"BEGIN", "BEGIN tx=T"},
		{"LISTEN deferred_ch", "ERROR 0A000 tx=E"},
		{"COMMIT", "ROLLBACK tx=I"}, // answered by the proxy: no server had the block
		{"select 3", "SELECT 1: 3 tx=I"},
	} {
		got := runStep(ctx, pc, step{sql: st.sql}) + " tx=" + string(pc.TxStatus())
		if got != st.want {
			t.Errorf("%s: got %q, want %q", st.sql, got, st.want)
		}
	}
}

func connectRaw(t *testing.T, n *node.Node) *pgconn.PgConn {
	t.Helper()
	ctx := testenv.TestCtx(t, 10*time.Second)
	pc, err := pgconn.Connect(ctx, proxyURL(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close(context.Background()) })
	return pc
}
