package copysplit_test

// The package's shared cluster: one shard, no replicas. The server is the
// oracle; one is enough.

import (
	"testing"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 1, 0, &cluster)
}
