package distributed_test

import (
	"os"
	"testing"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithCluster(m, 2, 0, func(c *localpg.Cluster) error {
		cluster = c
		return nil
	}))
}
