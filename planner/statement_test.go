package planner_test

import (
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/planner"
)

func TestAnalyze(t *testing.T) {
	cases := []struct {
		sql  string
		want planner.Statement
	}{
		{"select 1", planner.Statement{}},
		{"", planner.Statement{Empty: true}},
		{" ; ;", planner.Statement{Empty: true}},
		{"-- only a comment", planner.Statement{Empty: true}},
		{"SET work_mem = '4MB'", planner.Statement{ChangesSettings: true}},
		{"reset all", planner.Statement{ChangesSettings: true}},
		{"select set_config('a.b', 'c', false)", planner.Statement{ChangesSettings: true, CustomSettings: []string{"a.b"}}},
		{"select 'set_config' ", planner.Statement{}},
		{"PREPARE p (int) AS select $1", planner.Statement{Kind: planner.KindPrepare, Name: "p", ManagesStatements: true}},
		{`prepare "MyStmt" as select 1`, planner.Statement{Kind: planner.KindPrepare, Name: "MyStmt", ManagesStatements: true}},
		{"EXECUTE p(1)", planner.Statement{Kind: planner.KindExecute, Name: "p", ExecuteNames: []string{"p"}}},
		{"execute P", planner.Statement{Kind: planner.KindExecute, Name: "p", ExecuteNames: []string{"p"}}},
		{"DEALLOCATE p", planner.Statement{Kind: planner.KindDeallocate, Name: "p", ManagesStatements: true}},
		{"deallocate prepare p", planner.Statement{Kind: planner.KindDeallocate, Name: "p", ManagesStatements: true}},
		{"DEALLOCATE ALL", planner.Statement{Kind: planner.KindDeallocate, All: true, ManagesStatements: true}},
		{"DISCARD ALL", planner.Statement{Kind: planner.KindDiscardAll, ChangesSettings: true}},
		{"discard plans", planner.Statement{ChangesSettings: true}},
		{"select 1; execute a; execute b", planner.Statement{Multi: true, ExecuteNames: []string{"a", "b"}}},
		{"select 1; prepare p as select 1", planner.Statement{Multi: true, ManagesStatements: true}},
		{"LISTEN ch", planner.Statement{NeedsSession: "LISTEN"}},
		{"select pg_advisory_lock(1)", planner.Statement{NeedsSession: "a session-level advisory lock (pg_advisory_lock)"}},
		{"select pg_advisory_xact_lock(1)", planner.Statement{}},
		{"create temp table x(a int)", planner.Statement{ChangesSchema: true, NeedsSession: "a temporary table"}},
		{"CREATE LOCAL TEMPORARY TABLE x(a int)", planner.Statement{ChangesSchema: true, NeedsSession: "a temporary table"}},
		{"alter table t add column c int", planner.Statement{ChangesSchema: true}},
		{"select 1; drop view v", planner.Statement{Multi: true, ChangesSchema: true}},
		{"declare c cursor with hold for select 1", planner.Statement{NeedsSession: "a WITH HOLD cursor"}},
		{"declare c cursor for select 1", planner.Statement{}},
		// Keywords inside strings, comments, quoted identifiers and dollar
		// quotes are not statements.
		{"select 'a;set x=1'", planner.Statement{}},
		{"select E'\\';listen x'", planner.Statement{}},
		{"select $$; listen x $$", planner.Statement{}},
		{"select $tag$ ; listen x $tag$", planner.Statement{}},
		{"/* listen x; /* nested */ ; */ select 1", planner.Statement{}},
		{`select 1 as "listen; x"`, planner.Statement{}},
		{"select $1::int", planner.Statement{}},
		{"SET myapp.tenant = 'a'", planner.Statement{ChangesSettings: true, CustomSettings: []string{"myapp.tenant"}}},
		{"set session MyApp.Tenant to 'a'", planner.Statement{ChangesSettings: true, CustomSettings: []string{"myapp.tenant"}}},
		{"reset myapp.tenant", planner.Statement{ChangesSettings: true, CustomSettings: []string{"myapp.tenant"}}},
		{"select set_config('myapp.user', 'u', false)", planner.Statement{ChangesSettings: true, CustomSettings: []string{"myapp.user"}}},
		{"select set_config('work_mem', '1MB', false)", planner.Statement{ChangesSettings: true}},
		{"DO $$BEGIN PERFORM 1; END$$", planner.Statement{Opaque: true}},
		{"call p()", planner.Statement{Opaque: true}},
		{"select 1 as x into temp t", planner.Statement{NeedsSession: "a temporary table"}},
		{"create table pg_temp.t(a int)", planner.Statement{ChangesSchema: true, NeedsSession: "a temporary table"}},
		{"select 'don''t'", planner.Statement{}},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			got := planner.Analyze(tc.sql)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Analyze(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
			}
		})
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"select 1", "prepare p as select $1", "select $$x", "/* /* */", "e'\\", `"x`, "deallocate"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		_ = planner.Analyze(sql)
	})
}
