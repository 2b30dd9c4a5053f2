package replicas_test

import (
	"testing"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// One shard with one streaming replica.
var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 1, 1, &cluster)
}
