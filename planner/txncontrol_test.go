package planner_test

import (
	"testing"

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
