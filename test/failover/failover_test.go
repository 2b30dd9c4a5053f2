package failover_test

// Primary changes are map changes: with the primary gone, writes fail fast
// (57P03) while reads continue on the replica; once the replica is
// promoted, the Raft leader makes it the shard's primary and writes
// succeed through every node within seconds, without a restart or a
// configuration change; the old primary, restarted on its own, gets no
// write.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 1, 1, &cluster)
}

// startFleet runs three nodes in one Raft group, in this process.
func startFleet(t *testing.T) []*node.Node {
	ctx := testenv.TestCtx(t, time.Minute)
	var addrs [3]string
	var peers []string
	for i := range addrs {
		addrs[i] = testenv.FreeAddr(t)
		peers = append(peers, fmt.Sprintf("n%d@%s", i+1, addrs[i]))
	}
	var nodes []*node.Node
	for i := range addrs {
		cfg := testenv.Config(cluster)
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = t.TempDir()
		cfg.AdminToken = "failover-token"
		cfg.Raft = config.Raft{Listen: addrs[i], Peers: peers, Bootstrap: i == 0}
		cfg.Routing.HealthInterval = 100 * time.Millisecond
		var opts node.Options
		if os.Getenv("SHARDPROXY_TEST_DEBUG") != "" {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		n, err := node.New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.Shutdown(sctx)
		})
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := n.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func TestFailover(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	nodes := startFleet(t)
	conns := make([]*pgx.Conn, len(nodes))
	for i, n := range nodes {
		conns[i] = testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
		defer conns[i].Close(ctx)
	}
	if _, err := conns[0].Exec(ctx, "DROP TABLE IF EXISTS fo; CREATE TABLE fo (id serial PRIMARY KEY, phase text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Exec(ctx, "INSERT INTO fo (phase) VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	old, rep := cluster.Shards[0].Primary, cluster.Shards[0].Replicas[0]
	testenv.WaitFor(t, ctx, "the replica to have the table", func() (bool, error) {
		c, err := pgx.Connect(ctx, cluster.SuperConnString(rep, testenv.Database))
		if err != nil {
			return false, nil
		}
		defer c.Close(ctx)
		var n int
		err = c.QueryRow(ctx, "SELECT count(*) FROM fo").Scan(&n)
		return err == nil && n == 1, nil
	})

	// The primary goes away: writes fail fast, reads go on.
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	started := time.Now()
	_, err := conns[1].Exec(wctx, "INSERT INTO fo (phase) VALUES ('no primary')")
	cancel()
	testenv.RequireCode(t, err, "57P03")
	if took := time.Since(started); took > 10*time.Second {
		t.Errorf("a write with no primary took %s to fail", took)
	}
	var n int
	if err := conns[2].QueryRow(ctx, "SELECT count(*) FROM fo", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 1 {
		t.Errorf("a read with the primary down: %d rows, %v", n, err)
	}

	// Promote the replica: every node writes to it within 5 s.
	sup, err := pgx.Connect(ctx, cluster.SuperConnString(rep, testenv.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close(ctx)
	if _, err := sup.Exec(ctx, "SELECT pg_promote()"); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	for i, c := range conns {
		var last error
		testenv.WaitFor(t, ctx, fmt.Sprintf("a write through n%d", i+1), func() (bool, error) {
			_, last = c.Exec(ctx, "INSERT INTO fo (phase) VALUES ('after')")
			if last != nil && os.Getenv("SHARDPROXY_TEST_DEBUG") != "" {
				t.Logf("write through n%d: %v", i+1, last)
			}
			return last == nil, nil
		})
	}
	if took := time.Since(promoted); took > 5*time.Second {
		t.Errorf("writes through every node took %s after the promotion", took)
	}

	// The old primary comes back on its own: it gets no write.
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, "INSERT INTO fo (phase) VALUES ('old is back')"); err != nil {
			t.Fatal(err)
		}
	}
	oc, err := pgx.Connect(ctx, cluster.SuperConnString(old, testenv.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close(ctx)
	var onOld int
	if err := oc.QueryRow(ctx, "SELECT count(*) FROM fo WHERE phase <> 'before'").Scan(&onOld); err != nil {
		t.Fatal(err)
	}
	if onOld != 0 {
		t.Fatalf("the old primary got %d writes after the failover", onOld)
	}
	var onNew int
	if err := sup.QueryRow(ctx, "SELECT count(*) FROM fo WHERE phase = 'old is back'").Scan(&onNew); err != nil || onNew != 3 {
		t.Fatalf("the new primary has %d of the 3 writes made after the old one returned (%v)", onNew, err)
	}
}
