package planner

import (
	"reflect"
	"testing"
)

// The fast path may only claim "plain" where the full analysis agrees.
func TestPlainStatementAgreesWithLexer(t *testing.T) {
	cases := []struct {
		sql   string
		plain bool
	}{
		{"select 1", true},
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 42", true},
		{"insert into t values (1)", true},
		{"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)", true},
		{"update t set a = 1 where k = 2", true},
		{"select 1;", true},
		{"select 1 ; ; \n", true},
		{"  with x as (select 1) select * from x", true},
		{"begin", true},
		{"select 1; select 2", false},
		{"select 1; listen x", false},
		{"select 'a;b'", false},
		{"SET work_mem = '4MB'", false},
		{"Set x = 1", false},
		{"reset all", false},
		{"discard all", false},
		{"DO $$ begin end $$", false},
		{"call p()", false},
		{"alter table t add c int", false},
		{"drop table t", false},
		{"listen x", false},
		{"prepare p as select 1", false},
		{"deallocate p", false},
		{"EXECUTE p(1)", false},
		{"declare c cursor with hold for select 1", false},
		{"create table t (a int)", false},
		{"select set_config('a.b', 'c', false)", false},
		{"SELECT SET_CONFIG('a.b', 'c', false)", false},
		{"select pg_advisory_lock(1)", false},
		{"select PG_TRY_ADVISORY_LOCK_SHARED(1)", false},
		{"select pg_advisory_xact_lock(1)", true},
		{"select * from pg_temp.t", false},
		{"select 1 into temp t", false},
		{"select 1 INTO TEMPORARY t", false},
		{"select 1 into local temp t", false},
		{"select 1 into /* c */ temp t", false},
		{"select 1 into -- c\n temp t", false},
		{"select 1 into t", true},
		{"select 'é'", false},
		{"select 1 as \"x\"", true},
		{"-- c\nselect 1", false},
		{"/* c */ select 1", false},
		{"(select 1)", false},
		{"", false},
		{"   ", false},
		{"e'x'", true},
		{"selectinto temp", false},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			if got := plainStatement(tc.sql); got != tc.plain {
				t.Fatalf("plainStatement(%q) = %v, want %v", tc.sql, got, tc.plain)
			}
			checkPlainAgrees(t, tc.sql)
		})
	}
}

func checkPlainAgrees(t *testing.T, sql string) {
	t.Helper()
	if !plainStatement(sql) {
		return
	}
	if full := analyzeTokens(sql); !reflect.DeepEqual(full, Statement{}) {
		t.Fatalf("plainStatement(%q) is true but the full analysis finds %+v", sql, full)
	}
}

func FuzzPlainStatement(f *testing.F) {
	for _, s := range []string{"select 1", "select 1 into temp t", "insert into t values (1)", "select 1;",
		"select pg_advisory_lock(1)", "set x = 1", "select 'a' into\ttemporary x", "with a as (select 1) select 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		checkPlainAgrees(t, sql)
	})
}

func BenchmarkAnalyzePlain(b *testing.B) {
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 4242;",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (52, 6, 373457, -2730, CURRENT_TIMESTAMP);",
	} {
		b.Run("fast/"+sql[:6], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Analyze(sql)
			}
		})
		b.Run("lexed/"+sql[:6], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = analyzeTokens(sql)
			}
		})
	}
}
