package pooling_test

// Prepared statements of several clients on ONE server connection:
// protocol-level statements under the same client name with different
// text, SQL-level PREPARE/EXECUTE/DEALLOCATE, DEALLOCATE ALL, and Close of
// a statement whose text another client also uses.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
)

func TestPreparedStatementsShared(t *testing.T) {
	n := startNode(t, txPool(1), node.Options{})
	ctx := testenv.TestCtx(t, 60*time.Second)
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))

	t.Run("protocol-level same name", func(t *testing.T) {
		if _, err := a.Prepare(ctx, "q", "select $1::int + 1"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Prepare(ctx, "q", "select $1::text || '-b', 'b'::text"); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			var x int
			if err := a.QueryRow(ctx, "q", i).Scan(&x); err != nil || x != i+1 {
				t.Fatalf("round %d: A's q gave %d, %v", i, x, err)
			}
			var s, tag string
			if err := b.QueryRow(ctx, "q", fmt.Sprint(i)).Scan(&s, &tag); err != nil || s != fmt.Sprintf("%d-b", i) || tag != "b" {
				t.Fatalf("round %d: B's q gave %q %q, %v", i, s, tag, err)
			}
		}
		// Preparing a name twice is refused, as PostgreSQL does.
		_, err := a.PgConn().Prepare(ctx, "q", "select 2", nil)
		testenv.RequireCode(t, err, "42P05")
		checkInt(t, ctx, a, "q", 1, 2)
	})

	// SQL-level statements, EXECUTE sent as a simple query (psql's way).
	simple := pgx.QueryExecModeSimpleProtocol
	t.Run("SQL-level PREPARE", func(t *testing.T) {
		mustExec(t, ctx, a, "prepare p as select $1::int + 1")
		mustExec(t, ctx, b, "prepare p as select $1::int * 10")
		for i := range 20 {
			checkInt(t, ctx, a, fmt.Sprintf("execute p(%d)", i), simple, i+1)
			checkInt(t, ctx, b, fmt.Sprintf("execute p(%d)", i), simple, i*10)
		}
		// PREPARE of an existing name fails for that client only.
		_, err := a.Exec(ctx, "prepare p as select 1")
		testenv.RequireCode(t, err, "42P05")
		checkInt(t, ctx, b, "execute p(3)", simple, 30)

		mustExec(t, ctx, a, "deallocate p")
		_, err = a.Exec(ctx, "execute p(1)", simple)
		testenv.RequireCode(t, err, "26000")
		_, err = a.Exec(ctx, "deallocate p")
		testenv.RequireCode(t, err, "26000")
		checkInt(t, ctx, b, "execute p(4)", simple, 40)

		// A deallocated name can be prepared again with other text.
		mustExec(t, ctx, a, "prepare p as select $1::int - 1")
		checkInt(t, ctx, a, "execute p(5)", simple, 4)
		checkInt(t, ctx, b, "execute p(5)", simple, 50)

		// EXECUTE inside a transaction; a PREPARE in a transaction that
		// rolls back stays, as in PostgreSQL (prepared statements are not
		// transactional; the direct connection shows it).
		direct := testenv.Connect(t, ctx, directURL())
		for _, c := range []*pgx.Conn{a, direct} {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c == a {
				checkInt(t, ctx, c, "execute p(7)", simple, 6)
			}
			mustExec(t, ctx, c, "prepare p_tx as select 99")
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			checkInt(t, ctx, c, "execute p_tx", simple, 99)
		}
		checkInt(t, ctx, b, "execute p(8)", simple, 80)
	})

	t.Run("DEALLOCATE ALL", func(t *testing.T) {
		mustExec(t, ctx, b, "prepare p2 as select $1::int + 1000")
		mustExec(t, ctx, a, "deallocate all")
		_, err := a.Exec(ctx, "execute p(1)", simple)
		testenv.RequireCode(t, err, "26000")
		// B's statements, both kinds, still work.
		checkInt(t, ctx, b, "execute p(6)", simple, 60)
		checkInt(t, ctx, b, "execute p2(1)", simple, 1001)
		var s, tag string
		if err := b.QueryRow(ctx, "q", "x").Scan(&s, &tag); err != nil || s != "x-b" {
			t.Fatalf("B's q after A's DEALLOCATE ALL: %q, %v", s, err)
		}
		// A can prepare again.
		mustExec(t, ctx, a, "prepare p as select $1::int + 2")
		checkInt(t, ctx, a, "execute p(1)", simple, 3)
		checkInt(t, ctx, b, "execute p(1)", simple, 10)
	})

	// The same statements with EXECUTE sent in the extended protocol (pgx
	// QueryRow's default): each client must still run its own p.
	t.Run("EXECUTE in the extended protocol", func(t *testing.T) {
		ext := pgx.QueryExecModeDescribeExec
		for i := range 5 {
			checkInt(t, ctx, a, fmt.Sprintf("execute p(%d)", i), ext, i+2)
			checkInt(t, ctx, b, fmt.Sprintf("execute p(%d)", i), ext, i*10)
			checkInt(t, ctx, a, fmt.Sprintf("execute p(%d)", i), pgx.QueryExecModeCacheStatement, i+2)
			checkInt(t, ctx, b, fmt.Sprintf("execute p(%d)", i), pgx.QueryExecModeCacheStatement, i*10)
		}
		_, err := a.Exec(ctx, "execute p2(1)", ext)
		testenv.RequireCode(t, err, "26000")
	})

	// PREPARE sent in the extended protocol belongs to its client too.
	t.Run("PREPARE in the extended protocol", func(t *testing.T) {
		// pgx sends argument-less Execs as simple queries; pgconn's
		// ExecParams is a Parse/Bind/Describe/Execute/Sync.
		if r := a.PgConn().ExecParams(ctx, "prepare px as select 5", nil, nil, nil, nil).Read(); r.Err != nil {
			t.Fatal(r.Err)
		}
		checkInt(t, ctx, a, "execute px", simple, 5)
		_, err := b.Exec(ctx, "execute px", simple)
		testenv.RequireCode(t, err, "26000")
		checkInt(t, ctx, a, "execute px", simple, 5)
	})

	// DEALLOCATE sent in the extended protocol forgets the client's own
	// statement, not another client's of the same name.
	t.Run("DEALLOCATE in the extended protocol", func(t *testing.T) {
		checkInt(t, ctx, a, "execute p(1)", simple, 3)
		checkInt(t, ctx, b, "execute p(1)", simple, 10) // B's p is the server's now
		if r := a.PgConn().ExecParams(ctx, "deallocate p", nil, nil, nil, nil).Read(); r.Err != nil {
			t.Fatal(r.Err)
		}
		checkInt(t, ctx, b, "execute p(2)", simple, 20)
		_, err := a.Exec(ctx, "execute p(1)", simple)
		testenv.RequireCode(t, err, "26000")
	})

	t.Run("Close does not break another client", func(t *testing.T) {
		const sql = "select $1::int + 100"
		for i := range 50 {
			if _, err := a.Prepare(ctx, "same_a", sql); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if _, err := b.Prepare(ctx, "same_b", sql); err != nil {
					t.Fatal(err)
				}
			}
			checkInt(t, ctx, a, "same_a", i, i+100)
			// A closes its statement (pgx sends Close and Sync).
			if err := a.Deallocate(ctx, "same_a"); err != nil {
				t.Fatalf("round %d: Deallocate: %v", i, err)
			}
			checkInt(t, ctx, b, "same_b", i, i+100)
			// And the unnamed statement of the same text keeps working.
			var x int
			if err := b.QueryRow(ctx, sql, pgx.QueryExecModeDescribeExec, i).Scan(&x); err != nil || x != i+100 {
				t.Fatalf("round %d: unnamed statement: %d, %v", i, x, err)
			}
		}
		// A's closed statement is gone for A.
		_, err := a.Exec(ctx, "same_a", 1)
		if err == nil {
			t.Fatal("a closed statement still ran")
		}
	})

	t.Run("pgx statement cache under churn", func(t *testing.T) {
		// Small statement caches on both clients: pgx closes statements
		// as it evicts them, while the other client keeps using the same
		// text.
		conns := make([]*pgx.Conn, 2)
		for i := range conns {
			cfg, err := pgx.ParseConfig(proxyURL(n))
			if err != nil {
				t.Fatal(err)
			}
			cfg.StatementCacheCapacity = 3
			conns[i] = testenv.ConnectConfig(t, ctx, cfg)
		}
		for i := range 200 {
			c := conns[i%2]
			k := (i / 2) % 7
			var x int
			if err := c.QueryRow(ctx, fmt.Sprintf("select $1::int + %d", k), i).Scan(&x); err != nil || x != i+k {
				t.Fatalf("round %d: got %d, %v", i, x, err)
			}
		}
	})
}

// checkInt runs a one-int query (with one argument, or a pgx query mode,
// unless arg is nil) and checks its answer.
func checkInt(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, arg any, want int) {
	t.Helper()
	var args []any
	if arg != nil {
		args = []any{arg}
	}
	var x int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&x); err != nil || x != want {
		t.Fatalf("%s %v: got %d, %v; want %d", sql, args, x, err, want)
	}
}
