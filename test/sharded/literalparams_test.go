package sharded_test

// pool.literal_parameters: simple queries routed by literal keys reach the
// shards as prepared statements with the keys as parameters. Every answer
// must stay PostgreSQL's own: the whole corpus runs in the simple protocol
// through a node with the option on and is compared with the direct
// server, and so do the literals where a parameter could mean something
// else than the literal did (numbers wider than the key, negated, cast).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/test/testenv"
)

// literalParamsNode starts a node with literal_parameters on in front of
// the same shards, one server connection per shard (so that a session's
// next statement on a shard sees the statements its last one prepared).
func literalParamsNode(t *testing.T) string {
	t.Helper()
	if selfCheck {
		t.Skip("the self-check compares two plain servers; there is no proxy option to check")
	}
	cfg := nodeConfig(cluster)
	cfg.Pool.LiteralParameters = true
	cfg.Pool.Size = 1
	n, stop, err := testenv.StartSharedNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return testenv.URL(n, testenv.AppUser, testenv.AppPassword)
}

func TestLiteralParameters(t *testing.T) {
	url := literalParamsNode(t)
	direct, lit := newSide("direct", directURL), newSide("proxy with literal_parameters", url)
	defer direct.close()
	defer lit.close()

	t.Run("corpus", func(t *testing.T) {
		for i, q := range corpus() {
			t.Run(fmt.Sprintf("%s/%03d", q.cat, i), func(t *testing.T) {
				check(t, simple, q, direct, lit)
			})
		}
	})

	// events.customer_id is int4, customers.id int8, sessions.token text.
	edges := []query{
		{cat: "edge", sql: "SELECT count(*) FROM events WHERE customer_id = 99999999999"},
		{cat: "edge", sql: "SELECT count(*) FROM events WHERE customer_id = 4.5"},
		{cat: "edge", sql: "SELECT count(*) FROM events WHERE customer_id = '7'"},
		{cat: "edge", sql: "SELECT count(*) FROM events WHERE customer_id = 'x'"},
		{cat: "edge", sql: "SELECT count(*) FROM events WHERE customer_id = '99999999999'"},
		{cat: "edge", sql: "SELECT count(*) FROM customers WHERE id = 99999999999999999999"},
		{cat: "edge", sql: "SELECT count(*) FROM customers WHERE id = -3"},
		{cat: "edge", sql: "SELECT count(*) FROM customers WHERE id = 3::int2"},
		{cat: "edge", sql: "SELECT id, name FROM customers WHERE id IN (3, 3, '4', 5) ORDER BY id", ordered: true},
		{cat: "edge", sql: "SELECT id, name FROM customers WHERE id = 3 AND name <> 'nobody' ORDER BY id;", ordered: true},
		{cat: "edge", sql: "SELECT token FROM sessions WHERE token = E'\\x41' || ''"},
		{cat: "edge", sql: "SELECT count(*) FROM sessions WHERE token = 5"},
		{cat: "edge", sql: "SELECT count(*) FROM sessions WHERE token = U&'\\0041'"},
		{cat: "edge", sql: "SELECT 1 FROM customers WHERE id = 3 AND 1/0 = 1"},
		{cat: "edge", sql: "UPDATE customers SET tier = tier WHERE id = 3"},
		{cat: "edge", sql: "DELETE FROM customers WHERE id = 123456789 RETURNING id"},
		{cat: "edge", sql: "SELECT * FROM customers WHERE id = 3 FOR UPDATE"},
	}
	t.Run("edges", func(t *testing.T) {
		for i, q := range edges {
			t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
				check(t, simple, q, direct, lit)
			})
		}
	})

	// A table altered behind the proxy's back: the rewritten statement's
	// result type changed. That query fails as a cached statement does
	// in PostgreSQL (0A000); the next one is prepared again and sees the
	// new column.
	t.Run("result type changed behind the proxy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn := testenv.Connect(t, ctx, url)
		// copy_items is configured sharded by id (tableConfig).
		if _, err := conn.Exec(ctx, "CREATE TABLE copy_items (id bigint PRIMARY KEY, v text)"); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(context.Background(), "DROP TABLE copy_items")
		if _, err := conn.Exec(ctx, "INSERT INTO copy_items VALUES (1, 'a')"); err != nil {
			t.Fatal(err)
		}
		const q = "SELECT * FROM copy_items WHERE id = 1"
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"s1", "s2", "s3"} {
			direct := testenv.Connect(t, ctx, shardURL(id))
			if _, err := direct.Exec(ctx, "ALTER TABLE copy_items ADD COLUMN w int DEFAULT 7"); err != nil {
				t.Fatal(err)
			}
		}
		_, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" {
			t.Fatalf("first query after the change: %v, want 0A000 (cached plan must not change result type)", err)
		}
		var gotID int64
		var v string
		var w int
		if err := conn.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&gotID, &v, &w); err != nil || w != 7 {
			t.Fatalf("next query: w=%d, %v; want the new column with 7", w, err)
		}
	})

	// The rewrite happened: the shard holds the statement with $1.
	t.Run("prepared on the shard", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers WHERE id = 42", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, id := range []string{"s1", "s2", "s3"} {
			rows, err := conn.Query(ctx, fmt.Sprintf("/* shard: %s */ SELECT statement FROM pg_prepared_statements", id), pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, got...)
		}
		for _, s := range texts {
			if s == "SELECT count(*) FROM customers WHERE id = $1" {
				return
			}
		}
		t.Errorf("no shard holds the rewritten statement; prepared statements: %s", strings.Join(texts, " | "))
	})
}

// TestPipelinedCorpus runs the corpus in both protocols through nodes with
// pool.pipeline_connections on, alone and with literal_parameters: a
// one-statement read then shares a server connection with other clients'
// (router/pipeline.go), and every answer must still be PostgreSQL's own.
func TestPipelinedCorpus(t *testing.T) {
	if selfCheck {
		t.Skip("the self-check compares two plain servers; there is no proxy option to check")
	}
	for _, literal := range []bool{false, true} {
		t.Run(fmt.Sprintf("literal_parameters=%t", literal), func(t *testing.T) {
			cfg := nodeConfig(cluster)
			cfg.Pool.Size = 4
			cfg.Pool.PipelineConnections = 2
			cfg.Pool.LiteralParameters = literal
			n, stop, err := testenv.StartSharedNode(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			direct := newSide("direct", directURL)
			piped := newSide("proxy with pipeline_connections", testenv.URL(n, testenv.AppUser, testenv.AppPassword))
			defer direct.close()
			defer piped.close()
			for i, q := range corpus() {
				t.Run(fmt.Sprintf("%s/%03d", q.cat, i), func(t *testing.T) {
					for _, m := range modes {
						check(t, m, q, direct, piped)
					}
				})
			}
			var served uint64
			for _, p := range n.Router().Pools() {
				served += p.PipelinedRequests
			}
			if served < 50 {
				t.Errorf("%d requests were pipelined: the corpus's reads by key should be", served)
			}
		})
	}
}
