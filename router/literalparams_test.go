package router

import (
	"testing"

	"github.com/shardproxy/shardproxy/planner"
)

func TestComparedForEquality(t *testing.T) {
	tests := []struct {
		sql  string
		lit  int // 0-based, in Normalize's order
		want bool
	}{
		{"SELECT * FROM t WHERE id = 5", 0, true},
		{"SELECT * FROM t WHERE id=5", 0, true},
		{"SELECT * FROM t WHERE id >= 5", 0, false},
		{"SELECT * FROM t WHERE id <> 5", 0, false},
		{"SELECT * FROM t WHERE id != 5", 0, false},
		{"SELECT * FROM t WHERE id IN (5, 6)", 0, true},
		{"SELECT * FROM t WHERE id IN (5, 6)", 1, true},
		{"SELECT * FROM t WHERE id in ('a' ,'b', 'c')", 2, true},
		{"SELECT * FROM t WHERE id = ANY(ARRAY[5, 6])", 1, false},
		{"SELECT * FROM t WHERE (id, x) = (5, 6)", 0, false},
		{"SELECT * FROM t WHERE id IN (f(1), 6)", 1, false},
		{"SELECT * FROM t WHERE id = N'x'", 0, false},
		{"SELECT * FROM t WHERE id = /* c */ 5", 0, false},
		{"SELECT * FROM t WHERE min(5)", 0, false},
		{"SELECT * FROM t WHERE id = lin(5)", 0, false},
	}
	for _, tc := range tests {
		_, lits := planner.Normalize(tc.sql)
		if tc.lit >= len(lits) {
			t.Fatalf("%s: only %d literals", tc.sql, len(lits))
		}
		if got := comparedForEquality(tc.sql, lits, tc.lit); got != tc.want {
			t.Errorf("%s, literal %d (%s): got %v, want %v", tc.sql, tc.lit, lits[tc.lit].Text, got, tc.want)
		}
	}
}

func TestLiteralKeepsMeaning(t *testing.T) {
	tests := []struct {
		sql     string
		keyType string
		want    bool
	}{
		{"SELECT 5", "int4", true},
		{"SELECT 5", "int8", true},
		{"SELECT 5", "numeric", true},
		{"SELECT 5", "int2", true},
		{"SELECT 40000", "int2", false},
		{"SELECT 5", "text", false},
		{"SELECT 5", "uuid", false},
		{"SELECT 'x'", "text", true},
		{"SELECT 'x'", "int4", true},
		{"SELECT 99999999999", "int8", true},
		{"SELECT 99999999999", "int4", false},
		{"SELECT 99999999999999999999", "int8", false},
		{"SELECT 4.5", "int8", false},
		{"SELECT 4.5", "numeric", true},
		{"SELECT B'101'", "text", false},
	}
	for _, tc := range tests {
		_, lits := planner.Normalize(tc.sql)
		if len(lits) != 1 {
			t.Fatalf("%s: %d literals", tc.sql, len(lits))
		}
		if got := literalKeepsMeaning(lits[0], tc.keyType); got != tc.want {
			t.Errorf("%s as %s: got %v, want %v", tc.sql, tc.keyType, got, tc.want)
		}
	}
}
