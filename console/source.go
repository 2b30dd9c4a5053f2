package console

// What the console reads from the node it runs in. The interface is kept
// to the few reads the SHOW commands need so the console depends on neither
// the router nor the node, and tests answer it with a plain struct.

import "github.com/shardproxy/shardproxy/metadata"

// Database is the startup database name that selects the console instead
// of the shards.
const Database = "shardproxy"

// Source is the node's state as the console shows it. Every method is
// called once per SHOW that needs it, from the session's goroutine, and
// must be safe to call concurrently with the node's own work.
type Source interface {
	// Map is the shard map in force; nil before the node has one.
	Map() *metadata.Map
	// Pools are the node's server connection pools, in display order.
	Pools() []PoolRow
	// Nodes are the proxy nodes of the cluster as this node knows them.
	Nodes() []NodeRow
	// Version is the proxy's version ("dev" for an unreleased build).
	Version() string
}

// PoolRow is one server connection pool: the node adapts its router's pool
// statistics to it, so the console need not import the router.
type PoolRow struct {
	Database, User string
	Addr           string // host:port of the server
	// Open counts the pool's server connections; Active of them are lent
	// to clients and Idle wait in the pool.
	Open, Active, Idle int
}

// NodeRow is one proxy node.
type NodeRow struct {
	metadata.NodeInfo
	// Role is the node's Raft role ("leader", "follower", ...); "" when
	// this node does not know it.
	Role string
	// MapVersion is the version of the shard map the node has applied;
	// 0 when unknown (published maps start at version 1).
	MapVersion uint64
}
