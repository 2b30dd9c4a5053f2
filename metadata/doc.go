// Package metadata holds the shard map: shards, their hosts and, later, the
// key ranges and the Raft FSM that versions them (DESIGN.md section 2).
package metadata
