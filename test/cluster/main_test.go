package cluster_test

import (
	"testing"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 2, 0, &cluster)
}
