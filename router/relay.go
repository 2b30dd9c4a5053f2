package router

// The queue of expected server answers. Every message the proxy sends to a
// server that produces an answer adds an entry; answers the proxy makes up
// itself (a ParseComplete for a statement the server already has, a
// CloseComplete, an error) are entries too, so they reach the client in
// exactly the order PostgreSQL would have sent them. Entries the proxy
// added for itself (replayed settings, injected Parse) are swallowed.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
)

type expect struct {
	// kind is the message that produced the entry: P B D E C S Q F, or
	// 'x' for a synthetic answer.
	kind      byte
	synthetic []byte // for 'x': frames to send the client
	// swallow: the answer is the proxy's own business.
	swallow bool
	// swallowErrors: an ErrorResponse is swallowed too (else it goes to
	// the client even for a swallowed entry: the client must learn that a
	// statement it relies on could not be prepared).
	swallowErrors bool
	// stmt/clientName: for a client's Parse, undone if the server refuses it.
	stmt       *statement
	clientName string
	// serverName: for any Parse, recorded as prepared on success.
	serverName string
	// onRow receives DataRows of an internal query.
	onRow func(body []byte)
	// onTag receives the CommandComplete tag of a simple query.
	onTag func(tag string)
	// onError receives the server's error for this entry.
	onError func(*pgproto3.ErrorResponse)
	// undo reverts the client's statement table when PostgreSQL skips the
	// message after an earlier error.
	undo func()
	// epoch: for a Parse, the schema epoch it was written in.
	epoch uint64
	// afterExecute: for a Bind or Describe, an Execute of the same batch
	// went first.
	afterExecute bool
	// holdReady: keep this entry's ReadyForQuery until an entry with
	// releaseHeld is answered; forwardStatus: ParameterStatus messages of
	// a swallowed entry still reach the client.
	holdReady, releaseHeld, forwardStatus bool
	// onDesc receives the result description of a Describe of the
	// proxy's own.
	onDesc func(desc []byte)
	// onParamDesc receives the ParameterDescription body of that Describe.
	onParamDesc func(body []byte)
	// dropNoData: a Describe of the proxy's own for a client's simple
	// query (literalparams.go), which gets no NoData.
	dropNoData bool
}

// describeResult is a statement's result description as the proxy keeps
// it: the RowDescription body, or "n" for NoData.
func describeResult(typ byte, body []byte) []byte {
	if typ == 'n' {
		return []byte{'n'}
	}
	return append([]byte{'T'}, body...)
}

// errServerLost means the server connection failed mid-exchange.
type serverLostError struct{ err error }

func (e *serverLostError) Error() string { return "server connection lost: " + e.err.Error() }
func (e *serverLostError) Unwrap() error { return e.err }

// relay reads server answers until every queued entry is answered, sending
// the client what is meant for it.
func (s *session) relay(ctx context.Context) error {
	sc := s.server
	// forwarded: a server message reached the client buffer since the
	// last flush. Only then is it flushed before waiting for the server
	// (results stream); frames the proxy made up itself wait for the
	// server's answer and go in the same write, as PostgreSQL's own
	// output waits for Sync or Flush.
	forwarded := false
	for len(s.queue) > 0 {
		head := &s.queue[0]
		if head.kind == 'x' {
			if err := s.toClient(0, nil, head.synthetic); err != nil {
				return err
			}
			s.pop()
			continue
		}
		if forwarded && sc.Buffered() == 0 {
			// About to wait for the server: let the client have what we
			// hold so far (results stream; small answers go in one write).
			if err := s.c.Flush(); err != nil {
				return s.clientWriteFailed(err)
			}
			forwarded = false
		}
		typ, body, err := sc.ReadMessage()
		if err != nil {
			return &serverLostError{err: err}
		}
		head = &s.queue[0]
		forward := !head.swallow
		switch typ {
		case 'N': // NoticeResponse
		case 'A': // NotificationResponse
			forward = true
			if s.mode == PoolTransaction {
				// LISTEN is refused in transaction pooling, so this one
				// was subscribed by something the proxy could not see (a
				// DO block): not the client's, and the connection is not
				// fit for pooling.
				forward = false
				sc.dirty = true
			}
		case 'S': // ParameterStatus
			var ps pgproto3.ParameterStatus
			if err := ps.Decode(body); err == nil {
				sc.ParameterStatus[ps.Name] = ps.Value
			}
			if head.forwardStatus {
				forward = true
			}
		case 'E':
			var er pgproto3.ErrorResponse
			_ = er.Decode(body)
			if er.Severity == "FATAL" && s.replicaAddr != "" && !head.swallow {
				// A replica going away (shutdown, crash recovery): the
				// read is retried elsewhere if nothing reached the client.
				return &serverLostError{err: fmt.Errorf("replica %s: %s", sc.Addr, er.Message)}
			}
			if head.onError != nil {
				head.onError(&er)
			}
			if head.swallow && !head.swallowErrors {
				forward = true
			}
			if er.Severity == "FATAL" && forward {
				s.serverSentFatal = true
			}
			if s.staleStatement(head, &er) {
				forward = false
			}
			if head.kind == 'P' && head.stmt != nil && s.stmts[head.clientName] == head.stmt {
				delete(s.stmts, head.clientName)
			}
			if (head.kind == 'B' || head.kind == 'D') && head.stmt != nil && forward {
				// The client knows its statement by its own name.
				if er.Message != "" {
					er.Message = strings.ReplaceAll(er.Message, `"`+head.stmt.serverName+`"`, `"`+head.clientName+`"`)
					if fixed, err := er.Encode(nil); err == nil {
						body = fixed[5:]
					}
				}
			}
			if head.kind != 'Q' && head.kind != 'F' {
				// Extended protocol: the server now skips to Sync, so
				// everything queued before the next Sync gets no answer,
				// and what those messages did to the client's statement
				// table is undone, newest first.
				i := 0
				for i < len(s.queue) && s.queue[i].kind != 'S' {
					i++
				}
				for j := i - 1; j >= 1; j-- {
					if u := s.queue[j].undo; u != nil {
						u()
					}
				}
				s.queue = s.queue[i:]
				if len(s.queue) == 0 {
					// Error after a Flush with no Sync yet: the client
					// sends one; until then nothing more will come.
					s.skipping = true
				}
			}
		case 'Z': // ReadyForQuery
			if len(body) > 0 {
				sc.txStatus = body[0]
			}
			s.awaitingSync = false
			s.openBatch = false
			if s.schemaChanged {
				// Statements prepared before the change may have a stale
				// result type: every server re-prepares them before use.
				// Bumped at each ReadyForQuery of the transaction, and
				// last at its end, when the change becomes visible to all.
				s.r.schemaEpoch.Add(1)
				if len(body) > 0 && body[0] == 'I' {
					s.schemaChanged = false
				}
			}
			if head.kind != 'S' && head.kind != 'Q' && head.kind != 'F' {
				return fmt.Errorf("server %s sent ReadyForQuery while %q was expected", sc.Addr, head.kind)
			}
			if len(body) > 0 {
				if !head.swallow || head.kind == 'Q' {
					s.txStatus = body[0]
				}
			}
			release := head.releaseHeld
			if head.holdReady {
				// The proxy's follow-up query answers first (see
				// restoreStartupSettings); this ReadyForQuery waits.
				s.heldReady = append(s.heldReady[:0], body...)
				forward = false
			}
			s.pop()
			if release {
				forward = false
				if len(s.heldReady) > 0 {
					s.txStatus = s.heldReady[0]
				}
				// A batch abandoned for a replay answers only once.
				if !s.batch.retry {
					if err := s.toClient('Z', s.heldReady, nil); err != nil {
						return err
					}
				}
			}
		case '1': // ParseComplete
			if head.kind != 'P' {
				return unexpected(sc.Addr, typ, head.kind)
			}
			if head.serverName != "" {
				sc.addPrepared(head.serverName, head.epoch)
			}
			s.pop()
		case '2', '3': // BindComplete, CloseComplete
			s.pop()
		case 't': // ParameterDescription: RowDescription/NoData follows
			if head.onParamDesc != nil {
				head.onParamDesc(body)
			}
		case 'T', 'n': // RowDescription, NoData
			if head.kind == 'D' {
				if head.onDesc != nil {
					head.onDesc(describeResult(typ, body))
				}
				if typ == 'n' && head.dropNoData {
					forward = false
				}
				s.pop()
			}
		case 'D': // DataRow
			if head.onRow != nil {
				head.onRow(body)
			}
		case 'C': // CommandComplete
			if head.onTag != nil {
				head.onTag(string(trimNul(body)))
			}
			if head.kind == 'E' {
				s.pop()
			}
		case 'I', 's': // EmptyQueryResponse, PortalSuspended
			if head.kind == 'E' {
				s.pop()
			}
		case 'G': // CopyInResponse
			s.dropSyncsSentIntoCopy()
			if err := s.toClient(typ, body, nil); err != nil {
				return err
			}
			if err := s.copyIn(); err != nil {
				return err
			}
			if s.queue[0].kind == 'E' && !s.queueHasSync() {
				// Extended protocol: PostgreSQL holds the COPY's answer
				// until the client's next Sync or Flush, so wait for that.
				return nil
			}
			continue
		case 'H', 'd', 'c', 'W', 'V', 'v':
			// CopyOut/CopyData/CopyDone/CopyBoth, FunctionCallResponse,
			// NegotiateProtocolVersion: passed through.
		default:
			return fmt.Errorf("server %s sent unexpected message type %q", sc.Addr, typ)
		}
		if forward && !s.batch.retry {
			if err := s.toClient(typ, body, nil); err != nil {
				return err
			}
			forwarded = true
		}
	}
	return nil
}

// toClient sends an answer (a frame, or raw synthetic frames) unless a
// replay is hiding the answers the client already has.
func (s *session) toClient(typ byte, body, raw []byte) error {
	if s.suppress > 0 {
		s.suppress--
		return nil
	}
	s.batch.sent++
	var err error
	if raw != nil {
		err = s.c.WriteRaw(raw)
	} else {
		if typ == 'D' || typ == 'd' {
			s.batch.rows = true
		}
		err = s.c.WriteFrame(typ, body)
	}
	if err != nil {
		return s.clientWriteFailed(err)
	}
	return nil
}

func unexpected(addr string, typ, want byte) error {
	return fmt.Errorf("server %s sent message %q while the answer to %q was expected", addr, typ, want)
}

func (s *session) pop() {
	if cap(s.queue) > cap(s.queueStore) {
		// The queue starts at the beginning of a (re)allocated array:
		// keep it, so an emptied queue starts there again and a steady
		// session appends without allocating.
		s.queueStore = s.queue[:0]
	}
	s.queue[0] = expect{}
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = s.queueStore[:0]
	}
}

func trimNul(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}

// dropSyncsSentIntoCopy: a client may send Sync right after the Execute
// that starts COPY FROM STDIN. Such Syncs reach the server in copy-in mode,
// where PostgreSQL ignores them, so no answer will come for them; the
// server becomes idle only at the first Sync after CopyDone.
func (s *session) dropSyncsSentIntoCopy() {
	if s.queue[0].kind != 'E' {
		return
	}
	kept := s.queue[:1]
	for _, e := range s.queue[1:] {
		if e.kind == 'S' {
			s.awaitingSync = true
			continue
		}
		kept = append(kept, e)
	}
	s.queue = kept
}

// copyIn pumps the client's COPY data to the server until CopyDone or
// CopyFail. Flush and Sync are passed on; PostgreSQL ignores them here.
func (s *session) copyIn() error {
	if err := s.c.Flush(); err != nil {
		return s.clientWriteFailed(err)
	}
	sc := s.server
	for {
		typ, body, err := s.c.ReadMessage()
		if err != nil {
			return &clientLostError{err: err}
		}
		if err := sc.WriteFrame(typ, body); err != nil {
			return &serverLostError{err: err}
		}
		switch typ {
		case 'd', 'H', 'S':
		case 'c', 'f':
			if err := sc.Flush(); err != nil {
				return &serverLostError{err: err}
			}
			return nil
		default:
			// PostgreSQL answers an unexpected message with an error and
			// leaves COPY; let it.
			if err := sc.Flush(); err != nil {
				return &serverLostError{err: err}
			}
			return nil
		}
	}
}

// clientLostError means the client went away mid-exchange.
type clientLostError struct{ err error }

func (e *clientLostError) Error() string { return "client connection lost: " + e.err.Error() }
func (e *clientLostError) Unwrap() error { return e.err }

func (s *session) clientWriteFailed(err error) error { return &clientLostError{err: err} }

// isLost reports errors after which the session cannot go on.
func isLost(err error) bool {
	var sl *serverLostError
	var cl *clientLostError
	return errors.As(err, &sl) || errors.As(err, &cl)
}

func serverLostClientError(err error) *pgerror.Error {
	return pgerror.Wrap(err, pgerror.ConnectionFailure, "lost the connection to the server").
		WithHint("the transaction, if any, was rolled back by the server; reconnect and retry")
}
