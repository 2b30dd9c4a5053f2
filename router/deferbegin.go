package router

// Deferred BEGIN. Under transaction pooling a client's bare BEGIN is
// answered by the proxy; the BEGIN goes to a server only with the block's
// first statement, written ahead of it in the same system call. The server
// then wakes once for both, the client's BEGIN costs no server round trip,
// a client that sends BEGIN and thinks holds no server connection, and in
// a sharded transaction the BEGIN goes to the shard the first statement
// needs (never to one the block does not touch). A block that ends before
// any statement (BEGIN; COMMIT) never reaches a server.
//
// The visible difference: now() and pg_stat_activity.xact_start are the
// time of the block's first statement rather than of its BEGIN (PostgreSQL
// takes the snapshot at the first statement anyway). pool.defer_begin:
// false turns it off.
//
// Only a bare BEGIN is deferred (planner.BareTransactionControl): one
// without options cannot fail on an idle server connection except
// fatally, and then the statement behind it is never run either. That
// matters because the statement is already on its way when the BEGIN's
// answer arrives; serverConn.ReadMessage reads that answer ahead of
// anything else, so every reader of the connection (relay, the
// multi-shard exchange, COPY) sees the statement's answers only.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/planner"
)

// beginFrame is the BEGIN written ahead of a deferred block's first
// statement.
var beginFrame = []byte("BEGIN\x00")

// deferredControl answers a simple query that is a bare BEGIN, or the
// bare COMMIT or ROLLBACK of a block no server has seen yet; handled is
// false when the query takes the ordinary path.
func (s *session) deferredControl(sql string) (handled bool, err error) {
	if s.r.cfg.EagerBegin || s.mode != PoolTransaction || len(sql) > 32 {
		return false, nil
	}
	switch c := planner.BareTransactionControl(sql); c {
	case planner.TxnBegin, planner.TxnStart:
		if s.txStatus != 'I' || s.server != nil || len(s.parked) > 0 || len(s.queue) > 0 ||
			s.openBatch || s.upgraded || s.batchInBlock || s.pipe != nil {
			return false, nil
		}
		s.beginDeferred, s.beginSQL = true, "BEGIN"
		if c == planner.TxnStart {
			return true, s.answerControl("START TRANSACTION", 'T')
		}
		return true, s.answerControl("BEGIN", 'T')
	case planner.TxnCommit:
		if !s.beginDeferred {
			return false, nil
		}
		tag := "COMMIT"
		if s.txStatus == 'E' {
			tag = "ROLLBACK" // as PostgreSQL answers COMMIT of a failed block
		}
		s.endDeferredBlock()
		return true, s.answerControl(tag, 'I')
	case planner.TxnRollback:
		if !s.beginDeferred {
			return false, nil
		}
		s.endDeferredBlock()
		return true, s.answerControl("ROLLBACK", 'I')
	}
	return false, nil
}

// endDeferredBlock forgets a block that ended before reaching a server.
func (s *session) endDeferredBlock() {
	s.beginDeferred, s.beginSQL = false, ""
}

// answerControl sends CommandComplete and ReadyForQuery for a statement
// the proxy answered.
func (s *session) answerControl(tag string, status byte) error {
	s.txStatus = status
	s.scratch = append(append(s.scratch[:0], tag...), 0)
	if err := s.c.WriteFrame('C', s.scratch); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}

// openDeferredBlock starts the client's block on the server connection
// just taken for its first statement.
func (s *session) openDeferredBlock(ctx context.Context) error {
	s.beginDeferred = false
	if s.txStatus == 'E' {
		// A statement the proxy refused failed the block: the server's
		// block fails too, so PostgreSQL answers what comes next (25P02,
		// or ROLLBACK) itself.
		s.queueInternalQuery("BEGIN")
		return s.failServerBlock(ctx)
	}
	return s.writeBeginAhead()
}

// writeBeginAhead writes a bare BEGIN on the current connection, to go
// out with what is written next; its answer is read by ReadMessage.
func (s *session) writeBeginAhead() error {
	if err := s.server.WriteFrame('Q', beginFrame); err != nil {
		return &serverLostError{err: err}
	}
	s.server.beginAhead = true
	return nil
}

// ReadMessage reads the connection's next message, first taking in the
// answer to a BEGIN written ahead of a deferred block's first statement.
func (sc *serverConn) ReadMessage() (byte, []byte, error) {
	for sc.beginAhead {
		typ, body, err := sc.Conn.ReadMessage()
		if err != nil {
			return 0, nil, err
		}
		switch typ {
		case 'C', 'N': // BEGIN's tag; a notice of the proxy's own query
		case 'S':
			var ps pgproto3.ParameterStatus
			if err := ps.Decode(body); err == nil {
				sc.ParameterStatus[ps.Name] = ps.Value
			}
		case 'A':
			// Not this client's (LISTEN is refused in transaction
			// pooling): the connection is not fit for pooling.
			sc.dirty = true
		case 'Z':
			sc.beginAhead = false
			if len(body) == 1 {
				sc.txStatus = body[0]
			}
		case 'E':
			sc.beginAhead = false
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil || e.Severity == "FATAL" || e.Severity == "PANIC" {
				// The backend is going away: the statement behind the
				// BEGIN never runs, and the reader handles the server's
				// own FATAL as for any statement.
				return typ, body, nil
			}
			// Cannot happen for a bare BEGIN on an idle connection; if
			// it does, the statement behind it ran outside the block, so
			// the session ends (08006) rather than carry on as if in one.
			sc.dirty = true
			return 0, nil, fmt.Errorf("server %s refused the BEGIN sent ahead of the block's first statement: %s (SQLSTATE %s)",
				sc.Addr, e.Message, e.Code)
		default:
			return 0, nil, fmt.Errorf("server %s answered BEGIN with an unexpected message %q", sc.Addr, typ)
		}
	}
	return sc.Conn.ReadMessage()
}

// failDeferredBlock marks a deferred block failed by an error the proxy
// reported, as PostgreSQL fails a block on any error.
func (s *session) failDeferredBlock() {
	if s.beginDeferred && s.server == nil && s.txStatus == 'T' {
		s.txStatus = 'E'
	}
}
