package planner

import (
	"errors"

	"github.com/shardproxy/shardproxy/metadata"
)

// Plan says where a statement runs and what the router must do around it.
type Plan struct {
	Statement
	// Shard is the id of the shard that runs the statement.
	Shard string
}

// ErrNoShards is returned when the map has no shard to route to.
var ErrNoShards = errors.New("planner: the shard map has no shards")

// PlanQuery plans a simple-protocol query string. Until sharded routing
// lands, everything runs on the first shard's primary.
func PlanQuery(sql string, m *metadata.Map) (Plan, error) {
	if len(m.Shards) == 0 {
		return Plan{}, ErrNoShards
	}
	return Plan{Statement: Analyze(sql), Shard: m.Shards[0].ID}, nil
}
