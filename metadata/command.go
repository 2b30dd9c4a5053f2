package metadata

// Typed commands: every change to the shard map (and to the state kept
// beside it, such as two-phase-commit decisions and the node directory) is
// one of these, appended to the Raft log and applied by every node in log
// order. Applying is deterministic: no clocks, no randomness, no I/O.

import (
	"errors"

	"github.com/shardproxy/shardproxy/keyspace"
)

// CommandType says what a Command does. The values are stored in the Raft
// log: never renumber them, only add.
type CommandType uint8

const (
	// CmdSeed installs the first map (Seed) when the state is empty; the
	// bootstrapping node proposes it from its configuration. Ignored when a
	// map exists, so a restart never re-seeds over a changed map.
	CmdSeed CommandType = iota + 1
	// CmdAddShard adds Shard (no ranges yet).
	CmdAddShard
	// CmdRemoveShard removes ShardID; refused while it owns a range.
	CmdRemoveShard
	// CmdSetHosts replaces Shard's primary and replicas.
	CmdSetHosts
	// CmdSetPrimary makes Host (one of the shard's replicas) the primary of
	// ShardID; the old primary is dropped from the shard.
	CmdSetPrimary
	// CmdAddTable adds or replaces Table.
	CmdAddTable
	// CmdRemoveTable removes the table Table names (schema and name).
	CmdRemoveTable
	// CmdSplitRange cuts the range containing At in two at At (At becomes
	// the lower bound of the upper half); no data moves.
	CmdSplitRange
	// CmdAssignRange gives the range starting at At to ShardID (the end of
	// an online move).
	CmdAssignRange
	// CmdRegisterNode records Node (id and addresses) in the directory.
	CmdRegisterNode
	// CmdRemoveNode drops NodeID from the directory.
	CmdRemoveNode
	// CmdDecideCommit records that distributed transaction GID commits.
	CmdDecideCommit
	// CmdDecisionDone forgets GID's decision (every participant committed).
	CmdDecisionDone
	// CmdDecideAbort records that GID rolls back; a later CmdDecideCommit
	// of the same GID is rejected (and an earlier one makes this one
	// rejected). Recovery on another node records it before rolling back a
	// dead coordinator's prepared transaction, so a coordinator that was
	// only slow cannot commit it afterwards.
	CmdDecideAbort
)

// NodeInfo is one proxy node as the cluster knows it.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	PGAddr   string `json:"pg_addr"`   // where clients (and forwarded cancels) reach it
	HTTPAddr string `json:"http_addr"` // admin API; followers forward writes there
}

// Command is one change. Only the fields its Type uses are set.
type Command struct {
	Type    CommandType `json:"type"`
	Seed    *Map        `json:"seed,omitempty"`
	Shard   *Shard      `json:"shard,omitempty"`
	ShardID string      `json:"shard_id,omitempty"`
	Host    string      `json:"host,omitempty"`
	Table   *Table      `json:"table,omitempty"`
	At      keyspace.ID `json:"at,omitempty"`
	Node    *NodeInfo   `json:"node,omitempty"`
	NodeID  string      `json:"node_id,omitempty"`
	GID     string      `json:"gid,omitempty"`
}

// ErrNotLeader is returned by a node that cannot apply a command itself;
// Leader names the node that can ("" when there is none right now).
type ErrNotLeader struct {
	Leader NodeInfo
}

func (e *ErrNotLeader) Error() string {
	if e.Leader.ID == "" {
		return "metadata: no leader (the cluster has no quorum, or is electing one)"
	}
	return "metadata: not the leader; the leader is " + e.Leader.ID
}

// ErrRejected wraps a command the state machine refused (a split at a
// range boundary, removing a shard that owns ranges, ...): a bad request,
// not a cluster failure.
var ErrRejected = errors.New("metadata: command rejected")
