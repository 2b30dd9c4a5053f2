package metadata

// What the rest of the proxy asks of the Store: read the replicated state
// (lock-free, from the FSM's atomic pointer), propose commands, and change
// the cluster's membership. Writes are leader-only; a follower answers
// *ErrNotLeader naming the leader so the caller (the admin API) can
// forward.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// defaultEnqueueTimeout bounds how long a proposal may wait for room in
// raft's queue when the caller's context has no deadline.
const defaultEnqueueTimeout = 10 * time.Second

// Map is the current shard map, nil until the cluster is seeded. It never
// waits for Raft.
func (s *Store) Map() *Map { return s.fsm.Map() }

// Nodes is the node directory, sorted by id. Do not modify it.
func (s *Store) Nodes() []NodeInfo { return s.fsm.Nodes() }

// Decided reports whether distributed transaction gid is decided to
// commit and not yet done, in this node's applied state.
func (s *Store) Decided(gid string) bool { return s.fsm.Decided(gid) }

// Aborted reports whether distributed transaction gid is decided to roll
// back, in this node's applied state.
func (s *Store) Aborted(gid string) bool { return s.fsm.Aborted(gid) }

// PendingDecisions lists the gids decided to commit and not yet done,
// sorted. Do not modify it.
func (s *Store) PendingDecisions() []string { return s.fsm.PendingDecisions() }

// AppliedIndex is the last Raft log index applied on this node.
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// IsLeader reports whether this node is the Raft leader right now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader is the current leader as the directory knows it (its Raft id and
// address only, when it has not registered yet); zero when there is none.
func (s *Store) Leader() NodeInfo {
	addr, id := s.raft.LeaderWithID()
	if id == "" {
		return NodeInfo{}
	}
	if n, ok := s.fsm.Node(string(id)); ok {
		return n
	}
	return NodeInfo{ID: string(id), RaftAddr: string(addr)}
}

// Servers is the Raft configuration: every voter and non-voter.
func (s *Store) Servers() ([]ServerInfo, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.raftError(err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []ServerInfo
	for _, srv := range f.Configuration().Servers {
		out = append(out, ServerInfo{
			ID:     string(srv.ID),
			Addr:   string(srv.Address),
			Voter:  srv.Suffrage == raft.Voter,
			Leader: srv.ID == leader,
		})
	}
	return out, nil
}

// Apply proposes c and waits until it is committed and applied here. It
// returns the log index that carried it; a command the state machine
// refused returns that index and an error wrapping ErrRejected. On a
// follower it returns *ErrNotLeader.
//
// When ctx ends first the command may still be applied later. When
// leadership is lost while waiting, the outcome is unknown: the error says
// so and is not *ErrNotLeader, so a caller does not blindly retry a
// command that may have been applied.
func (s *Store) Apply(ctx context.Context, c Command) (uint64, error) {
	if s.ctx.Err() != nil {
		return 0, ErrClosed
	}
	if !s.IsLeader() {
		return 0, &ErrNotLeader{Leader: s.Leader()}
	}
	data, err := EncodeCommand(c)
	if err != nil {
		return 0, err
	}
	f := s.raft.Apply(data, enqueueTimeout(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return 0, s.raftError(err)
	}
	if err, ok := f.Response().(error); ok {
		return f.Index(), err
	}
	return f.Index(), nil
}

// ApplyAll applies cmds in order, as Apply does each, but hands them all
// to Raft before waiting, so they share log writes (one write, with its
// fsyncs, for the batch instead of one each). results[i] is what the state
// machine said to cmds[i] (nil, or a rejection). err is a failure to
// apply: *ErrNotLeader before anything was proposed, or, once something
// was, a failure after which any command without a result may or may not
// be applied (like Apply's, *ErrNotLeader included).
func (s *Store) ApplyAll(ctx context.Context, cmds []Command) (results []error, err error) {
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if !s.IsLeader() {
		return nil, &ErrNotLeader{Leader: s.Leader()}
	}
	entries := make([][]byte, len(cmds))
	for i, c := range cmds {
		if entries[i], err = EncodeCommand(c); err != nil {
			return nil, err
		}
	}
	futures := make([]raft.ApplyFuture, len(entries))
	for i, data := range entries {
		futures[i] = s.raft.Apply(data, enqueueTimeout(ctx))
	}
	n, err := waitFutures(ctx, futures)
	results = make([]error, n)
	for i, f := range futures[:n] {
		results[i], _ = f.Response().(error)
	}
	if err != nil {
		return results, s.raftError(err)
	}
	return results, nil
}

// AddVoter adds (or promotes) a voting member. Leader only.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	return s.changeMembership(ctx, func(timeout time.Duration) raft.Future {
		return s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	})
}

// AddNonvoter adds a member that receives the log but does not vote: a
// node catching up before it is promoted, or a read-only observer. Leader
// only.
func (s *Store) AddNonvoter(ctx context.Context, id, addr string) error {
	return s.changeMembership(ctx, func(timeout time.Duration) raft.Future {
		return s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	})
}

// RemoveServer removes a member from the Raft configuration. Leader only.
// Its directory entry stays until a CmdRemoveNode.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	return s.changeMembership(ctx, func(timeout time.Duration) raft.Future {
		return s.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	})
}

// Join adds node n to the cluster (as a voter or not) and registers its
// directory entry, on its behalf: what the leader does for a node asking
// to join. Leader only.
func (s *Store) Join(ctx context.Context, n NodeInfo, voter bool) error {
	var err error
	if voter {
		err = s.AddVoter(ctx, n.ID, n.RaftAddr)
	} else {
		err = s.AddNonvoter(ctx, n.ID, n.RaftAddr)
	}
	if err != nil {
		return err
	}
	_, err = s.Apply(ctx, Command{Type: CmdRegisterNode, Node: &n})
	return err
}

func (s *Store) changeMembership(ctx context.Context, change func(timeout time.Duration) raft.Future) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if !s.IsLeader() {
		return &ErrNotLeader{Leader: s.Leader()}
	}
	if err := waitFuture(ctx, change(enqueueTimeout(ctx))); err != nil {
		return s.raftError(err)
	}
	return nil
}

// raftError turns raft's errors into this package's: *ErrNotLeader where
// the request certainly did not enter the log, ErrClosed after shutdown.
func (s *Store) raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return &ErrNotLeader{Leader: s.Leader()}
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("metadata: leadership was lost before the command was known to commit; it may still be applied: %w", err)
	}
	return err
}

// waitFuture waits for a raft future or for ctx, whichever ends first.
// raft's futures know no contexts; the goroutine left behind when ctx wins
// ends when raft resolves the future (at the latest, on shutdown).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFutures is waitFuture for several futures, in order, with one
// goroutine rather than one each: it returns how many resolved without
// error before the first that failed, and its error; when ctx ends first,
// none is counted.
func waitFutures(ctx context.Context, fs []raft.ApplyFuture) (int, error) {
	type resolved struct {
		n   int
		err error
	}
	done := make(chan resolved, 1)
	go func() {
		for i, f := range fs {
			if err := f.Error(); err != nil {
				done <- resolved{i, err}
				return
			}
		}
		done <- resolved{len(fs), nil}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return defaultEnqueueTimeout
}
