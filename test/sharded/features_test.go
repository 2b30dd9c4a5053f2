package sharded_test

// Routing features beyond the corpus: shard hints (comment and setting),
// EXPLAIN (ROUTE), shard-local constraint checks on DDL, and a shard that
// is down (57P03, never part of the rows).

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestShardHints(t *testing.T) {
	if selfCheck {
		t.Skip("hints are the proxy's")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	// Each shard answers with its own rows only: the counts by hint add
	// up to the whole table.
	var total, viaHints, viaSetting int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&total); err != nil {
		t.Fatal(err)
	}
	for _, id := range proxyShards {
		var n int
		if err := conn.QueryRow(ctx, "/* shard: "+id+" */ SELECT count(*) FROM customers").Scan(&n); err != nil {
			t.Fatalf("hint %s: %v", id, err)
		}
		viaHints += n
		if _, err := conn.Exec(ctx, "SET shardproxy.shard = '"+id+"'"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil {
			t.Fatalf("SET shardproxy.shard = %s: %v", id, err)
		}
		viaSetting += n
	}
	if _, err := conn.Exec(ctx, "RESET shardproxy.shard"); err != nil {
		t.Fatal(err)
	}
	if viaHints != total || viaSetting != total {
		t.Fatalf("per-shard counts add up to %d (hints) and %d (setting), want %d", viaHints, viaSetting, total)
	}
	_, err := conn.Exec(ctx, "/* shard: nosuch */ SELECT 1")
	testenv.RequireCode(t, err, "42704")
}

func TestExplainRoute(t *testing.T) {
	if selfCheck {
		t.Skip("EXPLAIN (ROUTE) is the proxy's")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	cases := map[string]string{
		"EXPLAIN (ROUTE) SELECT * FROM customers WHERE id = 42":                      "Route shards owning keys 42",
		"EXPLAIN (ROUTE) SELECT tier, count(*) FROM customers GROUP BY tier":         "Aggregate",
		"EXPLAIN (ROUTE) SELECT id FROM customers ORDER BY id LIMIT 3":               "MergeSort",
		"EXPLAIN (ROUTE) INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b')": "InsertSplit",
	}
	for q, want := range cases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			rows, err := conn.Query(ctx, q, mode)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if !strings.Contains(strings.Join(lines, "\n"), want) {
				t.Errorf("%s (%v): plan\n%s\nlacks %q", q, mode, strings.Join(lines, "\n"), want)
			}
		}
	}
}

func TestShardLocalConstraints(t *testing.T) {
	if selfCheck {
		t.Skip("the checks are the proxy's")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	for _, q := range []string{
		// customers is sharded by id: uniqueness must include it.
		"ALTER TABLE customers ADD CONSTRAINT customers_name_key UNIQUE (name)",
		"CREATE UNIQUE INDEX customers_name_idx ON customers (name)",
		// A foreign key to a table that is neither colocated nor reference.
		"ALTER TABLE orders ADD CONSTRAINT orders_note_fk FOREIGN KEY (note) REFERENCES sessions (token)",
	} {
		_, err := conn.Exec(ctx, q)
		pe := testenv.RequireCode(t, err, "0A000")
		if pe.Hint == "" {
			t.Errorf("%s: refused without a hint", q)
		}
	}
	// Including the key is fine, on every shard.
	if _, err := conn.Exec(ctx, "CREATE UNIQUE INDEX customers_id_name_idx ON customers (id, name)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DROP INDEX customers_id_name_idx"); err != nil {
		t.Fatal(err)
	}
}

func TestShardDown(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, 2*time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	down := shardPrimary("s3")
	if err := down.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := down.Start(sctx); err != nil {
			t.Errorf("restarting s3: %v", err)
			return
		}
		// The proxy backs off a server that refused it; later tests need
		// it back.
		testenv.WaitFor(t, sctx, "the proxy to reach s3 again", func() (bool, error) {
			_, err := conn.Exec(sctx, "/* shard: s3 */ SELECT 1")
			return err == nil, nil
		})
	}()
	rows, err := conn.Query(ctx, "SELECT id FROM customers ORDER BY id")
	var got int
	if err == nil {
		for rows.Next() {
			got++
		}
		err = rows.Err()
	}
	testenv.RequireCode(t, err, "57P03")
	if got != 0 {
		t.Errorf("%d rows reached the client before the error", got)
	}
}

func TestCopyThroughShards(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	// copy_items is configured sharded by id (tableConfig).
	if _, err := conn.Exec(ctx, "CREATE TABLE copy_items (id bigint PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE copy_items")
	var rows [][]any
	for i := range 1000 {
		rows = append(rows, []any{int64(i*7919 - 3000), "v" + strings.Repeat("x", i%5)})
	}
	// pgx sends COPY ... FROM STDIN BINARY.
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"copy_items"}, []string{"id", "v"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Fatalf("CopyFrom copied %d rows, want 1000", n)
	}
	var count int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM copy_items").Scan(&count); err != nil || count != 1000 {
		t.Fatalf("count %d, %v", count, err)
	}
	var buf strings.Builder
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY copy_items TO STDOUT WITH (FORMAT csv, HEADER)")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if tag.RowsAffected() != 1000 || len(lines) != 1001 || lines[0] != "id,v" {
		t.Fatalf("COPY TO: tag %q, %d lines, first %q", tag, len(lines), lines[0])
	}
	// A CSV COPY FROM with a header.
	csv := "id,v\n100000001,a\n-100000002,\"b,c\"\n"
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(csv), "COPY copy_items FROM STDIN WITH (FORMAT csv, HEADER true)"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM copy_items").Scan(&count); err != nil || count != 1002 {
		t.Fatalf("count after CSV copy %d, %v", count, err)
	}
	// Every shard got its own rows.
	for _, id := range proxyShards {
		var n int
		if err := conn.QueryRow(ctx, "/* shard: "+id+" */ SELECT count(*) FROM copy_items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < 200 {
			t.Errorf("%s holds %d of 1002 copied rows", id, n)
		}
	}
}

func TestExecuteRoutesByArguments(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	direct := testenv.Connect(t, ctx, directURL)
	defer direct.Close(ctx)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	rows, err := direct.Query(ctx, "SELECT id, name FROM customers WHERE name IS NOT NULL ORDER BY id LIMIT 12")
	if err != nil {
		t.Fatal(err)
	}
	type customer struct {
		ID   int64
		Name string
	}
	want, err := pgx.CollectRows(rows, pgx.RowToStructByPos[customer])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "PREPARE by_id(bigint) AS SELECT name FROM customers WHERE id = $1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for _, c := range want {
		var name string
		if err := conn.QueryRow(ctx, "EXECUTE by_id("+strconv.FormatInt(c.ID, 10)+")", pgx.QueryExecModeSimpleProtocol).Scan(&name); err != nil {
			t.Fatalf("EXECUTE by_id(%d): %v", c.ID, err)
		}
		if name != c.Name {
			t.Fatalf("EXECUTE by_id(%d) = %q, want %q", c.ID, name, c.Name)
		}
	}
	// A prepared statement over every shard is refused, never answered
	// from one shard.
	if _, err := conn.Exec(ctx, "PREPARE all_names AS SELECT count(*) FROM customers", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "EXECUTE all_names", pgx.QueryExecModeSimpleProtocol)
	testenv.RequireCode(t, err, "0A000")
}

func TestFailedStatementAbortsTransactionOnEveryShard(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		conn := testenv.Connect(t, ctx, proxyURL)
		// id lives on s1, bad on s2.
		var id, bad int64
		if err := conn.QueryRow(ctx, "/* shard: s1 */ SELECT max(id) FROM customers", mode).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "/* shard: s2 */ SELECT max(id) FROM customers", mode).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Touch one shard first, then fail on another through a scatter.
		if _, err := tx.Exec(ctx, "UPDATE customers SET tier = tier WHERE id = "+strconv.FormatInt(id, 10), mode); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "SELECT 1 / (CASE WHEN id = "+strconv.FormatInt(bad, 10)+" THEN 0 ELSE 1 END) FROM customers", mode)
		testenv.RequireCode(t, err, "22012")
		_, err = tx.Exec(ctx, "SELECT count(*) FROM customers WHERE id = 1", mode)
		testenv.RequireCode(t, err, "25P02")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil || one != 1 {
			t.Fatalf("after ROLLBACK: %d, %v", one, err)
		}
		conn.Close(ctx)
	}
}

func TestCursorStaysOnItsShard(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	var id int64
	var want string
	if err := conn.QueryRow(ctx, "/* shard: s3 */ SELECT id, name FROM customers WHERE name IS NOT NULL ORDER BY id LIMIT 1").Scan(&id, &want); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DECLARE c CURSOR FOR SELECT name FROM customers WHERE id = "+strconv.FormatInt(id, 10)); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := tx.QueryRow(ctx, "FETCH NEXT FROM c").Scan(&got); err != nil || got != want {
		t.Fatalf("FETCH: %q, %v; want %q", got, err, want)
	}
	if _, err := tx.Exec(ctx, "CLOSE c"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineAcrossShardsIsOneTransaction(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	// Fresh keys on two different shards.
	a := int64(7_000_001)
	b := a + 1
	for shardOf(b) == shardOf(a) {
		b++
	}
	// A pgx batch without BEGIN: one implicit transaction.
	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, 'pipe')", a)
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, 'pipe')", b)
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM wallets WHERE owner = 'pipe'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after the batch: %d rows, %v; want 2", n, err)
	}
	// Again, failing on the second insert (duplicate key): the first
	// shard's new row must not stay either.
	c := b + 1
	for shardOf(c) != shardOf(a) {
		c++
	}
	batch = &pgx.Batch{}
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, 'pipe2')", c)
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, 'pipe2')", b)
	err := conn.SendBatch(ctx, batch).Close()
	testenv.RequireCode(t, err, "23505")
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM wallets WHERE owner = 'pipe2'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the failed batch: %d rows, %v; want 0", n, err)
	}
	// A multi-shard write in a pipeline commits with the pipeline.
	batch = &pgx.Batch{}
	batch.Queue("UPDATE wallets SET version = version + 1 WHERE owner = 'pipe'")
	batch.Queue("SELECT 1/0")
	err = conn.SendBatch(ctx, batch).Close()
	testenv.RequireCode(t, err, "22012")
	var versions int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM wallets WHERE owner = 'pipe' AND version = 0").Scan(&versions); err != nil || versions != 2 {
		t.Fatalf("the failed pipeline's UPDATE stayed: %d rows at version 0, %v", versions, err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM wallets WHERE owner = 'pipe'"); err != nil {
		t.Fatal(err)
	}
}

func TestMergeBufferLimit(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	ctx := testenv.TestCtx(t, time.Minute)
	cfg := nodeConfig(cluster)
	cfg.Limits.MaxMergeBuffer = 1 << 20
	n := testenv.StartNode(t, cfg, node.Options{})
	conn := testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	defer conn.Close(ctx)
	// About 2.5 MB of rows from three shards.
	_, err := conn.Exec(ctx, "SELECT c.id, repeat('x', 1000) FROM customers c, generate_series(1, 5) ORDER BY c.id")
	pe := testenv.RequireCode(t, err, "54000")
	if !strings.Contains(pe.Message, "limits.max_merge_buffer") {
		t.Errorf("message %q does not name the limit", pe.Message)
	}
	// The session goes on; small answers still merge.
	var count int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&count); err != nil || count == 0 {
		t.Fatalf("after the refusal: %d, %v", count, err)
	}
}

// A read of no table inside a block is answered by the block's shard, not
// by the first shard joining the block for it: now() is the block's start
// and the backend is the block's.
func TestTableFreeReadStaysInBlock(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testenv.TestCtx(t, time.Minute)
			conn := testenv.Connect(t, ctx, proxyURL)
			defer conn.Close(ctx)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			key := keyOn(2, 8000)
			if _, err := tx.Exec(ctx, "INSERT INTO wallets (id, owner) VALUES ($1, 'table-free')", mode, key); err != nil {
				t.Fatal(err)
			}
			var free, inBlock time.Time
			var freePID, blockPID int32
			if err := tx.QueryRow(ctx, "SELECT now(), pg_backend_pid()", mode).Scan(&free, &freePID); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRow(ctx, "SELECT now(), pg_backend_pid() FROM wallets WHERE id = $1", mode, key).Scan(&inBlock, &blockPID); err != nil {
				t.Fatal(err)
			}
			if !free.Equal(inBlock) || freePID != blockPID {
				t.Fatalf("SELECT now(), pg_backend_pid() answered %v by %d; the block's shard says %v by %d", free, freePID, inBlock, blockPID)
			}
		})
	}
}
