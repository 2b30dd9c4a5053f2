package admin

// The admin API's view of the cluster: the few things it reads and the one
// thing it does (Apply). Declared here, where it is used, so the server can
// be tested with a fake and the Raft store stays free of HTTP concerns.

import (
	"context"

	"github.com/shardproxy/shardproxy/metadata"
)

// Cluster is what the admin API needs from the node it runs in.
type Cluster interface {
	// NodeID is this node's id.
	NodeID() string
	// Map is this node's current map, nil before the first one arrives.
	Map() *metadata.Map
	// AppliedIndex is the last Raft log index this node has applied.
	AppliedIndex() uint64
	// Nodes is the node directory (CmdRegisterNode).
	Nodes() []metadata.NodeInfo
	// Servers is the Raft membership as this node sees it.
	Servers() ([]metadata.ServerInfo, error)
	// Leader is the current leader, the zero NodeInfo when there is none.
	Leader() metadata.NodeInfo
	// Apply proposes c and returns once this node has applied it, with the
	// log index it was applied at. A node that is not the leader returns
	// *metadata.ErrNotLeader; a command the state machine refuses returns an
	// error wrapping metadata.ErrRejected.
	Apply(ctx context.Context, c metadata.Command) (uint64, error)
}

// MapWaiter may be implemented by a Cluster that can say when its map
// reaches a version. Without it the server polls Map, which costs a few
// milliseconds of latency on a forwarded write and nothing else.
type MapWaiter interface {
	// WaitMap returns nil once Map().Version >= version, or ctx's error.
	WaitMap(ctx context.Context, version uint64) error
}

// Role names used in the API (and by the CLI).
const (
	RoleLeader   = "leader"
	RoleFollower = "follower"
	RoleNonvoter = "nonvoter"
	// RoleNone is a directory entry that is not in the Raft membership
	// (being added or removed).
	RoleNone = "none"
	// RoleUnknown is used when the membership could not be read.
	RoleUnknown = "unknown"
)

// role is id's role in servers; membershipKnown is false when Servers
// failed, which is not the same as "not a member".
func role(id string, servers []metadata.ServerInfo, membershipKnown bool) string {
	if !membershipKnown {
		return RoleUnknown
	}
	for _, s := range servers {
		if s.ID != id {
			continue
		}
		switch {
		case s.Leader:
			return RoleLeader
		case s.Voter:
			return RoleFollower
		default:
			return RoleNonvoter
		}
	}
	return RoleNone
}
