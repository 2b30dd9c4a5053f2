package clients_test

// The package's shared cluster and the helpers every test in it uses.

import (
	"os"
	"testing"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// cluster is one shard without replicas, shared by every test here.
var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	// The 10,000-client test re-executes this binary as its client
	// process; that process needs no cluster.
	if os.Getenv(helperEnv) != "" {
		os.Exit(runClientHelper())
	}
	os.Exit(testenv.RunWithCluster(m, 1, 0, func(c *localpg.Cluster) error {
		cluster = c
		return nil
	}))
}

// newConfig is testenv.Config with a data directory of the test's own.
func newConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := testenv.Config(cluster)
	cfg.DataDir = t.TempDir()
	return cfg
}

// startNode starts a node with cfg adjusted by tune.
func startNode(t *testing.T, tune func(*config.Config)) *node.Node {
	t.Helper()
	cfg := newConfig(t)
	if tune != nil {
		tune(cfg)
	}
	return testenv.StartNode(t, cfg, node.Options{})
}

// proxyURL is the app user's URL through n.
func proxyURL(n *node.Node) string { return testenv.URL(n, testenv.AppUser, testenv.AppPassword) }

// directURL is the app user's URL straight to the shard's primary.
func directURL() string {
	return testenv.DirectURL(cluster, cluster.Shards[0].Primary, testenv.AppUser, testenv.AppPassword)
}

// superURL is the superuser's URL straight to the shard's primary.
func superURL() string { return cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database) }
