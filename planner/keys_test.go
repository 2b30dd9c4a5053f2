package planner_test

// Table-driven tests for the parts of an Analysis the golden file shows
// only as text: the exact KeyValue fields, errors and their positions,
// statement kinds, read-only decisions and refusals as client errors.

import (
	"errors"
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

func mustAnalyze(t *testing.T, sql string, schema planner.Schema) *planner.Analysis {
	t.Helper()
	a, err := planner.AnalyzeSQL(sql, schema)
	if err != nil {
		t.Fatalf("AnalyzeSQL(%q): %v", sql, err)
	}
	return a
}

func TestKeyValues(t *testing.T) {
	lit := func(s string) planner.KeyValue { return planner.KeyValue{Literal: s} }
	quoted := func(s, cast string) planner.KeyValue { return planner.KeyValue{Literal: s, Quoted: true, Cast: cast} }
	cases := []struct {
		sql  string
		want []planner.KeyValue // Tables[0].Keys
	}{
		{"SELECT * FROM accounts WHERE id = 42", []planner.KeyValue{lit("42")}},
		{"SELECT * FROM accounts WHERE id = -42", []planner.KeyValue{lit("-42")}},
		{"SELECT * FROM accounts WHERE id = 9223372036854775807", []planner.KeyValue{lit("9223372036854775807")}},
		{"SELECT * FROM accounts WHERE id = '42'", []planner.KeyValue{quoted("42", "")}},
		{"SELECT * FROM accounts WHERE id = $3", []planner.KeyValue{{Param: 3}}},
		{"SELECT * FROM accounts WHERE id = $1::int8", []planner.KeyValue{{Param: 1, Cast: "int8"}}},
		{"SELECT * FROM accounts WHERE id = CAST($1 AS integer)", []planner.KeyValue{{Param: 1, Cast: "int4"}}},
		{"SELECT * FROM accounts WHERE id = 7::public.myint", []planner.KeyValue{{Literal: "7", Cast: "public.myint"}}},
		{"SELECT * FROM accounts WHERE id = ANY($2)", []planner.KeyValue{{Param: 2, ArrayParam: true}}},
		{"SELECT * FROM accounts WHERE id = ANY($2::integer[])", []planner.KeyValue{{Param: 2, ArrayParam: true, Cast: "int4"}}},
		{"SELECT * FROM accounts WHERE id = ANY('{1,2}')", []planner.KeyValue{quoted("1", ""), quoted("2", "")}},
		{"SELECT * FROM accounts WHERE id = ANY('{ 1 , 2 ,1}'::bigint[])", []planner.KeyValue{quoted("1", "int8"), quoted("2", "int8")}},
		{`SELECT * FROM events WHERE tenant = ANY('{"x\\y", "NULL", NULL}')`, []planner.KeyValue{quoted(`x\y`, ""), quoted("NULL", "")}},
		{"SELECT * FROM events WHERE tenant = ANY(ARRAY['a', $1])", []planner.KeyValue{quoted("a", ""), {Param: 1}}},
		// Two literals are two keys even when equal: a statement with the
		// same normalized text may have two different values there.
		{"SELECT * FROM accounts WHERE id IN (3, 1, 3)", []planner.KeyValue{lit("3"), lit("1"), lit("3")}},
		{"SELECT * FROM accounts WHERE id IN ($1, 1, $1)", []planner.KeyValue{{Param: 1}, lit("1")}},
		{"SELECT * FROM events WHERE tenant = 'it''s'", []planner.KeyValue{quoted("it's", "")}},
		// Not usable: every shard.
		{"SELECT * FROM accounts WHERE id = ANY('{}')", nil},
		{"SELECT * FROM accounts WHERE id = ANY('{1,}')", nil},
		{"SELECT * FROM accounts WHERE id = ANY('[1:2]={1,2}')", nil},
		{"SELECT * FROM accounts WHERE id = ANY('{{1},{2}}')", nil},
		{"SELECT * FROM accounts WHERE id = ANY('{\"1}')", nil},
		{"SELECT * FROM accounts WHERE id = ANY(ARRAY[1, id])", nil},
		{"SELECT * FROM accounts WHERE id = ANY(ARRAY[[1]])", nil},
		{"SELECT * FROM accounts WHERE id = B'101'", nil},
		{"SELECT * FROM accounts WHERE id = $1::int[]", nil},
		{"SELECT * FROM accounts WHERE id = (1)::int::int8", nil},
		{"SELECT * FROM accounts WHERE id = ANY($1::int[][])", nil},
		{"SELECT * FROM accounts WHERE id OPERATOR(pg_catalog.=) 5", []planner.KeyValue{lit("5")}},
		{"SELECT * FROM accounts WHERE id OPERATOR(myschema.=) 5", nil},
	}
	schema := shopSchema()
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			a := mustAnalyze(t, tc.sql, schema)
			if len(a.Tables) == 0 {
				t.Fatal("no tables")
			}
			if got := withoutLits(a.Tables[0].Keys); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("keys = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// withoutLits drops the literal positions (TestKeyValueLits checks them).
func withoutLits(vs []planner.KeyValue) []planner.KeyValue {
	if vs == nil {
		return nil
	}
	out := make([]planner.KeyValue, len(vs))
	for i, v := range vs {
		v.Lit, v.Negate = 0, false
		out[i] = v
	}
	return out
}

func TestKeyValueString(t *testing.T) {
	cases := []struct {
		v    planner.KeyValue
		want string
	}{
		{planner.KeyValue{Literal: "42"}, "42"},
		{planner.KeyValue{Literal: "o'neil", Quoted: true}, "'o''neil'"},
		{planner.KeyValue{Param: 2}, "$2"},
		{planner.KeyValue{Param: 2, Cast: "int8"}, "$2::int8"},
		{planner.KeyValue{Param: 1, ArrayParam: true}, "ANY($1)"},
		{planner.KeyValue{Param: 1, ArrayParam: true, Cast: "text"}, "ANY($1::text[])"},
		{planner.KeyValue{Literal: "42", Quoted: true, Cast: "uuid"}, "'42'::uuid"},
	}
	for _, tc := range cases {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		sql      string
		message  string
		position int
	}{
		{"selec 1", `syntax error at or near "selec"`, 1},
		{"SELECT * FROM accounts WHERE", "syntax error at end of input", 29},
		{"SELECT 'é', 'ü' FROM x y z", `syntax error at or near "z"`, 26},
		{"SELECT $$abc", `unterminated dollar-quoted string at or near "$$abc"`, 8},
		{"INSERT INTO t VALUES (1", "syntax error at end of input", 24},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			_, err := planner.AnalyzeSQL(tc.sql, shopSchema())
			var pe *pgerror.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *pgerror.Error", err)
			}
			if pe.Code != pgerror.SyntaxError || pe.Message != tc.message || pe.Position != tc.position {
				t.Errorf("got %s %q at %d, want 42601 %q at %d", pe.Code, pe.Message, pe.Position, tc.message, tc.position)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	if _, err := planner.AnalyzeSQL("SELECT 1; SELECT 2", nil); !errors.Is(err, planner.ErrMultipleStatements) {
		t.Errorf("two statements: err = %v, want ErrMultipleStatements", err)
	}
	as, err := planner.AnalyzeStatements("BEGIN; UPDATE accounts SET name = 'x' WHERE id = 1; COMMIT", shopSchema())
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, a := range as {
		cmds = append(cmds, a.Command)
	}
	if want := []string{"BEGIN", "UPDATE", "COMMIT"}; !reflect.DeepEqual(cmds, want) {
		t.Errorf("commands = %v, want %v", cmds, want)
	}
	if keys := as[1].Tables[0].Keys; len(keys) != 1 || keys[0].Literal != "1" {
		t.Errorf("UPDATE keys = %v", keys)
	}
	as, err = planner.AnalyzeStatements("  -- nothing\n", nil)
	if err != nil || len(as) != 0 {
		t.Errorf("empty string: %v, %v", as, err)
	}
	a := mustAnalyze(t, ";", nil)
	if a.Kind != planner.EmptyStatement || !a.ReadOnly {
		t.Errorf("empty statement: %+v", a)
	}
}

func TestKinds(t *testing.T) {
	cases := []struct {
		sql     string
		kind    planner.StatementKind
		command string
	}{
		{"SELECT 1", planner.SelectStatement, "SELECT"},
		{"VALUES (1)", planner.SelectStatement, "SELECT"},
		{"INSERT INTO t VALUES (1)", planner.InsertStatement, "INSERT"},
		{"UPDATE t SET a = 1", planner.UpdateStatement, "UPDATE"},
		{"DELETE FROM t", planner.DeleteStatement, "DELETE"},
		{"COPY t FROM STDIN", planner.CopyStatement, "COPY"},
		{"EXPLAIN SELECT 1", planner.ExplainStatement, "EXPLAIN"},
		{"CREATE TABLE t (a int)", planner.DDLStatement, "CREATE TABLE"},
		{"ALTER TABLE t ADD COLUMN b int", planner.DDLStatement, "ALTER TABLE"},
		{"ALTER INDEX i RENAME TO j", planner.DDLStatement, "ALTER INDEX"},
		{"DROP TABLE t", planner.DDLStatement, "DROP TABLE"},
		{"DROP MATERIALIZED VIEW v", planner.DDLStatement, "DROP MATERIALIZED VIEW"},
		{"CREATE UNIQUE INDEX i ON t (a)", planner.DDLStatement, "CREATE INDEX"},
		{"CREATE MATERIALIZED VIEW v AS SELECT 1", planner.DDLStatement, "CREATE MATERIALIZED VIEW"},
		{"CREATE SCHEMA s", planner.DDLStatement, "CREATE SCHEMA"},
		{"CREATE EXTENSION pgcrypto", planner.DDLStatement, "CREATE EXTENSION"},
		{"ALTER TYPE mood ADD VALUE 'happy'", planner.DDLStatement, "ALTER ENUM"},
		{"CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", planner.DDLStatement, "CREATE PROCEDURE"},
		{"REVOKE ALL ON t FROM app", planner.DDLStatement, "REVOKE"},
		{"SET work_mem = '64MB'", planner.UtilityStatement, "SET"},
		{"SET TRANSACTION READ ONLY", planner.UtilityStatement, "SET"},
		{"RESET work_mem", planner.UtilityStatement, "RESET"},
		{"SHOW ALL", planner.UtilityStatement, "SHOW"},
		{"START TRANSACTION", planner.UtilityStatement, "START TRANSACTION"},
		{"ROLLBACK", planner.UtilityStatement, "ROLLBACK"},
		{"SAVEPOINT a", planner.UtilityStatement, "SAVEPOINT"},
		{"RELEASE SAVEPOINT a", planner.UtilityStatement, "RELEASE"},
		{"COMMIT PREPARED 'x'", planner.UtilityStatement, "COMMIT PREPARED"},
		{"PREPARE p AS SELECT 1", planner.UtilityStatement, "PREPARE"},
		{"EXECUTE p", planner.UtilityStatement, "EXECUTE"},
		{"DEALLOCATE PREPARE p", planner.UtilityStatement, "DEALLOCATE"},
		{"DEALLOCATE ALL", planner.UtilityStatement, "DEALLOCATE ALL"},
		{"DISCARD PLANS", planner.UtilityStatement, "DISCARD PLANS"},
		{"MOVE 1 IN c", planner.UtilityStatement, "MOVE"},
		{"CLOSE ALL", planner.UtilityStatement, "CLOSE CURSOR ALL"},
		{"UNLISTEN *", planner.UtilityStatement, "UNLISTEN"},
		{"ANALYZE t", planner.UtilityStatement, "ANALYZE"},
		{"CHECKPOINT", planner.UtilityStatement, "CHECKPOINT"},
		{"CREATE ROLE r", planner.UtilityStatement, "CREATE ROLE"},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			a := mustAnalyze(t, tc.sql, nil)
			if a.Kind != tc.kind || a.Command != tc.command {
				t.Errorf("got %s %q, want %s %q", a.Kind, a.Command, tc.kind, tc.command)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	cases := []struct {
		sql      string
		readOnly bool
	}{
		{"SELECT * FROM accounts WHERE id = 1", true},
		{"SELECT now(), random(), pg_is_in_recovery(), gen_random_uuid()", true},
		{"SELECT pg_catalog.now()", true},
		{"SELECT count(*), max(id), string_agg(name, ',') FROM accounts", true},
		{"SELECT extract(epoch FROM now()), trim(name), substring(name FROM 1 FOR 2) FROM accounts", true},
		{"SELECT txid_current_if_assigned(), current_setting('search_path')", true},
		{"SELECT * FROM generate_series(1, 10)", true},
		{"SELECT * FROM accounts WHERE id = 1 FOR NO KEY UPDATE", false},
		{"SELECT * FROM accounts WHERE id = 1 FOR KEY SHARE", false},
		{"SELECT nextval('s')", false},
		{"SELECT pg_catalog.nextval('s')", false},
		{"SELECT currval('s')", false},
		{"SELECT pg_try_advisory_lock(1)", false},
		{"SELECT pg_current_xact_id()", false},
		{"SELECT pg_notify('c', 'x')", false},
		{"SELECT pg_current_wal_lsn()", false},
		{"SELECT lo_create(0)", false},
		{"SELECT my_function()", false},
		{"SELECT price_with_tax(1)", true}, // configured read-only
		{"SELECT public.price_with_tax(1)", true},
		{"SELECT other.price_with_tax(1)", false},
		{"SELECT * FROM my_set_function()", false},
		{"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x", false},
		{"SELECT * INTO t2 FROM countries", false},
		{"EXPLAIN DELETE FROM orders", true},
		{"EXPLAIN ANALYZE DELETE FROM orders", false},
		{"EXPLAIN (ANALYZE false) DELETE FROM orders", true},
		{"EXPLAIN (ANALYZE) SELECT 1", true},
		{"DECLARE c CURSOR FOR SELECT * FROM accounts FOR UPDATE", false},
		{"BEGIN", true},
		{"SET x.y = 1", true},
		{"LISTEN c", false},
		{"COPY accounts TO STDOUT", true},
		{"COPY accounts TO '/tmp/x'", false},
		{"COPY accounts FROM STDIN", false},
		{"EXECUTE p", false},
		{"CREATE TABLE x (a int)", false},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			a := mustAnalyze(t, tc.sql, shopSchema())
			if a.ReadOnly != tc.readOnly {
				t.Errorf("ReadOnly = %v (%q), want %v", a.ReadOnly, a.SideEffect, tc.readOnly)
			}
			if a.ReadOnly != (a.SideEffect == "") {
				t.Errorf("ReadOnly %v with SideEffect %q", a.ReadOnly, a.SideEffect)
			}
		})
	}
}

// A schema that does not implement ReadOnlyFunctions: user functions are
// never reads.
type plainSchema struct{ shop *fakeSchema }

func (s plainSchema) Resolve(name, schema string) (planner.TableConfig, bool) {
	return s.shop.Resolve(name, schema)
}

func (s plainSchema) Columns(t planner.TableConfig) []string { return s.shop.Columns(t) }

func TestReadOnlyFunctionsIsOptional(t *testing.T) {
	var s planner.Schema = plainSchema{shopSchema()}
	if _, ok := s.(planner.ReadOnlyFunctions); ok {
		t.Fatal("plainSchema must not implement ReadOnlyFunctions")
	}
	if a := mustAnalyze(t, "SELECT price_with_tax(1)", s); a.ReadOnly {
		t.Error("a user function is read-only without the schema saying so")
	}
}

func TestRowsAndKeyUpdate(t *testing.T) {
	schema := shopSchema()
	a := mustAnalyze(t, "INSERT INTO orders (amount, account_id) VALUES (1, $1), (2, '7'), (3, 5::int8)", schema)
	want := []planner.KeyValue{{Param: 1}, {Literal: "7", Quoted: true}, {Literal: "5", Cast: "int8"}}
	if !reflect.DeepEqual(withoutLits(a.Rows), want) {
		t.Errorf("Rows = %#v, want %#v", a.Rows, want)
	}
	if a.Refusal != nil || a.Tables[0].Write != true {
		t.Errorf("unexpected %+v", a)
	}

	a = mustAnalyze(t, "UPDATE accounts SET id = $1 WHERE id = $2", schema)
	if !a.KeyUpdate || a.NewKey == nil || *a.NewKey != (planner.KeyValue{Param: 1}) || a.Refusal != nil {
		t.Errorf("key update by parameters: %+v", a)
	}
	a = mustAnalyze(t, "UPDATE accounts SET id = id * 2 WHERE id = 1", schema)
	if !a.KeyUpdate || a.NewKey != nil || a.Refusal == nil || a.Refusal.Code != pgerror.FeatureNotSupported {
		t.Errorf("key update to an expression: %+v", a)
	}
	a = mustAnalyze(t, "UPDATE countries SET code = 'x'", schema)
	if a.KeyUpdate {
		t.Error("a reference table has no sharding key to update")
	}
}

func TestGroupsAndRefusal(t *testing.T) {
	schema := shopSchema()
	a := mustAnalyze(t, "SELECT * FROM accounts a JOIN orders o ON o.account_id = a.id JOIN countries c ON c.code = a.country, events e", schema)
	var groups []int
	for _, ta := range a.Tables {
		groups = append(groups, ta.Group)
	}
	if want := []int{1, 1, 0, 2}; !reflect.DeepEqual(groups, want) {
		t.Errorf("groups = %v, want %v", groups, want)
	}
	if a.Refusal == nil || a.SingleShard == "" {
		t.Fatalf("no refusal: %s", a)
	}
	err := a.Refusal.Err()
	if err.Code != pgerror.FeatureNotSupported || err.Hint == "" || err.Message != a.Refusal.Message {
		t.Errorf("Err() = %+v", err)
	}
	var pe *pgerror.Error
	if !errors.As(error(err), &pe) || pe.SQLState() != "0A000" {
		t.Errorf("Err() is not a 0A000 client error: %v", err)
	}
}

func TestUnknownTablesWithoutSchema(t *testing.T) {
	a := mustAnalyze(t, "SELECT * FROM accounts a JOIN orders o ON o.account_id = a.id WHERE a.id = 1", nil)
	for _, ta := range a.Tables {
		if !ta.Unknown || ta.Table.Kind != planner.Unsharded || ta.Keys != nil {
			t.Errorf("%s: want an unknown unsharded table", ta)
		}
	}
	if a.Refusal != nil || a.SingleShard != "" {
		t.Errorf("unsharded tables need no shard checks: %s", a)
	}
}

func TestTableKindString(t *testing.T) {
	for k, want := range map[planner.TableKind]string{planner.Sharded: "sharded", planner.Reference: "reference", planner.Unsharded: "unsharded"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
	var zero planner.TableConfig
	if zero.Kind != planner.Unsharded {
		t.Error("the zero TableKind must be Unsharded")
	}
}

func TestAnalysisIsDeterministic(t *testing.T) {
	schema := shopSchema()
	sql := "WITH o AS (SELECT * FROM orders) SELECT * FROM accounts a JOIN o ON o.account_id = a.id WHERE a.id IN (1, 2) OR a.id = ANY($1)"
	first := mustAnalyze(t, sql, schema).String()
	for range 20 {
		if got := mustAnalyze(t, sql, schema).String(); got != first {
			t.Fatalf("analysis changed between runs:\n%s\nvs\n%s", first, got)
		}
	}
}
