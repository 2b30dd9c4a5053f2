package metadata

// The raft.FSM: the bridge between the Raft log and the state in
// state.go. Raft calls Apply, Snapshot and Restore from one goroutine; the
// current state sits behind an atomic pointer so that readers (routers,
// the admin API) never take a lock or wait for Raft.
//
// Unknown log entries panic, as in rqlite. Such an entry was written by a
// newer release (a rolling upgrade done leader-first) or is corrupt. If
// this node skipped it, its map would silently differ from the cluster's
// and it would route writes for a moved range to the old owner; a crash is
// loud, and the node starts working again once it runs the newer release.
// Rejected commands are different: they are decided alike by every node
// and come back to the proposer as errors.

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// snapshotFormat is the version of the snapshot's JSON layout.
const snapshotFormat = 1

// FSM is the shard map's Raft state machine. The zero value is not usable;
// call NewFSM.
type FSM struct {
	current atomic.Pointer[state]
	// appliedIndex is the index of the last command entry applied
	// (accepted, refused or without effect). Raft's own applied index
	// runs ahead: it counts entries handed to the FSM, not yet applied.
	appliedIndex atomic.Uint64
	// onChange is told about every new state, in log order, on Raft's
	// apply goroutine; the Store publishes maps from it. It must not block.
	onChange func(old, next *state)
	// onApplied is told after every command entry and restore, changed
	// state or not (the Store's waits re-check then). It must not block.
	onApplied func()
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns a state machine with no map, no nodes and no decisions.
func NewFSM() *FSM {
	f := &FSM{}
	f.current.Store(&state{})
	return f
}

// Apply applies one committed log entry. It returns nil or the error the
// command was rejected with (wrapping ErrRejected); raft hands that value
// to the proposer's ApplyFuture. It panics on an entry it cannot decode
// (see the file comment).
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		panic(fmt.Sprintf("metadata: log entry %d: %v (written by a newer release, or corrupt)", l.Index, err))
	}
	old := f.current.Load()
	next, err := old.apply(l.Index, c)
	if err == nil {
		f.publish(old, next)
	}
	f.appliedIndex.Store(l.Index)
	f.notify()
	return err
}

// AppliedIndex is the index of the last command entry this FSM has
// applied, or that the snapshot it restored had applied.
func (f *FSM) AppliedIndex() uint64 { return f.appliedIndex.Load() }

func (f *FSM) notify() {
	if f.onApplied != nil {
		f.onApplied()
	}
}

func (f *FSM) publish(old, next *state) {
	if next == old {
		return
	}
	f.current.Store(next)
	if f.onChange != nil {
		f.onChange(old, next)
	}
}

// Snapshot captures the current state. The state is immutable, so holding
// the pointer is the whole capture; Persist encodes it later, off the
// apply goroutine, while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.current.Load(), appliedIndex: f.appliedIndex.Load()}, nil
}

// Restore replaces the state with a snapshot's and publishes it: a node
// starting from its own snapshot, or a follower too far behind for the
// leader's log.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	file, err := decodeSnapshot(rc)
	if err != nil {
		return err
	}
	st := file.state
	f.publish(f.current.Load(), &st)
	f.appliedIndex.Store(file.AppliedIndex)
	f.notify()
	return nil
}

// Map is the current map; nil before the cluster is seeded.
func (f *FSM) Map() *Map { return f.current.Load().Map }

// Nodes is the node directory, sorted by id. The caller may keep it; it is
// never modified.
func (f *FSM) Nodes() []NodeInfo { return f.current.Load().Nodes }

// Node returns the directory entry for id.
func (f *FSM) Node(id string) (NodeInfo, bool) {
	return f.current.Load().node(id)
}

// Decided reports whether distributed transaction gid is decided to
// commit and not yet done.
func (f *FSM) Decided(gid string) bool {
	_, found := slices.BinarySearch(f.current.Load().Decisions, gid)
	return found
}

// Aborted reports whether distributed transaction gid is decided to roll
// back (CmdDecideAbort).
func (f *FSM) Aborted(gid string) bool {
	_, found := slices.BinarySearch(f.current.Load().Aborts, gid)
	return found
}

// PendingDecisions lists the gids decided to commit and not yet done,
// sorted. The caller may keep the slice.
func (f *FSM) PendingDecisions() []string { return f.current.Load().Decisions }

func (s *state) node(id string) (NodeInfo, bool) {
	i, found := slices.BinarySearchFunc(s.Nodes, id, func(n NodeInfo, id string) int {
		return strings.Compare(n.ID, id)
	})
	if !found {
		return NodeInfo{}, false
	}
	return s.Nodes[i], true
}

// snapshotFile is the snapshot's layout on disk and on the wire.
type snapshotFile struct {
	Format       int    `json:"format"`
	AppliedIndex uint64 `json:"applied_index"`
	state
}

type fsmSnapshot struct {
	state        *state
	appliedIndex uint64
}

// Persist writes the snapshot; raft calls it on its own goroutine.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotFile{Format: snapshotFormat, AppliedIndex: s.appliedIndex, state: *s.state}); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("metadata: writing snapshot: %w", err)
	}
	return sink.Close()
}

// Release has nothing to free: the snapshot is a pointer to a state
// nobody modifies.
func (s *fsmSnapshot) Release() {}

func decodeSnapshot(r io.Reader) (*snapshotFile, error) {
	var file snapshotFile
	if err := json.NewDecoder(r).Decode(&file); err != nil {
		return nil, fmt.Errorf("metadata: reading snapshot: %w", err)
	}
	if file.Format != snapshotFormat {
		return nil, fmt.Errorf("metadata: snapshot format %d, this release reads %d", file.Format, snapshotFormat)
	}
	if file.Map != nil {
		if err := file.Map.Validate(); err != nil {
			return nil, fmt.Errorf("metadata: snapshot holds an invalid map: %w", err)
		}
	}
	return &file, nil
}
