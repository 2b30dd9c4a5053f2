package twopc

// The decision store's contract. It is an interface because the file
// implementation is a stop-gap: the decisions move into the Raft log later,
// and the coordinator and recovery must not notice.

import (
	"context"
	"errors"
)

// DecisionLog records commit decisions durably. Presumed abort: only COMMIT
// decisions are recorded; a prepared transaction without one is rolled back
// by recovery.
//
// Implementations must be safe for concurrent use.
type DecisionLog interface {
	// Commit records that gid commits. It returns nil only once the
	// decision is durable: from then on Decided(gid) is true until Done,
	// also after a crash. An error wrapping ErrNotRecorded means the
	// decision certainly was not and will not be recorded (the caller may
	// roll back); any other error leaves the outcome unknown, and the log
	// must then not report Decided(gid) == false until that is settled
	// (FileLog refuses all further use until it is reopened).
	Commit(ctx context.Context, gid string) error
	// Done says every participant of gid has committed, so the decision
	// may be forgotten. Losing a Done is harmless (recovery finds the gid
	// nowhere and calls Done again), so it need not be durable.
	Done(ctx context.Context, gid string) error
	// Decided reports whether a COMMIT decision for gid is recorded and
	// not yet Done.
	Decided(gid string) (bool, error)
	// Pending returns the gids with a COMMIT decision not yet Done.
	// Recovery marks Done those no shard holds any more.
	Pending() ([]string, error)
}

// ErrNotRecorded is wrapped by DecisionLog.Commit errors after which the
// decision is certainly not recorded, so rolling back is safe.
var ErrNotRecorded = errors.New("twopc: commit decision not recorded")

// Aborter is implemented by a decision log that several nodes share (the
// Raft log): recovery on any node may then settle another node's prepared
// transactions. It records an abort before it rolls back, so a coordinator
// that was only slow, not dead, cannot record a commit afterwards (its
// Commit then fails with ErrNotRecorded and it rolls back too).
type Aborter interface {
	// Abort records that gid rolls back. committed is true when a COMMIT
	// decision was recorded first: gid must then be committed instead.
	Abort(ctx context.Context, gid string) (committed bool, err error)
}
