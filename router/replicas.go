package router

// Reads on replicas. A read-only SELECT outside a transaction goes to a
// replica of its shard that the health monitor finds within the lag bound
// and, for this session, past its own last write there (read-your-writes);
// without one, to the primary. A replica connection serves one statement
// (or one batch) and goes back to its pool; anything else on the same
// shard moves the session to the primary.

import (
	"context"

	"github.com/shardproxy/shardproxy/planner"
)

// ReplicaPicker chooses replicas for reads (the node's health monitor).
type ReplicaPicker interface {
	// PickReplica returns an eligible replica of the shard whose replay
	// position is at least minLSN; ok is false when the primary must
	// serve.
	PickReplica(shardID string, minLSN uint64) (addr string, ok bool)
	// Begin counts a query outstanding on addr until end is called.
	Begin(addr string) (end func())
	// MarkDown reports a connection to addr that failed: no reads there
	// until the monitor sees it healthy again.
	MarkDown(addr string)
}

// targetSetting forces reads of a session to the primary.
const targetSetting = "shardproxy.target"

// readsFromReplica reports whether the statement may run on a replica.
func (s *session) readsFromReplica(rt *routing) bool {
	a := rt.plan.Analysis
	if s.r.cfg.Replicas == nil || a == nil || !a.ReadOnly || a.Kind != planner.SelectStatement {
		return false
	}
	if s.inTransaction() || s.txStatus != 'I' || len(s.parked) > 0 || s.openBatch || len(s.queue) > 0 {
		return false
	}
	return s.replicaEligible(rt)
}

// replicaEligible is what readsFromReplica asks beyond the session's
// state: the statement and session allow a replica and the shard has
// one. A pipelined read asks only this: answers the session owes already
// (a deferred ParseComplete) do not tie it to a connection.
func (s *session) replicaEligible(rt *routing) bool {
	if s.r.cfg.Replicas == nil || rt.plan.TargetHint == "primary" || s.settings[targetSetting] == "primary" {
		return false
	}
	sh, ok := s.r.Map().Shard(rt.shard)
	return ok && len(sh.Replicas) > 0
}

// routeTo makes the right connection of rt's shard current: a replica for
// a read when one is eligible, else the primary.
func (s *session) routeTo(ctx context.Context, rt *routing) error {
	if s.readsFromReplica(rt) {
		if addr, ok := s.r.cfg.Replicas.PickReplica(rt.shard, s.minLSN[rt.shard]); ok {
			if err := s.useReplica(ctx, rt.shard, addr); err == nil {
				return nil
			}
			// The replica failed us; the primary answers.
			s.r.cfg.Replicas.MarkDown(addr)
		}
	}
	return s.useShard(ctx, rt.shard)
}

// useReplica makes a connection to replica addr of shard current. The
// session is between statements (readsFromReplica checked it).
func (s *session) useReplica(ctx context.Context, shard, addr string) error {
	if s.server != nil {
		if s.replicaAddr == addr {
			return nil
		}
		s.releaseServer()
	}
	primary := s.pool
	s.shardID, s.replicaAddr = shard, addr
	s.pool = s.r.poolFor(addr, s.c.Database, s.cred)
	if err := s.ensureServer(ctx); err != nil {
		s.replicaAddr, s.pool = "", primary
		if p, perr := s.shardPool(shard); perr == nil {
			s.pool = p
		}
		return err
	}
	s.replicaDone = s.r.cfg.Replicas.Begin(addr)
	return nil
}

// leaveReplica moves off a replica connection before the primary of the
// same or another shard is used: given back when idle, else parked (a
// batch is open on it) until the client's Sync.
func (s *session) leaveReplica(ctx context.Context) error {
	if s.server == nil || s.replicaAddr == "" {
		return nil
	}
	if len(s.queue) > 0 {
		// Its answers first, in order, before another connection's.
		if err := s.server.WriteFrame('H', nil); err != nil {
			return &serverLostError{err: err}
		}
		if err := s.roundTrip(ctx); err != nil {
			return err
		}
		if s.skipping {
			return errSkipped
		}
	}
	if !s.openBatch && s.txStatus == 'I' {
		s.releaseServer()
		return nil
	}
	if s.parked == nil {
		s.parked = map[string]*serverConn{}
	}
	s.parked[s.shardID+"#replica"] = s.server
	if s.unsynced == nil {
		s.unsynced = map[*serverConn]bool{}
	}
	s.unsynced[s.server] = true
	s.mu.Lock()
	s.server = nil
	s.mu.Unlock()
	s.endReplica()
	return nil
}

// endReplica closes the outstanding-query account of the replica
// connection the session leaves.
func (s *session) endReplica() {
	if s.replicaDone != nil {
		s.replicaDone()
		s.replicaDone = nil
	}
	s.replicaAddr = ""
}
