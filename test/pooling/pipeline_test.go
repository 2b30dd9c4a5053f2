package pooling_test

// Pipelining (pool.pipeline_connections): one-statement reads of many
// clients share a few server connections, their requests written back to
// back. Each client must get its own answers, errors must stay with the
// client that caused them, a cancel must reach only the running request,
// and a server connection dying under the pipeline must cost no client an
// error it would not have had.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const pipelineRows = 200

// pipelinedNode starts a node with pipelining on. A table is declared so
// statements are planned and routed (pipelining follows the routing plan).
func pipelinedNode(t *testing.T, tune ...func(*config.Config)) *node.Node {
	t.Helper()
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	for _, sql := range []string{
		"DROP TABLE IF EXISTS pl_items, pl_other",
		"CREATE TABLE pl_items (id int PRIMARY KEY, v text NOT NULL)",
		fmt.Sprintf("INSERT INTO pl_items SELECT i, 'v' || i FROM generate_series(1, %d) i", pipelineRows),
		"CREATE TABLE pl_other (id int PRIMARY KEY)",
		"INSERT INTO pl_other VALUES (1)",
		"GRANT SELECT ON pl_items, pl_other TO " + testenv.AppUser,
	} {
		if _, err := super.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = 6
		c.Pool.PipelineConnections = 2
		c.Tables = []config.Table{{Name: "pl_items", Key: "id"}}
		for _, f := range tune {
			f(c)
		}
	}, node.Options{})
}

// lockItems locks pl_items against every read until unlock (or the
// test's end). Its own connection: pg_stat_activity, which the tests poll
// on the superuser's, is a snapshot per transaction.
func lockItems(t *testing.T, ctx context.Context) (unlock func()) {
	t.Helper()
	locker, err := testenv.Connect(t, ctx, superURL()).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locker.Rollback(context.Background()) })
	if _, err := locker.Exec(ctx, "LOCK TABLE pl_items IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := locker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func pipelineStats(n *node.Node) router.PoolStats {
	var total router.PoolStats
	for _, p := range n.Router().Pools() {
		total.Pipelined += p.Pipelined
		total.PipelinedRequests += p.PipelinedRequests
	}
	return total
}

// TestPipelinedReadsKeepTheirAnswers runs point reads from many clients at
// once, in every query mode pgx has, with errors mixed in.
func TestPipelinedReadsKeepTheirAnswers(t *testing.T) {
	n := pipelinedNode(t)
	ctx := testenv.TestCtx(t, 60*time.Second)
	modes := []pgx.QueryExecMode{
		pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
	}
	const clients = 10
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		cfg, err := pgx.ParseConfig(proxyURL(n))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = modes[c%len(modes)]
		conn := testenv.ConnectConfig(t, ctx, cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				id := (c*37+i*11)%pipelineRows + 1
				if i%25 == 7 {
					// Another client's statement is behind or ahead of
					// this one on the same connection: the error is ours.
					_, err := conn.Exec(ctx, "SELECT 1 / (id - id) FROM pl_items WHERE id = $1", id)
					if testenv.PGCode(err) != "22012" {
						errs <- fmt.Errorf("client %d (%v): division by zero gave %v", c, cfg.DefaultQueryExecMode, err)
						return
					}
					continue
				}
				var v string
				if err := conn.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = $1", id).Scan(&v); err != nil {
					errs <- fmt.Errorf("client %d (%v) id %d: %w", c, cfg.DefaultQueryExecMode, id, err)
					return
				}
				if want := fmt.Sprintf("v%d", id); v != want {
					errs <- fmt.Errorf("client %d (%v): id %d answered %q, want %q", c, cfg.DefaultQueryExecMode, id, v, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := pipelineStats(n)
	if st.Pipelined == 0 || st.PipelinedRequests < clients*100 {
		t.Errorf("pipelined connections %d, requests %d: want the reads pipelined", st.Pipelined, st.PipelinedRequests)
	}
	if st.Pipelined > 2 {
		t.Errorf("%d pipelined connections, more than pool.pipeline_connections (2)", st.Pipelined)
	}
}

// TestPipelinedCancelAndStall: a pipelined read blocked on a lock is
// cancelled by its client's cancel request; meanwhile other clients' reads
// do not wait behind it.
func TestPipelinedCancelAndStall(t *testing.T) {
	n := pipelinedNode(t)
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))
	var v string
	if err := a.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	before := pipelineStats(n).PipelinedRequests

	unlock := lockItems(t, ctx)
	done := runAsync(ctx, a, "SELECT v FROM pl_items WHERE id = 2 /* A pipelined */")
	testenv.WaitActive(t, ctx, super, "/* A pipelined */")
	if got := pipelineStats(n).PipelinedRequests; got <= before {
		t.Fatalf("the blocked read was not pipelined (requests %d -> %d)", before, got)
	}
	// B's reads come after A's statement has been running for longer than
	// the pipeline's stall limit: they must not queue behind it.
	for i := range 20 {
		var x int
		if err := b.QueryRow(ctx, "SELECT id FROM pl_other WHERE id = 1").Scan(&x); err != nil {
			t.Fatalf("B's read %d while A is blocked: %v", i, err)
		}
	}
	if err := a.PgConn().CancelRequest(ctx); err != nil {
		t.Fatalf("CancelRequest: %v", err)
	}
	testenv.RequireCode(t, testenv.WaitErr(t, ctx, done), "57014")
	unlock()
	if err := a.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = 3").Scan(&v); err != nil || v != "v3" {
		t.Fatalf("A after the cancel: %q, %v", v, err)
	}
}

// TestPipelinedServerTerminated: the backend of a pipelined connection is
// terminated while idle, then while running a client's read; the clients
// never see it (a read nothing of whose answer was sent runs again).
func TestPipelinedServerTerminated(t *testing.T) {
	n := pipelinedNode(t)
	ctx := testenv.TestCtx(t, 60*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))
	read := func(conn *pgx.Conn, id int, note string) {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = $1 "+note, id).Scan(&v); err != nil {
			t.Fatalf("read %d %s: %v", id, note, err)
		}
		if v != fmt.Sprintf("v%d", id) {
			t.Fatalf("read %d answered %q", id, v)
		}
	}
	terminate := func(where string) int {
		t.Helper()
		var k int
		err := super.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND "+where,
			testenv.AppUser).Scan(&k)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	for i := range 20 {
		read(a, i+1, "")
		read(b, i+2, "")
	}
	if pipelineStats(n).Pipelined == 0 {
		t.Fatal("no pipelined connection opened")
	}
	if terminate("backend_type = 'client backend'") == 0 {
		t.Fatal("no server backend was terminated")
	}
	testenv.WaitFor(t, ctx, "the terminated backends to exit", func() (bool, error) {
		var left int
		err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", testenv.AppUser).Scan(&left)
		return left == 0, err
	})
	served := pipelineStats(n).PipelinedRequests
	for i := range 20 {
		read(a, i+3, "")
		read(b, i+4, "")
	}
	if st := pipelineStats(n); st.PipelinedRequests < served+30 || st.Pipelined == 0 {
		t.Errorf("after the backends were terminated: %d pipelined connections, %d requests (was %d)", st.Pipelined, st.PipelinedRequests, served)
	}

	// Terminated while running A's read: it runs again, and A gets it.
	// (Read once first: a Parse runs the ordinary way, and it too would
	// wait for the lock.)
	read(a, 6, "/* A terminated */")
	unlock := lockItems(t, ctx)
	done := make(chan error, 1)
	go func() {
		var v string
		err := a.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = $1 /* A terminated */", 7).Scan(&v)
		if err == nil && v != "v7" {
			err = fmt.Errorf("answered %q", v)
		}
		done <- err
	}()
	testenv.WaitActive(t, ctx, super, "/* A terminated */")
	if terminate("state = 'active' AND query LIKE '%/* A terminated */%' AND pid <> pg_backend_pid()") != 1 {
		t.Fatal("A's backend was not terminated")
	}
	// The read runs again on another connection and waits for the lock.
	testenv.WaitFor(t, ctx, "A's read to run again", func() (bool, error) {
		var running int
		err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%/* A terminated */%' AND wait_event_type = 'Lock'",
			testenv.AppUser).Scan(&running)
		return running == 1, err
	})
	unlock()
	if err := testenv.WaitErr(t, ctx, done); err != nil {
		t.Fatalf("A's read, its backend terminated under it: %v", err)
	}
	read(b, 9, "")
}

// TestPipelinedAfterLiteralParameters: a literal_parameters rewrite
// prepares "... WHERE id = $1" on a server connection without describing
// it; a client's unnamed Parse of that same text found it there and kept
// no description, so its repeated Parses were never answered by the proxy
// and its reads never pipelined (found in make bench: extended-protocol
// reads after a simple-protocol run).
func TestPipelinedAfterLiteralParameters(t *testing.T) {
	n := pipelinedNode(t, func(c *config.Config) { c.Pool.LiteralParameters = true })
	ctx := testenv.TestCtx(t, 30*time.Second)
	a := testenv.Connect(t, ctx, proxyURL(n))
	// In a transaction: not pipelined, so the rewrite is prepared on an
	// ordinary pooled connection, the one the next session gets (LIFO).
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := tx.QueryRow(ctx, "SELECT v FROM pl_items WHERE id = 5", pgx.QueryExecModeSimpleProtocol).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b := testenv.Connect(t, ctx, proxyURL(n))
	read := func(id int) {
		t.Helper()
		// Unnamed Parse without parameter types, as libpq and pgbench
		// send it: the same server statement as the rewrite's.
		res := b.PgConn().ExecParams(ctx, "SELECT v FROM pl_items WHERE id = $1", [][]byte{[]byte(fmt.Sprint(id))}, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(res.Rows) != 1 || string(res.Rows[0][0]) != fmt.Sprintf("v%d", id) {
			t.Fatalf("id %d answered %q", id, res.Rows)
		}
	}
	read(1)
	before := pipelineStats(n).PipelinedRequests
	for id := 2; id <= 21; id++ {
		read(id)
	}
	if got := pipelineStats(n).PipelinedRequests - before; got < 19 {
		t.Errorf("%d of 20 repeated extended-protocol reads were pipelined", got)
	}
}
