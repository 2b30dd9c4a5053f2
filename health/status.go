package health

// What the monitor reports about each backend: SHOW REPLICAS, the admin
// API and the metrics all read BackendStatus, so its fields are the
// vocabulary operators see.

import "time"

// Role is a backend's place in the shard map.
type Role string

// Roles.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// index numbers roles for the per-role query counters.
func (r Role) index() int {
	if r == RolePrimary {
		return 0
	}
	return 1
}

// State is what the last poll found.
type State string

// States.
const (
	// StateUnknown: not polled yet, or a replica whose primary's position
	// has never been seen, so its lag cannot be measured.
	StateUnknown State = "unknown"
	// StateUp: a primary that answered out of recovery, or a replica in
	// recovery within the lag bound: it gets reads.
	StateUp State = "up"
	// StateDown: the last poll failed, the router marked it down since
	// (MarkDown), or a primary answered from recovery.
	StateDown State = "down"
	// StateLagging: a replica that answered but is further behind its
	// primary than MaxLagBytes.
	StateLagging State = "lagging"
	// StatePromoted: a replica that answered out of recovery: a primary the
	// map does not know as one yet.
	StatePromoted State = "promoted"
)

// BackendStatus is one backend of the current map as the last poll saw it.
type BackendStatus struct {
	Shard string
	Addr  string
	Role  Role
	State State
	// LagBytes is how far a replica's replay position is behind its
	// primary's last current position; -1 when unknown (the replica or
	// the primary not seen, or the replica promoted); 0 for primaries.
	LagBytes int64
	// ReplayLSN is a replica's last pg_last_wal_replay_lsn(); 0 for a
	// primary and a promoted replica.
	ReplayLSN LSN
	// CurrentLSN is a primary's last pg_current_wal_insert_lsn() (kept while it
	// is down), a promoted replica's own, and for a replica in recovery its
	// primary's (what its lag is measured against); 0 when never seen.
	CurrentLSN LSN
	// Timeline is the backend's timeline: exact out of recovery; for a
	// standby, its last restartpoint's, which may trail.
	Timeline  uint32
	LastError string    // of the last poll, or of the router's MarkDown
	PolledAt  time.Time // last successful poll; zero if none
	// Queries counts the reads Begin accounted to the backend in this
	// role since the process started; Outstanding those not yet ended.
	Queries     uint64
	Outstanding int64
}
