package planner_test

// Build's parts the golden plans show only as text: which literal each key
// came from, the SQL an InsertSplit writes for a subset of its rows (and
// the parameters it renumbers), that every rewritten statement parses, and
// a fuzz target that Build never panics.

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

func mustBuild(t testing.TB, sql string) *planner.Plan {
	t.Helper()
	p, err := planner.Build(sql, planner.BuildContext{Schema: shopSchema(), Shards: 4})
	if err != nil {
		t.Fatalf("Build(%q): %v", sql, err)
	}
	return p
}

func TestKeyValueLits(t *testing.T) {
	type lit struct {
		lit    int
		negate bool
	}
	cases := []struct {
		sql  string
		want []lit // Tables[0].Keys
	}{
		{"SELECT * FROM accounts WHERE name = 'x' AND id = 42", []lit{{2, false}}},
		{"SELECT * FROM accounts WHERE id = -42", []lit{{1, true}}},
		{"SELECT * FROM accounts WHERE id = - - 42", []lit{{1, false}}},
		{"SELECT * FROM accounts WHERE id = -/* c */42", []lit{{1, true}}},
		{"SELECT * FROM accounts WHERE id = -4.5", []lit{{1, true}}},
		{"SELECT * FROM accounts WHERE id IN (3, $1, 3)", []lit{{1, false}, {0, false}, {2, false}}},
		{"SELECT * FROM accounts WHERE id = '42'::bigint", []lit{{1, false}}},
		{"SELECT * FROM accounts WHERE id = bigint '42'", []lit{{1, false}}},
		{"SELECT * FROM events WHERE tenant = N'acme'", []lit{{1, false}}},
		{"SELECT * FROM events WHERE tenant = ANY(ARRAY['a', $1, 'b'])", []lit{{1, false}, {0, false}, {2, false}}},
		// Kept verbatim in the normalized text: no literal to re-bind.
		{"EXPLAIN SELECT * FROM accounts WHERE id = 42", nil},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			a := mustAnalyze(t, tc.sql, shopSchema())
			if a.Inner != nil {
				a = a.Inner
			}
			var got []lit
			for _, k := range a.Tables[0].Keys {
				got = append(got, lit{k.Lit, k.Negate})
			}
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("lits %v, want %v", got, tc.want)
			}
			if tc.want == nil {
				for _, l := range got {
					if l.lit != 0 {
						t.Errorf("lits %v, want none", got)
					}
				}
			}
			// Re-reading the statement's own literals gives the values back.
			_, lits := planner.Normalize(tc.sql)
			for _, k := range a.Tables[0].Keys {
				s, err := k.Text(lits)
				if err != nil || s != k.Literal {
					t.Errorf("%v.Text = %q, %v; want %q", k, s, err, k.Literal)
				}
			}
		})
	}
}

func TestKeyValueBind(t *testing.T) {
	_, lits := planner.Normalize("SELECT 'x', 7")
	v := planner.KeyValue{Literal: "5", Lit: 2, Negate: true}
	b, err := v.Bind(lits)
	if err != nil || b.Literal != "-7" || b.Lit != 2 {
		t.Errorf("Bind = %+v, %v", b, err)
	}
	if _, err := (planner.KeyValue{Lit: 3}).Text(lits); err == nil {
		t.Error("a literal index beyond the statement's literals gave no error")
	}
	if s, _ := (planner.KeyValue{Literal: "9"}).Text(nil); s != "9" {
		t.Errorf("a value without a literal: %q", s)
	}
}

func TestInsertSplitRowsSQL(t *testing.T) {
	cases := []struct {
		sql        string
		rows       []int
		wantSQL    string
		wantParams []int
	}{
		{"INSERT INTO orders (id, account_id, amount) VALUES ($1, $2, 10), ($3, $4, 20), ($5, $6, $1) RETURNING id",
			[]int{1, 2}, "INSERT INTO orders (id, account_id, amount) VALUES ($2, $3, 20), ($4, $5, $1) RETURNING id", []int{1, 3, 4, 5, 6}},
		{"INSERT INTO orders (id, account_id, amount) VALUES ($1, $2, 10), ($3, $4, 20)",
			[]int{0}, "INSERT INTO orders (id, account_id, amount) VALUES ($1, $2, 10)", []int{1, 2}},
		{"INSERT INTO accounts (id, name) VALUES (1, N'abc'), (2, 'it''s') ON CONFLICT (id) DO UPDATE SET name = $1",
			[]int{0, 1}, "INSERT INTO accounts (id, name) VALUES (1, 'abc'::bpchar), (2, 'it''s') ON CONFLICT (id) DO UPDATE SET name = $1", []int{1}},
		{"WITH x AS (SELECT 1) INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b')",
			[]int{1}, "WITH x AS (SELECT 1) INSERT INTO accounts (id, name) VALUES (2, 'b')", nil},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			split, ok := mustBuild(t, tc.sql).Root.(*planner.InsertSplit)
			if !ok {
				t.Fatalf("not an InsertSplit: %s", mustBuild(t, tc.sql).Lines())
			}
			sql, params, err := split.RowsSQL(tc.rows)
			if err != nil {
				t.Fatal(err)
			}
			if sql != tc.wantSQL || !slices.Equal(params, tc.wantParams) {
				t.Errorf("RowsSQL(%v) =\n  %s %v\nwant\n  %s %v", tc.rows, sql, params, tc.wantSQL, tc.wantParams)
			}
			if _, _, err := split.RowsSQL([]int{len(split.Rows)}); err == nil {
				t.Error("a row beyond the statement's gave no error")
			}
		})
	}
}

// RowsSQL is called by many sessions at once on one cached plan.
func TestInsertSplitConcurrent(t *testing.T) {
	split := mustBuild(t, "INSERT INTO orders (id, account_id) VALUES ($1, $2), ($3, $4), ($5, $6)").Root.(*planner.InsertSplit)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := []int{i % 3}
			sql, params, err := split.RowsSQL(rows)
			const want = "INSERT INTO orders (id, account_id) VALUES ($1, $2)"
			if err != nil || sql != want || params[0] != 2*(i%3)+1 {
				t.Errorf("RowsSQL(%v) = %s %v %v", rows, sql, params, err)
			}
		}()
	}
	wg.Wait()
}

func TestBuildSyntaxError(t *testing.T) {
	_, err := planner.Build("SELECT 1 FROM", planner.BuildContext{})
	var pe *pgerror.Error
	if !errors.As(err, &pe) || pe.Code != pgerror.SyntaxError || pe.Position != 14 {
		t.Fatalf("err = %v, want 42601 at 14", err)
	}
}

// TestRewrittenSQLParses: every statement the planner writes for the
// shards is one PostgreSQL's parser accepts, and parses to the tree the
// planner wrote (so pg_query's deparser lost nothing).
func TestRewrittenSQLParses(t *testing.T) {
	for _, c := range readPlanCases(t) {
		p, err := planner.Build(c.Query, buildContext(c))
		if err != nil {
			continue
		}
		checkShardSQL(t, c.Query, p)
	}
}

func checkShardSQL(t testing.TB, query string, p *planner.Plan) {
	t.Helper()
	var sqls []string
	var walk func(pr planner.Primitive)
	walk = func(pr planner.Primitive) {
		switch x := pr.(type) {
		case *planner.Route:
			if x.SQL != "" {
				sqls = append(sqls, x.SQL)
			}
		case *planner.InsertSplit:
			all := make([]int, len(x.Rows))
			for i := range all {
				all[i] = i
			}
			for _, rows := range [][]int{all, all[:1], all[len(all)-1:]} {
				sql, _, err := x.RowsSQL(rows)
				if err != nil {
					t.Errorf("%s: RowsSQL(%v): %v", query, rows, err)
				}
				sqls = append(sqls, sql)
			}
		}
		for _, in := range pr.Inputs() {
			walk(in)
		}
	}
	walk(p.Root)
	for _, sql := range sqls {
		tree, err := pg.Parse(sql)
		if err != nil {
			t.Errorf("%s: shard SQL does not parse: %s: %v", query, sql, err)
			continue
		}
		again, err := pg.Deparse(tree)
		if err != nil || again != sql {
			t.Errorf("%s: shard SQL does not round-trip:\n  %s\n  %s", query, sql, again)
		}
	}
}

func FuzzBuild(f *testing.F) {
	for _, s := range benchStatements {
		f.Add(s.sql)
	}
	for _, s := range []string{
		"SELECT country, avg(balance) FROM accounts GROUP BY 1 HAVING count(*) > $1 ORDER BY 2 DESC LIMIT $2 OFFSET 3",
		"SELECT DISTINCT ON (country) * FROM accounts ORDER BY country",
		"INSERT INTO orders (id, account_id) VALUES ($1, $2), (3, -4) ON CONFLICT DO NOTHING",
		"COPY accounts (id) FROM STDIN (FORMAT csv, HEADER match)",
		"/* shard: s1 */ BEGIN; CREATE TABLE t (id serial PRIMARY KEY); COMMIT",
		"EXPLAIN (ROUTE) SELECT * FROM accounts ORDER BY 1",
	} {
		f.Add(s)
	}
	schema := shopSchema()
	f.Fuzz(func(t *testing.T, sql string) {
		ctx := planner.BuildContext{Schema: schema, Shards: 3}
		p, err := planner.Build(sql, ctx)
		if err != nil {
			var pe *pgerror.Error
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error %v is not a *pgerror.Error", sql, err)
			}
			return
		}
		lines := p.Lines()
		if len(lines) == 0 || p.Analysis == nil {
			t.Fatalf("%q: empty plan", sql)
		}
		if r, ok := p.Root.(*planner.Refuse); ok && (r.Refusal.Code == "" || r.Refusal.Message == "") {
			t.Fatalf("%q: refusal without code or message", sql)
		}
		again, err := planner.Build(sql, ctx)
		if err != nil || strings.Join(again.Lines(), "\n") != strings.Join(lines, "\n") {
			t.Fatalf("%q: Build is not deterministic", sql)
		}
		checkShardSQL(t, sql, p)
	})
}
