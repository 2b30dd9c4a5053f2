package planner_test

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/planner"
)

func TestBareTransactionControl(t *testing.T) {
	cases := []struct {
		sql  string
		want planner.TxnControl
	}{
		{"BEGIN", planner.TxnBegin},
		{"begin;", planner.TxnBegin},
		{"  Begin Work ;; ", planner.TxnBegin},
		{"BEGIN TRANSACTION", planner.TxnBegin},
		{"start transaction", planner.TxnStart},
		{"\tSTART\n TRANSACTION;", planner.TxnStart},
		{"COMMIT", planner.TxnCommit},
		{"commit work", planner.TxnCommit},
		{"END;", planner.TxnCommit},
		{"end transaction", planner.TxnCommit},
		{"ROLLBACK", planner.TxnRollback},
		{"abort", planner.TxnRollback},
		{"Rollback Transaction;", planner.TxnRollback},
		// Options, other statements and anything unusual are left to the
		// ordinary path.
		{"", planner.NotTxnControl},
		{";", planner.NotTxnControl},
		{"start", planner.NotTxnControl},
		{"begin isolation level serializable", planner.NotTxnControl},
		{"BEGIN READ ONLY", planner.NotTxnControl},
		{"start transaction read only", planner.NotTxnControl},
		{"commit and chain", planner.NotTxnControl},
		{"rollback to savepoint a", planner.NotTxnControl},
		{"rollback prepared 'x'", planner.NotTxnControl},
		{"commit prepared 'x'", planner.NotTxnControl},
		{"begin; select 1", planner.NotTxnControl},
		{"select 1; begin", planner.NotTxnControl},
		{"/* app */ begin", planner.NotTxnControl},
		{"begin -- now", planner.NotTxnControl},
		{"begins", planner.NotTxnControl},
		{"begin work transaction", planner.NotTxnControl},
		{"begin\u00a0", planner.NotTxnControl},
		{"BEGİN", planner.NotTxnControl},
		{"end_", planner.NotTxnControl},
		{"savepoint a", planner.NotTxnControl},
	}
	for _, c := range cases {
		if got := planner.BareTransactionControl(c.sql); got != c.want {
			t.Errorf("BareTransactionControl(%q) = %d, want %d", c.sql, got, c.want)
		}
	}
}

// FuzzBareTransactionControl: whatever the matcher accepts, PostgreSQL's
// parser reads as that one transaction statement, without options.
func FuzzBareTransactionControl(f *testing.F) {
	for _, s := range []string{"BEGIN", "begin work;", "START TRANSACTION", "end", "abort transaction ;;",
		"commit and chain", "begin isolation level serializable", "rollback to a", "begin; select 1"} {
		f.Add(s)
	}
	kinds := map[planner.TxnControl]pg.TransactionStmtKind{
		planner.TxnBegin:    pg.TransactionStmtKind_TRANS_STMT_BEGIN,
		planner.TxnStart:    pg.TransactionStmtKind_TRANS_STMT_START,
		planner.TxnCommit:   pg.TransactionStmtKind_TRANS_STMT_COMMIT,
		planner.TxnRollback: pg.TransactionStmtKind_TRANS_STMT_ROLLBACK,
	}
	f.Fuzz(func(t *testing.T, sql string) {
		got := planner.BareTransactionControl(sql)
		if got == planner.NotTxnControl {
			return
		}
		tree, err := pg.Parse(sql)
		if err != nil {
			t.Fatalf("%q: matched as %d but does not parse: %v", sql, got, err)
		}
		if len(tree.Stmts) != 1 {
			t.Fatalf("%q: matched as %d but holds %d statements", sql, got, len(tree.Stmts))
		}
		ts := tree.Stmts[0].Stmt.GetTransactionStmt()
		if ts == nil || ts.Kind != kinds[got] || len(ts.Options) > 0 || ts.Chain {
			t.Fatalf("%q: matched as %d but parses as %v", sql, got, tree.Stmts[0].Stmt)
		}
	})
}
