package router

// A session's server connections on several shards. The pass-through
// machinery (queue, relay, statement table) works on one connection, the
// session's current one (s.server, on shard s.shardID). A statement for
// another shard makes that shard's connection current; the previous one is
// parked, still inside the client's transaction, until the transaction
// ends. A shard joining an open transaction block gets the client's BEGIN
// replayed first, so every shard's work is inside one transaction that
// commits (two-phase when more than one shard wrote) or rolls back at the
// client's COMMIT or ROLLBACK.

import (
	"context"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// shardPool returns the pool for a shard's primary, for this client's
// database and backend user.
func (s *session) shardPool(id string) (*pool, error) {
	sh, ok := s.r.Map().Shard(id)
	if !ok {
		return nil, pgerror.New(pgerror.UndefinedObject, "shard %q does not exist", id).
			WithHint("SHOW SHARDS lists the shards")
	}
	// A map change may have given the shard another primary.
	if p, ok := s.pools[id]; ok && p.key.addr == sh.Primary {
		return p, nil
	}
	p := s.r.poolFor(sh.Primary, s.c.Database, s.cred)
	s.pools[id] = p
	return p, nil
}

// useShard makes the session's connection to shard id current, getting
// one (with the client's settings, and inside the client's transaction)
// if the session has none there. Answers still owed by the current
// connection are relayed first, so the client sees them in order.
func (s *session) useShard(ctx context.Context, id string) error {
	if err := s.leaveReplica(ctx); err != nil {
		return err
	}
	if id == s.shardID && s.server != nil {
		return nil
	}
	p, err := s.shardPool(id)
	if err != nil {
		return err
	}
	if s.server != nil {
		if len(s.queue) > 0 {
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
		if s.parked == nil {
			s.parked = map[string]*serverConn{}
		}
		s.parked[s.shardID] = s.server
		s.mu.Lock()
		s.server = nil
		s.mu.Unlock()
	}
	s.shardID, s.pool = id, p
	if sc, ok := s.parked[id]; ok {
		delete(s.parked, id)
		s.mu.Lock()
		s.server = sc
		s.mu.Unlock()
		return nil
	}
	// The session's transaction state, not the new connection's: the
	// settings replay on it answers 'I'.
	inTxn, status, deferred := s.inTransaction(), s.txStatus, s.beginDeferred
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	s.txStatus = status
	if inTxn && s.beginSQL != "" && !deferred { // (a deferred block was opened by ensureServer)
		if c := planner.BareTransactionControl(s.beginSQL); c == planner.TxnBegin || c == planner.TxnStart {
			// Cannot fail but fatally: it goes with the statement.
			return s.writeBeginAhead()
		}
		var failed error
		if err := s.internalQuery(ctx, s.beginSQL, expectFailure(&failed)); err != nil {
			return err
		}
		s.txStatus = status
		if failed != nil {
			return failed
		}
	}
	return nil
}

// participants returns every connection of the session, the current one
// first, by shard id.
func (s *session) participants() map[string]*serverConn {
	out := make(map[string]*serverConn, len(s.parked)+1)
	for id, sc := range s.parked {
		out[id] = sc
	}
	if s.server != nil {
		out[s.shardID] = s.server
	}
	return out
}

// releaseParked gives the parked connections back (their transactions
// are over), or closes them when unusable.
func (s *session) releaseParked(drop bool) {
	for id, sc := range s.parked {
		delete(s.parked, id)
		if !drop && (sc.txStatus == 'T' || sc.txStatus == 'E') {
			// The client's transaction ended on another connection while
			// this one still held a part of it, which closing rolls back.
			// Never expected: every end of a block that spans shards goes
			// through finishDistributed. Said loudly, since the client
			// was told its transaction ended.
			s.log.Error("a shard's part of a transaction was rolled back: the transaction ended on another shard",
				"shard", id, "status", string(sc.txStatus))
		}
		s.giveBack(sc, drop)
	}
}

// giveBack returns a connection the session is done with to its pool, or
// closes it: never pool one inside a transaction, a COPY or a pipeline
// without its Sync, or holding state no other client may inherit.
func (s *session) giveBack(sc *serverConn, drop bool) {
	unsynced := s.unsynced[sc]
	delete(s.unsynced, sc)
	if drop || unsynced || sc.dirty || sc.interrupted || sc.beginAhead || sc.txStatus != 'I' && sc.txStatus != 0 {
		sc.pool.discard(sc)
		return
	}
	sc.pool.release(sc)
}

// expectFailure is an internal query's entry that records the server's
// error as a client error.
func expectFailure(failed *error) expect {
	return expect{onError: func(e *pgproto3.ErrorResponse) {
		*failed = errorFromResponse(e)
	}}
}

// errorFromResponse turns a server's ErrorResponse into the client's error,
// keeping PostgreSQL's fields.
func errorFromResponse(e *pgproto3.ErrorResponse) *pgerror.Error {
	return &pgerror.Error{Severity: e.Severity, Code: pgerror.Code(e.Code), Message: e.Message,
		Detail: e.Detail, Hint: e.Hint, Position: int(e.Position)}
}
