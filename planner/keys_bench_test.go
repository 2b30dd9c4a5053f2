package planner_test

// What key extraction costs on a plan-cache miss: pg_query's parse (C
// parser, protobuf round trip) and the analysis on top. BenchmarkParse is
// the parse alone, for comparison; the difference is the analysis.

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/planner"
)

var benchStatements = []struct{ name, sql string }{
	{"point-select", "SELECT id, name, email FROM accounts WHERE id = $1"},
	{"insert", "INSERT INTO orders (id, account_id, amount, status) VALUES ($1, $2, $3, 'new')"},
	{"insert-10-rows", "INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h'), (9, 'i'), (10, 'j')"},
	{"update", "UPDATE accounts SET balance = balance - $1 WHERE id = $2"},
	{"join", "SELECT a.name, o.amount, c.name FROM accounts a JOIN orders o ON o.account_id = a.id JOIN countries c ON c.code = a.country WHERE a.id = ANY($1) AND o.status = 'open' ORDER BY o.created_at DESC LIMIT 20"},
	{"subqueries", "WITH recent AS (SELECT account_id, sum(amount) AS total FROM orders WHERE created_at > now() - interval '1 day' GROUP BY account_id) SELECT a.id, r.total, (SELECT count(*) FROM order_items i WHERE i.account_id = a.id) FROM accounts a JOIN recent r ON r.account_id = a.id WHERE a.id IN (1, 2, 3) AND EXISTS (SELECT 1 FROM orders o WHERE o.account_id = a.id AND o.status = 'late')"},
	{"begin", "BEGIN"},
}

func BenchmarkAnalyzeSQL(b *testing.B) {
	schema := shopSchema()
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := planner.AnalyzeSQL(s.sql, schema); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, s := range benchStatements {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg.Parse(s.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzAnalyzeSQL(f *testing.F) {
	for _, s := range benchStatements {
		f.Add(s.sql)
	}
	for _, s := range []string{
		"SELECT * FROM accounts WHERE id = ANY('{1,\"2\",NULL}')",
		"INSERT INTO accounts SELECT * FROM accounts",
		"WITH RECURSIVE r AS (SELECT 1 UNION SELECT * FROM r) SELECT * FROM r",
		"SELECT * FROM (accounts NATURAL JOIN orders) j, LATERAL (SELECT j.id LIMIT 1) x",
		"UPDATE accounts SET (id, name) = (SELECT 1, 'x') WHERE id = 1",
		"EXPLAIN (ROUTE) PREPARE p AS SELECT 1",
		"MERGE INTO countries USING accounts a ON true WHEN MATCHED THEN DELETE",
	} {
		f.Add(s)
	}
	schema := shopSchema()
	f.Fuzz(func(t *testing.T, sql string) {
		as, err := planner.AnalyzeStatements(sql, schema)
		if err != nil {
			return
		}
		for _, a := range as {
			if a.String() == "" {
				t.Fatalf("empty description for %q", sql)
			}
			for _, ta := range a.Tables {
				if ta.Table.Kind != planner.Sharded && (ta.Keys != nil || ta.Group != 0) {
					t.Fatalf("%q: keys or group on a table that is not sharded: %s", sql, ta)
				}
			}
			if a.ReadOnly != (a.SideEffect == "") {
				t.Fatalf("%q: ReadOnly %v with SideEffect %q", sql, a.ReadOnly, a.SideEffect)
			}
		}
	})
}
