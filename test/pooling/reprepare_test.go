package pooling_test

// Re-prepare after a table's shape changed. The proxy keeps statements
// prepared on server connections, even unnamed ones, so after ALTER TABLE a
// statement PostgreSQL would simply re-parse could fail with "cached plan
// must not change result type" (0A000). Outside an explicit transaction and
// before any row reached the client, the proxy must re-prepare quietly; the
// answers are compared with what PostgreSQL gives a direct connection.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
)

// outcome renders a query's result: its rows, or its error's SQLSTATE.
func outcome(ctx context.Context, conn *pgx.Conn, mode pgx.QueryExecMode, sql string) string {
	rows, err := conn.Query(ctx, sql, mode)
	if err != nil {
		return "ERROR " + testenv.PGCode(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return "ERROR values: " + err.Error()
		}
		out = append(out, fmt.Sprint(vals))
	}
	if err := rows.Err(); err != nil {
		return "ERROR " + testenv.PGCode(err)
	}
	return strings.Join(out, " ")
}

func TestReprepareAfterAlter(t *testing.T) {
	n := startNode(t, txPool(1), node.Options{})
	ctx := testenv.TestCtx(t, 60*time.Second)
	admin := testenv.Connect(t, ctx, directURL())
	// The ALTER comes either from elsewhere (a migration tool, another
	// proxy node: this node cannot see it) or through this node.
	ddlSources := []struct {
		name string
		conn *pgx.Conn
	}{
		{"DDL elsewhere", admin},
		{"DDL through the proxy", testenv.Connect(t, ctx, proxyURL(n))},
	}

	// run executes the query, alters the table (on ddl), executes it twice
	// more.
	run := func(t *testing.T, url string, ddl *pgx.Conn, table string, mode pgx.QueryExecMode, inTx bool) []string {
		mustExec(t, ctx, admin, fmt.Sprintf("drop table if exists %[1]s; create table %[1]s (a int, b int); insert into %[1]s values (1, 2)", table))
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		conn := testenv.ConnectConfig(t, ctx, cfg)
		sql := "select * from " + table
		res := []string{outcome(ctx, conn, mode, sql)}
		mustExec(t, ctx, ddl, "alter table "+table+" add column c int default 3")
		if inTx {
			mustExec(t, ctx, conn, "begin")
		}
		res = append(res, outcome(ctx, conn, mode, sql))
		if inTx {
			_, _ = conn.Exec(ctx, "rollback")
		}
		res = append(res, outcome(ctx, conn, mode, sql))
		return res
	}

	modes := []pgx.QueryExecMode{
		pgx.QueryExecModeExec,
		pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeSimpleProtocol,
		pgx.QueryExecModeCacheStatement,
		pgx.QueryExecModeCacheDescribe,
	}
	for d, ddl := range ddlSources {
		t.Run(ddl.name, func(t *testing.T) {
			for i, mode := range modes {
				t.Run(mode.String(), func(t *testing.T) {
					table := fmt.Sprintf("t_rp_%d_%d", d, i)
					want := run(t, directURL(), admin, table, mode, false)
					got := run(t, proxyURL(n), ddl.conn, table, mode, false)
					t.Logf("directly: %q; through the proxy: %q", want, got)
					if want[0] != "[1 2]" || got[0] != "[1 2]" {
						t.Fatalf("before the ALTER: direct %q, proxy %q; want [1 2]", want[0], got[0])
					}
					switch {
					case want[1] == got[1]:
						// As PostgreSQL answers (an error only where
						// PostgreSQL gives one too, for a statement the
						// client prepared).
					case strings.HasPrefix(want[1], "ERROR") && got[1] == want[2]:
						// Better than PostgreSQL: re-prepared quietly.
					default:
						t.Errorf("after the ALTER: proxy %q, direct %q", got[1], want[1])
					}
					if got[2] != want[2] || got[2] != "[1 2 3]" {
						t.Errorf("the next execution: proxy %q, direct %q; want [1 2 3]", got[2], want[2])
					}
				})
			}

			// A client that prepares the text for the first time after
			// the ALTER, while the server connection still holds another
			// client's statement of that text: PostgreSQL would prepare it
			// afresh, so must the proxy.
			t.Run("another client prepares after the ALTER", func(t *testing.T) {
				table := fmt.Sprintf("t_rp_x_%d", d)
				mustExec(t, ctx, admin, fmt.Sprintf("drop table if exists %[1]s; create table %[1]s (a int, b int); insert into %[1]s values (1, 2)", table))
				first := testenv.Connect(t, ctx, proxyURL(n))
				if got := outcome(ctx, first, pgx.QueryExecModeCacheStatement, "select * from "+table); got != "[1 2]" {
					t.Fatalf("before the ALTER: %q", got)
				}
				mustExec(t, ctx, ddl.conn, "alter table "+table+" add column c int default 3")
				second := testenv.Connect(t, ctx, proxyURL(n))
				for i := range 2 {
					if got := outcome(ctx, second, pgx.QueryExecModeCacheStatement, "select * from "+table); got != "[1 2 3]" {
						t.Errorf("execution %d by a client that never saw the old shape: %q, want [1 2 3]", i+1, got)
					}
				}
			})

			// A column's type changes under a statement whose row
			// description the client has cached (pgx's statement cache
			// decodes with it). PostgreSQL answers 0A000 so that the
			// client describes again; a quiet re-prepare would let the
			// client decode the new type with the old description.
			t.Run("column type change under a cached description", func(t *testing.T) {
				table := fmt.Sprintf("t_rp_type_%d", d)
				mode := pgx.QueryExecModeCacheStatement
				var results [2][]string
				for k, c := range []struct {
					url string
					ddl *pgx.Conn
				}{{directURL(), admin}, {proxyURL(n), ddl.conn}} {
					mustExec(t, ctx, admin, fmt.Sprintf("drop table if exists %[1]s; create table %[1]s (a int, b int); insert into %[1]s values (1, 2)", table))
					conn := testenv.Connect(t, ctx, c.url)
					sql := "select * from " + table
					res := []string{outcome(ctx, conn, mode, sql)}
					mustExec(t, ctx, c.ddl, "alter table "+table+" alter column b type real")
					res = append(res, outcome(ctx, conn, mode, sql), outcome(ctx, conn, mode, sql))
					results[k] = res
				}
				want, got := results[0], results[1]
				t.Logf("directly: %q; through the proxy: %q", want, got)
				if got[1] != want[1] && got[1] != "[1 2]" {
					t.Errorf("after the type change: proxy %q; want PostgreSQL's %q or the right row [1 2]", got[1], want[1])
				}
				if got[2] != "[1 2]" {
					t.Errorf("the next execution: proxy %q, want [1 2]", got[2])
				}
			})

			// Inside an explicit transaction the error cannot be hidden
			// (it aborted the transaction); it must be PostgreSQL's own,
			// and the next statement after ROLLBACK must work.
			t.Run("in a transaction", func(t *testing.T) {
				mode := pgx.QueryExecModeDescribeExec
				table := fmt.Sprintf("t_rp_tx_%d", d)
				want := run(t, directURL(), admin, table, mode, true)
				got := run(t, proxyURL(n), ddl.conn, table, mode, true)
				t.Logf("directly: %q; through the proxy: %q", want, got)
				if got[1] != want[1] && got[1] != "ERROR 0A000" {
					t.Errorf("after the ALTER, in a transaction: proxy %q, direct %q", got[1], want[1])
				}
				if got[2] != "[1 2 3]" {
					t.Errorf("after ROLLBACK: proxy %q, want [1 2 3]", got[2])
				}
			})
		})
	}

	// A batch whose first statement already sent rows: the proxy cannot
	// replay it; whatever it does, the answers must be right or an error,
	// and the connection must go on working.
	t.Run("after rows were sent", func(t *testing.T) {
		mustExec(t, ctx, admin, "drop table if exists t_rp_b; create table t_rp_b (a int, b int); insert into t_rp_b values (1, 2)")
		cfg, err := pgx.ParseConfig(proxyURL(n))
		if err != nil {
			t.Fatal(err)
		}
		// Exec mode: each statement is Parse, Bind, Describe portal,
		// Execute, and the batch ends with one Sync; the stale plan shows
		// at the second statement's Bind, after the first one's rows.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		conn := testenv.ConnectConfig(t, ctx, cfg)
		if got := outcome(ctx, conn, cfg.DefaultQueryExecMode, "select * from t_rp_b"); got != "[1 2]" {
			t.Fatalf("before the ALTER: %q", got)
		}
		mustExec(t, ctx, admin, "alter table t_rp_b add column c int default 3")
		b := &pgx.Batch{}
		b.Queue("select g from generate_series(1, 3) g")
		b.Queue("select * from t_rp_b")
		br := conn.SendBatch(ctx, b)
		first, err1 := pgx.CollectRows(must(br.Query()), pgx.RowTo[int32])
		second, err2 := pgx.CollectRows(must(br.Query()), pgx.RowToMap)
		errClose := br.Close()
		t.Logf("batch: first %v %v; second %v %v; close %v", first, err1, second, err2, errClose)
		if err1 != nil || len(first) != 3 {
			t.Errorf("first statement: %v, %v", first, err1)
		}
		if err2 != nil && testenv.PGCode(err2) != "0A000" {
			t.Errorf("second statement: %v; want its rows or PostgreSQL's 0A000", err2)
		}
		if err2 == nil && (len(second) != 1 || second[0]["c"] != int32(3)) {
			t.Errorf("second statement: %v", second)
		}
		if got := outcome(ctx, conn, cfg.DefaultQueryExecMode, "select * from t_rp_b"); got != "[1 2 3]" {
			t.Errorf("after the batch: %q", got)
		}
	})
}

func must(r pgx.Rows, _ error) pgx.Rows { return r }
