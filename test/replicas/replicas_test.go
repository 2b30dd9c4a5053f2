package replicas_test

// Reads on replicas and read-your-writes against a real streaming
// replica: plain reads are served by the replica, a replica paused past
// the lag bound gets none until it catches up, a session always sees its
// own writes (also through another node, with a token), maintenance
// statements still work, and a replica dying under load costs no read.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func primary() *localpg.Server { return cluster.Shards[0].Primary }
func replica() *localpg.Server { return cluster.Shards[0].Replicas[0] }

func startNode(t *testing.T, tune func(*config.Config)) *node.Node {
	cfg := testenv.Config(cluster)
	cfg.Routing.HealthInterval = 100 * time.Millisecond
	if tune != nil {
		tune(cfg)
	}
	return testenv.StartNode(t, cfg, node.Options{})
}

func super(t *testing.T, ctx context.Context, s *localpg.Server) *pgx.Conn {
	return testenv.Connect(t, ctx, cluster.SuperConnString(s, testenv.Database))
}

func inRecovery(t *testing.T, ctx context.Context, conn *pgx.Conn) bool {
	t.Helper()
	var r bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()", pgx.QueryExecModeSimpleProtocol).Scan(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// eachPipelining runs a test with pool.pipeline_connections off and on:
// pipelined reads pick replicas, keep read-your-writes and survive a
// replica's death as the ordinary ones do.
func eachPipelining(t *testing.T, test func(t *testing.T, pipes int)) {
	for _, pipes := range []int{0, 2} {
		t.Run(fmt.Sprintf("pipeline_connections=%d", pipes), func(t *testing.T) { test(t, pipes) })
	}
}

func withPipes(pipes int) func(*config.Config) {
	return func(c *config.Config) { c.Pool.PipelineConnections = pipes }
}

// pipelinedOn counts the requests n pipelined to the server at addr.
func pipelinedOn(n *node.Node, addr string) uint64 {
	var served uint64
	for _, p := range n.Router().Pools() {
		if p.Addr == addr {
			served += p.PipelinedRequests
		}
	}
	return served
}

func TestReadsGoToReplica(t *testing.T) { eachPipelining(t, testReadsGoToReplica) }

func testReadsGoToReplica(t *testing.T, pipes int) {
	ctx := testenv.TestCtx(t, time.Minute)
	n := startNode(t, withPipes(pipes))
	conn := testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	defer conn.Close(ctx)
	testenv.WaitFor(t, ctx, "the replica to serve reads", func() (bool, error) { return inRecovery(t, ctx, conn), nil })
	onReplica := 0
	for range 1000 {
		if inRecovery(t, ctx, conn) {
			onReplica++
		}
	}
	t.Logf("%d of 1000 reads on the replica", onReplica)
	if onReplica < 900 {
		t.Fatalf("%d of 1000 reads on the replica, want at least 900", onReplica)
	}
	if got := pipelinedOn(n, replica().Addr()); pipes > 0 && got < 900 {
		t.Errorf("%d reads pipelined to the replica, want at least 900", got)
	}
	// Forcing the primary.
	if r := func() bool {
		var r bool
		_ = conn.QueryRow(ctx, "/* target: primary */ SELECT pg_is_in_recovery()", pgx.QueryExecModeSimpleProtocol).Scan(&r)
		return r
	}(); r {
		t.Error("/* target: primary */ was answered by the replica")
	}
	if _, err := conn.Exec(ctx, "SET shardproxy.target = 'primary'"); err != nil {
		t.Fatal(err)
	}
	if inRecovery(t, ctx, conn) {
		t.Error("SET shardproxy.target = 'primary' still reads from the replica")
	}
}

func TestLaggingReplicaGetsNoReads(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	n := startNode(t, func(c *config.Config) { c.Routing.MaxReplicaLag = 64 << 10 })
	conn := testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	defer conn.Close(ctx)
	testenv.WaitFor(t, ctx, "the replica to serve reads", func() (bool, error) { return inRecovery(t, ctx, conn), nil })
	rep, prim := super(t, ctx, replica()), super(t, ctx, primary())
	defer rep.Close(ctx)
	defer prim.Close(ctx)
	if _, err := rep.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	defer rep.Exec(context.Background(), "SELECT pg_wal_replay_resume()")
	// Well over the 64 KiB bound.
	if _, err := prim.Exec(ctx, "DROP TABLE IF EXISTS lag_filler; CREATE TABLE lag_filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 10000) g"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	testenv.WaitFor(t, ctx, "reads to leave the lagging replica", func() (bool, error) { return !inRecovery(t, ctx, conn), nil })
	took := time.Since(paused)
	t.Logf("reads left the paused replica %s after the write (poll interval 100ms)", took)
	if took > time.Second {
		t.Errorf("reads left the lagging replica only after %s; the poll interval is 100ms", took)
	}
	if _, err := rep.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, ctx, "reads to come back to the replica", func() (bool, error) { return inRecovery(t, ctx, conn), nil })
}

func TestReadYourWrites(t *testing.T) { eachPipelining(t, testReadYourWrites) }

func testReadYourWrites(t *testing.T, pipes int) {
	ctx := testenv.TestCtx(t, 3*time.Minute)
	// A lag bound so large the paused replica stays eligible: only
	// read-your-writes keeps the session's reads correct.
	tune := func(c *config.Config) { c.Routing.MaxReplicaLag = 1 << 40; c.Pool.PipelineConnections = pipes }
	n1, n2 := startNode(t, tune), startNode(t, tune)
	setup := super(t, ctx, primary())
	if _, err := setup.Exec(ctx, "DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id int PRIMARY KEY, v text); ALTER TABLE ryw OWNER TO app"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)
	a := testenv.Connect(t, ctx, testenv.URL(n1, testenv.AppUser, testenv.AppPassword))
	defer a.Close(ctx)
	b := testenv.Connect(t, ctx, testenv.URL(n2, testenv.AppUser, testenv.AppPassword))
	defer b.Close(ctx)
	rep := super(t, ctx, replica())
	defer rep.Close(ctx)
	id := 0
	run := func(name string, mode pgx.QueryExecMode) {
		missed := 0
		for range 500 {
			id++
			if _, err := a.Exec(ctx, "INSERT INTO ryw VALUES ($1, 'x')", mode, id); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got int
			err := a.QueryRow(ctx, "SELECT id FROM ryw WHERE id = $1", mode, id).Scan(&got)
			if err == pgx.ErrNoRows {
				missed++
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if missed > 0 {
			t.Errorf("%s: %d of 500 reads missed the session's own write", name, missed)
		}
	}
	run("replica live, simple protocol", pgx.QueryExecModeSimpleProtocol)
	run("replica live, extended protocol", pgx.QueryExecModeCacheStatement)
	if _, err := rep.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	run("replica paused, simple protocol", pgx.QueryExecModeSimpleProtocol)
	run("replica paused, extended protocol", pgx.QueryExecModeCacheStatement)
	if served := pipelinedOn(n1, primary().Addr()) + pipelinedOn(n1, replica().Addr()); pipes > 0 && served < 1000 {
		t.Errorf("%d of the 2000 reads were pipelined", served)
	}

	// The token carries the position to a session on another node: 1000
	// times, a write through one node read at once through the other.
	missed := 0
	var tok string
	for range 1000 {
		id++
		if _, err := a.Exec(ctx, "INSERT INTO ryw VALUES ($1, 'token')", id); err != nil {
			t.Fatal(err)
		}
		if err := a.QueryRow(ctx, "SHOW shardproxy.lsn", pgx.QueryExecModeSimpleProtocol).Scan(&tok); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Exec(ctx, "SET shardproxy.min_lsn = '"+tok+"'", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := b.QueryRow(ctx, "SELECT count(*) FROM ryw WHERE id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missed++
		}
	}
	if missed > 0 {
		t.Errorf("with the token (last %s), the other node's session missed %d of 1000 writes", tok, missed)
	}
	if _, err := rep.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	// Maintenance runs as the client sent it: the position query never
	// joins the client's statement.
	for _, q := range []string{"VACUUM ryw", "CREATE INDEX CONCURRENTLY ryw_v ON ryw (v)", "DROP INDEX CONCURRENTLY ryw_v"} {
		if _, err := a.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Errorf("%s through the proxy: %v", q, err)
		}
	}
}

func TestReplicaDiesUnderReadLoad(t *testing.T) { eachPipelining(t, testReplicaDiesUnderReadLoad) }

func testReplicaDiesUnderReadLoad(t *testing.T, pipes int) {
	ctx := testenv.TestCtx(t, 3*time.Minute)
	n := startNode(t, withPipes(pipes))
	url := testenv.URL(n, testenv.AppUser, testenv.AppPassword)
	probe := testenv.Connect(t, ctx, url)
	testenv.WaitFor(t, ctx, "the replica to serve reads", func() (bool, error) { return inRecovery(t, ctx, probe), nil })
	probe.Close(ctx)
	var reads, failures atomic.Int64
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				failures.Add(1)
				first.CompareAndSwap(nil, err.Error())
				return
			}
			defer conn.Close(context.Background())
			for {
				select {
				case <-stop:
					return
				default:
				}
				var x int
				if err := conn.QueryRow(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol).Scan(&x); err != nil {
					failures.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
				reads.Add(1)
			}
		}()
	}
	testenv.WaitFor(t, ctx, "reads under way", func() (bool, error) { return reads.Load() > 500, nil })
	if pipes > 0 && pipelinedOn(n, replica().Addr()) == 0 {
		t.Error("no read was pipelined to the replica")
	}
	if err := replica().Kill(); err != nil {
		t.Fatal(err)
	}
	before := reads.Load()
	testenv.WaitFor(t, ctx, "reads after the replica died", func() (bool, error) { return reads.Load() > before+2000, nil })
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d reads failed after the replica died; first: %v", f, reads.Load(), first.Load())
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := replica().Start(rctx); err != nil {
		t.Fatalf("restarting the replica: %v", err)
	}
}
