// Package metadata holds the shard map: the shards, their hosts, and the
// key ranges each owns (DESIGN.md section 2). A Map is an immutable,
// versioned snapshot; routing reads one through an atomic pointer and never
// waits for a change. The Raft FSM that versions maps comes with the Raft
// issue; until then a node builds its map from configuration.
package metadata
