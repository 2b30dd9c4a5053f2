package planner_test

// The Planner's cache behaviour: statements differing only in literal
// values share one plan and re-bind its keys to their own values;
// statements whose plans differ (column order, aliases, IN-list lengths)
// never share; plans that embed literal values serve only their own text;
// a session's shard setting and the map's shard count are honoured.

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shardproxy/shardproxy/planner"
)

func newPlanner(t testing.TB) *planner.Planner {
	t.Helper()
	p, err := planner.New(planner.PlannerConfig{Cache: planner.CacheConfig{Size: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planContext() planner.PlanContext {
	return planner.PlanContext{
		BuildContext:   planner.BuildContext{Schema: shopSchema(), Shards: 4},
		Database:       "app",
		SearchPath:     "public",
		CatalogVersion: 1,
	}
}

func mustPlan(t *testing.T, p *planner.Planner, ctx planner.PlanContext, sql string) (*planner.Plan, []planner.Literal) {
	t.Helper()
	pl, lits, err := p.Plan(ctx, sql)
	if err != nil {
		t.Fatalf("Plan(%q): %v", sql, err)
	}
	return pl, lits
}

// keyTexts resolves the root Route's keys against a statement's literals.
func keyTexts(t *testing.T, pl *planner.Plan, lits []planner.Literal) []string {
	t.Helper()
	r, ok := pl.Root.(*planner.Route)
	if !ok {
		t.Fatalf("root is %s, want a Route", pl.Root.Describe())
	}
	var out []string
	for _, k := range r.Keys {
		s, err := k.Text(lits)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestPlannerRebindsLiterals(t *testing.T) {
	cases := []struct {
		first, second string
		want          []string // the second statement's keys
	}{
		{"SELECT * FROM accounts WHERE id = 42", "SELECT * FROM accounts WHERE id = 43", []string{"43"}},
		{"SELECT * FROM accounts WHERE id = -42", "SELECT * FROM accounts WHERE id = -43", []string{"-43"}},
		{"SELECT * FROM accounts WHERE id = - 42", "SELECT * FROM accounts WHERE id = - /* x */ 0x2B", []string{"-43"}},
		{"SELECT * FROM accounts WHERE id = '42'", "SELECT * FROM accounts WHERE id = E'4\\063'", []string{"43"}},
		{"SELECT * FROM events WHERE tenant = 'a''b'", "SELECT * FROM events WHERE tenant = $$c'd$$", []string{"c'd"}},
		{"SELECT * FROM accounts WHERE id IN (1, 2)", "SELECT * FROM accounts WHERE id IN (3, 3)", []string{"3", "3"}},
		{"SELECT * FROM accounts WHERE id = 12345678901", "SELECT * FROM accounts WHERE id = 12345678902", []string{"12345678902"}},
		{"INSERT INTO accounts (id, name) VALUES (1, 'a')", "INSERT INTO accounts (id, name) VALUES (2, 'b')", []string{"2"}},
		{"INSERT INTO accounts (name, id) VALUES ('a', 1)", "INSERT INTO accounts (name, id) VALUES ('b', 2)", []string{"2"}},
		{"UPDATE accounts SET balance = 0 WHERE id = 42 AND name = 'x'", "UPDATE accounts SET balance = 1 WHERE id = 7 AND name = 'y'", []string{"7"}},
	}
	for _, tc := range cases {
		t.Run(tc.first, func(t *testing.T) {
			p := newPlanner(t)
			ctx := planContext()
			p1, _ := mustPlan(t, p, ctx, tc.first)
			p2, lits := mustPlan(t, p, ctx, tc.second)
			if p1 != p2 {
				t.Errorf("second statement got its own plan:\n%s", strings.Join(p2.Lines(), "\n"))
			}
			if !p1.Rebindable {
				t.Errorf("plan not rebindable:\n%s", strings.Join(p1.Lines(), "\n"))
			}
			if got := keyTexts(t, p2, lits); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("keys %q, want %q", got, tc.want)
			}
			if st := p.Stats(); st.Computes != 1 {
				t.Errorf("%d builds, want 1", st.Computes)
			}
		})
	}
}

func TestPlannerRebindsNewKey(t *testing.T) {
	p := newPlanner(t)
	ctx := planContext()
	mustPlan(t, p, ctx, "UPDATE accounts SET id = 43 WHERE id = 42")
	pl, lits := mustPlan(t, p, ctx, "UPDATE accounts SET id = 8 WHERE id = 7")
	r := pl.Root.(*planner.Route)
	old, _ := r.Keys[0].Text(lits)
	nk, _ := r.NewKey.Text(lits)
	if old != "7" || nk != "8" {
		t.Errorf("old key %q new key %q, want 7 and 8", old, nk)
	}
}

// Statements whose plans differ must never share one, though pg_query's
// fingerprint gives them one value.
func TestPlannerSeparatesShapes(t *testing.T) {
	pairs := [][2]string{
		{"INSERT INTO accounts (id, name) VALUES (1, 'a')", "INSERT INTO accounts (name, id) VALUES ('a', 1)"},
		{"SELECT a.name FROM accounts a WHERE a.id = 1", "SELECT b.name FROM accounts b WHERE b.id = 1"},
		{"SELECT * FROM accounts WHERE id IN (1, 2)", "SELECT * FROM accounts WHERE id IN (1, 2, 3)"},
		{"SELECT id FROM accounts ORDER BY 1", "SELECT id FROM accounts ORDER BY 2"},
		{"/* shard: s1 */ SELECT count(*) FROM accounts", "/* shard: s2 */ SELECT count(*) FROM accounts"},
	}
	for _, pair := range pairs {
		t.Run(pair[0], func(t *testing.T) {
			p := newPlanner(t)
			ctx := planContext()
			p1, l1 := mustPlan(t, p, ctx, pair[0])
			p2, l2 := mustPlan(t, p, ctx, pair[1])
			if p1 == p2 {
				t.Fatal("one plan for both statements")
			}
			if st := p.Stats(); st.Computes != 2 {
				t.Errorf("%d builds, want 2", st.Computes)
			}
			if r1, ok := p1.Root.(*planner.Route); ok && r1.Target == planner.TargetKeys {
				// Each plan reads its own statement's key.
				k1, k2 := keyTexts(t, p1, l1), keyTexts(t, p2, l2)
				if k1[0] != "1" || k2[0] != "1" {
					t.Errorf("keys %q and %q, want 1 first in both", k1, k2)
				}
			}
		})
	}
}

// A plan that embeds literal values serves only its own text; another
// statement with the same normalized text gets a plan of its own.
func TestPlannerRebuildsValueBoundPlans(t *testing.T) {
	cases := []struct {
		first, second string
		want          []string // lines the second plan must contain
	}{
		{"SELECT id FROM accounts WHERE balance > 5 ORDER BY id LIMIT 3", "SELECT id FROM accounts WHERE balance > 6 ORDER BY id LIMIT 4",
			[]string{"Limit 4", "balance > 6", "LIMIT 4"}},
		{"SELECT * FROM accounts WHERE id = ANY('{1,2}')", "SELECT * FROM accounts WHERE id = ANY('{1,2,3}')",
			[]string{"keys '1', '2', '3'"}},
		{"INSERT INTO orders (id, account_id) VALUES (1, 7), (2, 7)", "INSERT INTO orders (id, account_id) VALUES (1, 7), (2, 8)",
			[]string{"InsertSplit rows 7, 8"}},
		{"SELECT country FROM accounts GROUP BY country HAVING count(*) > 10", "SELECT country FROM accounts GROUP BY country HAVING count(*) > 20",
			[]string{"Filter $2 > 20"}},
		{"DELETE FROM orders WHERE account_id = 1; DELETE FROM accounts WHERE id = 1", "DELETE FROM orders WHERE account_id = 1; DELETE FROM accounts WHERE id = 2",
			[]string{"go to different shards"}},
	}
	for _, tc := range cases {
		t.Run(tc.first, func(t *testing.T) {
			p := newPlanner(t)
			ctx := planContext()
			p1, _ := mustPlan(t, p, ctx, tc.first)
			if p1.Rebindable {
				t.Fatalf("plan rebindable:\n%s", strings.Join(p1.Lines(), "\n"))
			}
			p2, _ := mustPlan(t, p, ctx, tc.second)
			text := strings.Join(p2.Lines(), "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("second plan lacks %q:\n%s", w, text)
				}
			}
			again, _ := mustPlan(t, p, ctx, tc.first)
			if again != p1 {
				t.Error("the first text's own plan was not served from the cache")
			}
		})
	}
}

func TestPlannerSessionShard(t *testing.T) {
	p := newPlanner(t)
	ctx := planContext()
	const sql = "SELECT id FROM accounts ORDER BY id"
	plain, _ := mustPlan(t, p, ctx, sql)
	if _, ok := plain.Root.(*planner.Project); !ok {
		t.Fatalf("without a session shard: %s", plain.Root.Describe())
	}
	ctx.SessionShard = "s2"
	hinted, _ := mustPlan(t, p, ctx, sql)
	r, ok := hinted.Root.(*planner.Route)
	if !ok || r.Target != planner.TargetNamed || r.Shard != "s2" {
		t.Fatalf("with session shard s2: %s", hinted.Root.Describe())
	}
	if st := p.Stats(); st.Computes != 1 {
		t.Errorf("%d builds, want the plan shared", st.Computes)
	}
	// A comment hint wins over the session's shard.
	commented, _ := mustPlan(t, p, ctx, "/* shard: s1 */ "+sql)
	if r := commented.Root.(*planner.Route); r.Shard != "s1" {
		t.Errorf("comment hint lost to the session shard: %s", r.Describe())
	}
}

func TestPlannerShardCount(t *testing.T) {
	p := newPlanner(t)
	ctx := planContext()
	ctx.Shards = 1
	const sql = "SELECT count(*) FROM accounts"
	one, _ := mustPlan(t, p, ctx, sql)
	if _, ok := one.Root.(*planner.Route); !ok {
		t.Fatalf("one shard: %s", one.Root.Describe())
	}
	ctx.Shards = 3
	many, _ := mustPlan(t, p, ctx, sql)
	if _, ok := many.Root.(*planner.Aggregate); !ok {
		t.Fatalf("three shards after a plan for one: %s", many.Root.Describe())
	}
}

func TestPlannerBuildsOnceUnderConcurrentMisses(t *testing.T) {
	p := newPlanner(t)
	ctx := planContext()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sql := fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", i)
			pl, lits, err := p.Plan(ctx, sql)
			if err != nil {
				errs <- err
				return
			}
			got, err := pl.Root.(*planner.Route).Keys[0].Text(lits)
			if err != nil || got != fmt.Sprint(i) {
				errs <- fmt.Errorf("%s: key %q, %v", sql, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := p.Stats(); st.Computes != 1 {
		t.Errorf("%d builds, want 1", st.Computes)
	}
}

func TestPlannerSyntaxError(t *testing.T) {
	p := newPlanner(t)
	if _, _, err := p.Plan(planContext(), "SELEC 1"); err == nil {
		t.Fatal("no error")
	}
	if _, err := planner.New(planner.PlannerConfig{}); err == nil {
		t.Error("a cache of size 0 was accepted")
	}
}

// BenchmarkPlanCacheHit is the simple protocol's hot path: a text seen for
// the first time (pgbench sends a new literal every time), found by its
// normalized form, its key re-bound to the statement's literal.
func BenchmarkPlanCacheHit(b *testing.B) {
	p, err := planner.New(planner.PlannerConfig{Cache: planner.CacheConfig{Size: 1024}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := planContext()
	texts := make([]string, 4096)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", 1000000+i*7919)
	}
	if _, _, err := p.Plan(ctx, texts[0]); err != nil {
		b.Fatal(err)
	}
	lits := make([]planner.Literal, 0, 8)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pl, ls, err := p.PlanAppend(ctx, texts[i%len(texts)], lits[:0])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pl.Root.(*planner.Route).Keys[0].Text(ls); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBuild is a cache miss: parse, analysis, and for rewritten
// statements the deparse and the check that it parses back.
func BenchmarkBuild(b *testing.B) {
	ctx := planner.BuildContext{Schema: shopSchema(), Shards: 4}
	for _, s := range []struct{ name, sql string }{
		{"point-select", "SELECT abalance FROM pgbench_accounts WHERE aid = 42"},
		{"scatter-order-limit", "SELECT id, name FROM accounts WHERE balance > 0 ORDER BY name LIMIT 10"},
		{"scatter-aggregate", "SELECT country, avg(balance) FROM accounts GROUP BY country HAVING count(*) > 1 ORDER BY 2 DESC"},
		{"insert-split", "INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := planner.Build(s.sql, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
