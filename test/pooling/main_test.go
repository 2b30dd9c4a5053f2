package pooling_test

// The package's shared cluster and the helpers every test in it uses.

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// cluster is one shard without replicas, shared by every test here.
var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 1, 0, &cluster)
}

// startNode starts a node in front of the cluster with cfg adjusted by
// tune; it is shut down at cleanup.
func startNode(t *testing.T, tune func(*config.Config), opts node.Options) *node.Node {
	t.Helper()
	cfg := testenv.Config(cluster)
	cfg.DataDir = t.TempDir()
	if tune != nil {
		tune(cfg)
	}
	return testenv.StartNode(t, cfg, opts)
}

// txPool is the tune for transaction pooling with size server connections.
func txPool(size int) func(*config.Config) {
	return func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = size
	}
}

// proxyURL is the app user's URL through n.
func proxyURL(n *node.Node) string { return testenv.URL(n, testenv.AppUser, testenv.AppPassword) }

// directURL is the app user's URL straight to the shard's primary.
func directURL() string {
	return testenv.DirectURL(cluster, cluster.Shards[0].Primary, testenv.AppUser, testenv.AppPassword)
}

// superURL is the superuser's URL straight to the shard's primary.
func superURL() string { return cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database) }

// scalar runs a one-value query and returns the value as text.
func scalar(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// mustExec runs statements and fails the test on error.
func mustExec(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
