// Package metadata holds the shard map: the shards, their hosts, and the
// key ranges each owns (DESIGN.md section 2), kept in Raft by the proxy
// nodes themselves.
//
// A Map is an immutable, versioned snapshot whose Version is the Raft log
// index that produced it; routing reads one through an atomic pointer
// (Store.Map, Store.Subscribe) and never waits for a change. Changes are
// typed Commands (command.go), proposed on the leader with Store.Apply and
// applied by every node's FSM in log order, deterministically. The same log
// keeps the node directory and the commit decisions of distributed
// transactions.
//
// OpenStore starts this node's member of the Raft group from its data
// directory: it resumes existing state, bootstraps a new cluster when told
// to, or waits to be added. See metadata/DESIGN.md for the data flow,
// invariants and trade-offs.
package metadata
