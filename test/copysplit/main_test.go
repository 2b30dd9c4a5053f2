package copysplit_test

// The package's shared cluster: one shard, no replicas. The server is the
// oracle; one is enough.

import (
	"os"
	"testing"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithCluster(m, 1, 0, func(c *localpg.Cluster) error {
		cluster = c
		return nil
	}))
}
