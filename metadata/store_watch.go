package metadata

// The Store's moving parts: telling routers about new map versions,
// waiting for conditions without polling, and the duties a leader does
// unasked (seeding an empty cluster, keeping its directory entry current).

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// dutyInterval is how often a node re-checks its duties besides on
	// leadership changes: the retry period after a failed seed or
	// registration.
	dutyInterval = time.Second
	// dutyTimeout bounds one duty's proposal.
	dutyTimeout = 5 * time.Second
	// recheckInterval is how often waits re-check conditions raft does
	// not signal.
	recheckInterval = 20 * time.Millisecond
)

// Subscribe returns a channel that receives each new map version, latest
// wins: it holds at most one map, and a reader that falls behind finds
// only the newest. The current map, if any, is delivered at once, so
// Subscribe-then-read never misses a version. Call cancel when done; the
// channel is closed then, and on Shutdown.
func (s *Store) Subscribe() (<-chan *Map, func()) {
	ch := make(chan *Map, 1)
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsClosed {
		close(ch)
		return ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	if m := s.fsm.Map(); m != nil {
		ch <- m
	}
	cancel := func() {
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
	return ch, cancel
}

// onStateChange runs on raft's apply goroutine after every new state
// (Apply and Restore), in log order. It must not block.
func (s *Store) onStateChange(old, next *state) {
	if next.Map != old.Map && next.Map != nil {
		s.publishMap(next.Map)
	}
}

func (s *Store) publishMap(m *Map) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for _, ch := range s.subs {
		// Only this function sends, under subsMu: once the stale map is
		// drained the send has room.
		select {
		case <-ch:
		default:
		}
		ch <- m
	}
}

// signalChange wakes everyone in waitUntil to re-check their condition.
func (s *Store) signalChange() {
	s.changedMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
}

func (s *Store) changedCh() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

// waitUntil returns when cond holds, re-checking it after every state or
// leadership change, and every recheckInterval for what raft changes
// without telling (its applied and commit indexes, the last contact).
func (s *Store) waitUntil(ctx context.Context, cond func() bool) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	recheck := time.NewTicker(recheckInterval)
	defer recheck.Stop()
	for {
		// Take the channel before checking, so a change between the
		// check and the wait is not missed.
		changed := s.changedCh()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-recheck.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

// WaitForLeader returns once the cluster has a leader this node knows of.
func (s *Store) WaitForLeader(ctx context.Context) error {
	return s.waitUntil(ctx, func() bool {
		_, id := s.raft.LeaderWithID()
		return id != ""
	})
}

// WaitForMap returns the map once this node has one and has caught up:
// it has re-applied every entry its log held when the store opened, and it
// has heard from a leader since (or leads) and applied what it knows to be
// committed. A restarted node replays its log one entry at a time, so Map
// passes through old versions first; a node that routes should wait here
// before serving. Without a quorum this waits until ctx ends, and the
// caller decides whether to serve Map() as it stands.
func (s *Store) WaitForMap(ctx context.Context) (*Map, error) {
	var m *Map
	err := s.waitUntil(ctx, func() bool {
		m = s.fsm.Map()
		return m != nil && s.caughtUp()
	})
	return m, err
}

// caughtUp: see WaitForMap. A follower's commit index only covers the
// entries it has received, so a node joining a long log can pass this a
// little early, while a batch of old entries is still on its way.
func (s *Store) caughtUp() bool {
	dispatched := s.raft.AppliedIndex() // handed to the FSM, maybe not yet applied
	if dispatched < s.openedAtIndex || dispatched < s.raft.CommitIndex() {
		return false
	}
	if !s.IsLeader() && !s.raft.LastContact().After(s.openedAt) {
		return false
	}
	return s.fsm.AppliedIndex() >= s.lastCommandAtOrBelow(dispatched)
}

// lastCommandAtOrBelow is the index of the last command entry at or below
// index: the FSM sees only commands, so raft's no-ops, barriers and
// configuration changes after it are not waited for. 0 when the entries
// down to the log's start (the rest is in the snapshot the FSM restored)
// hold no command.
func (s *Store) lastCommandAtOrBelow(index uint64) uint64 {
	var entry raft.Log
	for i := index; i > 0; i-- {
		if err := s.logs.GetLog(i, &entry); err != nil {
			return 0
		}
		if entry.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

// watchObservations turns raft's leader and state observations into
// wake-ups for waitUntil. The observer does not block raft: when this
// goroutine falls behind, observations are dropped, which is harmless
// since waiters re-read the state rather than the observation.
func (s *Store) watchObservations(observations <-chan raft.Observation) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-observations:
			s.signalChange()
		}
	}
}

// runDuties does what no client asks for. As leader: once the FSM has
// caught up with the log (a barrier), seed an empty cluster and keep this
// node's directory entry current. As follower: hand the entry to the
// leader when ForwardToLeader is set.
func (s *Store) runDuties(leaderCh <-chan bool) {
	defer s.wg.Done()
	tick := time.NewTicker(dutyInterval)
	defer tick.Stop()
	caughtUp := false // since this node last became leader
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-leaderCh:
			caughtUp = false
		case <-tick.C:
		}
		if !s.IsLeader() {
			caughtUp = false
			s.followerDuties()
			continue
		}
		if !caughtUp {
			// Without the barrier a new leader could decide from a state
			// that lags the log: propose a seed the log already has, or
			// re-register an entry that is current.
			if err := waitFuture(s.ctx, s.raft.Barrier(dutyTimeout)); err != nil {
				s.log.Warn("metadata: new leader could not catch up with the log; retrying", "err", err)
				continue
			}
			caughtUp = true
		}
		s.leaderDuties()
	}
}

func (s *Store) leaderDuties() {
	ctx, cancel := context.WithTimeout(s.ctx, dutyTimeout)
	defer cancel()
	if s.fsm.Map() == nil && s.cfg.Seed != nil {
		if _, err := s.Apply(ctx, Command{Type: CmdSeed, Seed: s.cfg.Seed}); err != nil {
			s.log.Warn("metadata: seeding the shard map failed", "err", err)
		} else {
			s.log.Info("metadata: seeded the shard map from configuration", "version", s.Map().Version)
		}
	}
	if entry, ok := s.fsm.Node(s.self.ID); !ok || entry != s.self {
		self := s.self
		if _, err := s.Apply(ctx, Command{Type: CmdRegisterNode, Node: &self}); err != nil {
			s.log.Warn("metadata: registering this node in the directory failed", "err", err)
		}
	}
}

func (s *Store) followerDuties() {
	if s.cfg.ForwardToLeader == nil {
		return
	}
	if entry, ok := s.fsm.Node(s.self.ID); ok && entry == s.self {
		return
	}
	leader := s.Leader()
	if leader.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, dutyTimeout)
	defer cancel()
	self := s.self
	if err := s.cfg.ForwardToLeader(ctx, leader, Command{Type: CmdRegisterNode, Node: &self}); err != nil {
		s.log.Warn("metadata: registering this node through the leader failed", "leader", leader.ID, "err", err)
	}
}
