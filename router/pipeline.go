package router

// Pipelining: one-statement reads of several sessions share a server
// connection, each written behind the others before their answers come.
//
// Under transaction pooling every transaction costs PostgreSQL a wake-up,
// a read of the request and a failed read before it sleeps again; the
// backend spends more on that than on a select by primary key. When many
// clients run short autocommit reads, the proxy writes their requests back
// to back on a few connections: a backend then finds the next request
// already in its buffer, runs it, and sleeps only when the queue is empty.
//
// Only a statement that leaves nothing behind on the connection qualifies:
// a read-only SELECT outside any transaction, one shard (a replica's
// connections when the read may go there), no session state touched
// (pooling analysis), no user function, its own Sync. Each request
// ends with its own Sync (or is a simple Query), so an error in one
// client's statement ends at that client's ReadyForQuery and the next
// request runs as if alone. A request never waits behind a statement that
// has been running long (pipelineStall) or behind more than pipelineDepth
// others: it takes an ordinary pooled connection instead.
//
// One goroutine per pipelined connection reads the answers and writes each
// to its client, in order; the session waits for its ReadyForQuery before
// it reads the client again, so the client's connection has one writer at a
// time.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/wire"
)

const (
	// pipelineDepth bounds the requests queued on one connection.
	pipelineDepth = 8
	// pipelineStall: a connection whose current statement has run this
	// long takes no more requests (they would wait behind it).
	pipelineStall = 2 * time.Millisecond
)

// errPipeLost: the request's answer was dropped before any of it reached
// the client (its connection failed, or another client's cancel landed on
// it); the session runs it the ordinary way.
var errPipeLost = errors.New("pipelined connection lost before answering")

// errPipeReplay: the server found the request's statement stale and the
// error was hidden; the session replays its batch (reprepare.go).
var errPipeReplay = errors.New("pipelined statement stale: replay the batch")

// pipeConn is a server connection shared by pipelining sessions.
type pipeConn struct {
	p  *pool
	sc *serverConn

	mu sync.Mutex // guards everything below, and writes to sc
	// queue[head:] are the requests written and not yet answered, in
	// order (the array is reused: no allocation per request); since is
	// when the first of them started running, or when the last ended.
	queue []*pipeRequest
	head  int
	since time.Time
	// preparing lists server statements a request in flight prepares.
	preparing map[string]bool
	// dead: the reader ended the connection; retired: it takes no more
	// requests and closes once those in flight are answered.
	dead, retired bool
	wbuf          []byte
	// cancelFor is the request a client's cancel was last forwarded for,
	// at cancelAt (see cancel).
	cancelFor *pipeRequest
	cancelAt  time.Time
}

// inflight returns how many requests await their answers.
func (pc *pipeConn) inflight() int { return len(pc.queue) - pc.head }

// pipeRequest is one session's request on a pipeConn.
type pipeRequest struct {
	c *wire.Conn
	// swallow counts answers to the proxy's own messages ahead of the
	// client's (ParseComplete, CloseComplete, a statement Describe).
	swallow int
	// prepares is the server statement the request prepares; stmt is the
	// client's statement, whose result description it checks.
	prepares string
	// serverName is the statement the request binds ("" for a query),
	// clientName the client's name for it (valid while the request is).
	serverName string
	clientName []byte
	// replayable: the client's Parse of the statement is in this batch,
	// so when the server finds its plan stale, the proxy can hide that
	// and run the batch the ordinary way (reprepare.go).
	replayable bool
	// again is set when the answer is hidden (dropped up to its
	// ReadyForQuery) and the session runs the request again:
	// errPipeReplay, or errPipeLost (run it the ordinary way).
	again error
	// simpleShape: a simple query sent as Bind, Describe, Execute and
	// Sync (literalparams.go); the client gets a simple query's answer.
	simpleShape bool
	epoch       uint64
	stmt        *statement
	// changed: the prepared statement's result type is not the one the
	// client was given; the answer becomes PostgreSQL's error for it.
	changed bool
	// delivered: part of the answer went to the client.
	delivered bool
	paramDesc []byte
	done      chan error
}

// pipelines holds a pool's pipelined connections.
type pipelines struct {
	mu      sync.Mutex
	conns   []*pipeConn
	opening int
	served  atomic.Uint64
}

// pipeFor returns a pipelined connection of the pool with the session's
// settings that can take another request, opening one when the pool's
// share allows, or nil: the request then goes the ordinary way.
func (p *pool) pipeFor(ctx context.Context, settings map[string]string) *pipeConn {
	now := time.Now()
	pl := &p.pipes
	pl.mu.Lock()
	var best *pipeConn
	var expired []*pipeConn
	bestDepth := pipelineDepth
	for _, pc := range pl.conns {
		if !equalSettings(pc.sc.settings, settings) {
			continue
		}
		pc.mu.Lock()
		depth, since := pc.inflight(), pc.since
		pc.mu.Unlock()
		if p.pipeExpired(pc, depth, since, now) {
			expired = append(expired, pc)
			continue
		}
		if depth == 0 {
			best, bestDepth = pc, 0
			break
		}
		if depth < bestDepth && now.Sub(since) < pipelineStall {
			best, bestDepth = pc, depth
		}
	}
	for _, pc := range expired {
		pl.removeLocked(pc)
		pc.retire()
	}
	if best != nil && (bestDepth == 0 || len(pl.conns)+pl.opening >= p.cfg.PipelineConnections) {
		pl.mu.Unlock()
		return best
	}
	if len(pl.conns)+pl.opening >= p.cfg.PipelineConnections {
		pl.mu.Unlock()
		return nil
	}
	pl.opening++
	pl.mu.Unlock()
	pc := p.openPipe(ctx, settings)
	pl.mu.Lock()
	pl.opening--
	if pc != nil {
		pl.conns = append(pl.conns, pc)
	}
	pl.mu.Unlock()
	if pc == nil {
		return best
	}
	return pc
}

// openPipe takes a slot of the pool for a new pipelined connection with
// the given settings, without waiting for one.
func (p *pool) openPipe(ctx context.Context, settings map[string]string) *pipeConn {
	select {
	case p.slots <- struct{}{}:
	default:
		return nil
	}
	sc, err := p.connect(ctx)
	if err != nil {
		return nil
	}
	if !equalSettings(settings, sc.settings) {
		if err := execSimple(sc, settingsQuery(settings, sc.settings)); err != nil {
			p.discard(sc)
			return nil
		}
		sc.setSettings(cloneSettings(settings))
	}
	pc := &pipeConn{p: p, sc: sc, preparing: map[string]bool{}, since: time.Now()}
	go pc.readAnswers()
	return pc
}

// submit writes a request: frames, behind what the connection needs to
// run stmt (nil for a simple query): closing statements it evicted, and
// preparing stmt if it lacks it (from text when set, else stmt.query).
// False means nothing was written: the connection is gone, or another
// request is preparing stmt here.
func (pc *pipeConn) submit(req *pipeRequest, stmt *statement, text, frames []byte) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.dead || pc.retired {
		return false
	}
	var err error
	if stmt != nil {
		prep, ok := pc.prepareLocked(req, stmt, text)
		if !ok {
			return false
		}
		if len(prep) > 0 {
			err = pc.sc.WriteRaw(prep)
		}
	}
	if pc.inflight() == 0 {
		pc.since = time.Now()
	}
	pc.queue = append(pc.queue, req)
	pc.p.pipes.served.Add(1)
	if err == nil {
		err = pc.sc.WriteRaw(frames)
	}
	if err == nil {
		err = pc.sc.Flush()
	}
	if err != nil {
		// Whether any of it reached the server is unknown. The reader
		// is the one to end the connection (it alone writes to clients):
		// wake it with a deadline in the past.
		_ = pc.sc.SetDeadline(time.Now())
	}
	return true
}

// prepareLocked returns what the connection needs before a request that
// binds stmt (Closes of evicted statements; a Parse and Describe of stmt
// if it lacks it), counting the answers to swallow. ok is false when
// another request in flight prepares the same statement (this one would
// fail if that one did, and must not prepare it twice).
func (pc *pipeConn) prepareLocked(req *pipeRequest, stmt *statement, text []byte) (prep []byte, ok bool) {
	name := stmt.serverName
	if pc.preparing[name] {
		return nil, false
	}
	req.serverName = name
	sc := pc.sc
	buf := pc.wbuf[:0]
	for _, evicted := range sc.toClose {
		buf = appendStatementMessage(buf, 'C', evicted)
		req.swallow++
	}
	sc.toClose = sc.toClose[:0]
	present, stale := sc.lookupPrepared(name, req.epoch)
	if stale {
		sc.forgetPrepared(name)
		buf = appendStatementMessage(buf, 'C', name)
		req.swallow++
	}
	if !present || stale {
		// Described too: the answer tells whether the result type is
		// still the one the client was given.
		if text != nil {
			buf = appendParse(buf, name, text, stmt.paramOIDs)
		} else {
			buf = appendParse(buf, name, stmt.query, stmt.paramOIDs)
		}
		buf = appendStatementMessage(buf, 'D', name)
		req.swallow += 2
		req.prepares, req.stmt = name, stmt
		pc.preparing[name] = true
	}
	pc.wbuf = buf
	return buf, true
}

// appendStatementMessage appends a Close ('C') or Describe ('D') of a
// server statement.
func appendStatementMessage(buf []byte, typ byte, name string) []byte {
	start := len(buf)
	buf = appendFrameStart(buf, typ)
	buf = append(append(append(buf, 'S'), name...), 0)
	return finishFrame(buf, start)
}

// cancel forwards a client's cancel request when its request is the one
// the server is running.
//
// PostgreSQL cancels whatever the backend runs when the request arrives:
// if the client's request finished just before, the next one (another
// client's) is cancelled instead. So for a while after a cancel, a request
// nothing of whose answer went out that fails with "canceling statement
// due to user request" is run again the ordinary way (reads have no side
// effects) and its client never sees the other's cancel.
func (pc *pipeConn) cancel(ctx context.Context, req *pipeRequest) error {
	pc.mu.Lock()
	running := pc.inflight() > 0 && pc.queue[pc.head] == req
	if running {
		pc.cancelFor, pc.cancelAt = req, time.Now()
	}
	pc.mu.Unlock()
	if !running {
		return nil
	}
	return pc.sc.Cancel(ctx)
}

// cancelWindow is how long after a forwarded cancel another request's
// 57014 is taken for that cancel landing late.
const cancelWindow = 5 * time.Second

// strayCancel reports whether an error answering req is a cancel meant for
// another request.
func (pc *pipeConn) strayCancel(req *pipeRequest, er *pgproto3.ErrorResponse) bool {
	if req.delivered || er.Code != string(pgerror.QueryCanceled) || er.Message != userCancelMsg {
		return false
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.cancelFor != nil && pc.cancelFor != req && time.Since(pc.cancelAt) < cancelWindow
}

// userCancelMsg is PostgreSQL's message for a cancel request (a statement
// timeout has the same SQLSTATE and another message).
const userCancelMsg = "canceling statement due to user request"

// fail ends the connection: requests none of whose answer reached their
// client are run again the ordinary way; the others' clients lose their
// connection, as they would their server's. Only the reader calls it.
func (pc *pipeConn) fail() {
	pc.mu.Lock()
	pc.dead = true
	for _, req := range pc.queue[pc.head:] {
		if req.delivered {
			req.done <- &serverLostError{err: errors.New("pipelined server connection lost")}
		} else {
			req.done <- errPipeLost
		}
	}
	pc.queue, pc.head = nil, 0
	pc.mu.Unlock()
	// Not under pc.mu: pipeFor takes the pipelines lock first.
	pc.p.pipes.remove(pc)
	pc.p.discard(pc.sc)
}

// remove takes a connection out of the pool's pipelined ones.
func (pl *pipelines) remove(pc *pipeConn) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.removeLocked(pc)
}

func (pl *pipelines) removeLocked(pc *pipeConn) {
	for i, c := range pl.conns {
		if c == pc {
			pl.conns = append(pl.conns[:i], pl.conns[i+1:]...)
			return
		}
	}
}

// pipeExpired applies the pool's server_lifetime and server_idle_timeout
// to a pipelined connection, as acquire does to pooled ones.
func (p *pool) pipeExpired(pc *pipeConn, depth int, since, now time.Time) bool {
	if p.cfg.ServerLifetime > 0 && now.Sub(pc.sc.Created) > p.cfg.ServerLifetime {
		return true
	}
	return depth == 0 && p.cfg.ServerIdleTimeout > 0 && now.Sub(since) > p.cfg.ServerIdleTimeout
}

// retire stops a connection taking requests (the caller holds the pool's
// pipelines lock and drops it from the list); its reader closes it once
// the requests in flight are answered.
func (pc *pipeConn) retire() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.retired = true
	if pc.inflight() == 0 {
		_ = pc.sc.SetDeadline(time.Now()) // wakes the reader to close it
	}
}

// running returns the request whose answer comes next.
func (pc *pipeConn) running() *pipeRequest {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.inflight() == 0 {
		return nil
	}
	return pc.queue[pc.head]
}

// finish ends the head request; it reports whether the connection is
// retired and now idle, for the reader to close.
func (pc *pipeConn) finish(req *pipeRequest, err error) (closeNow bool) {
	pc.mu.Lock()
	pc.queue[pc.head] = nil
	pc.head++
	switch n := pc.inflight(); {
	case n == 0:
		pc.queue, pc.head = pc.queue[:0], 0
	case pc.head >= 64 && pc.head >= n:
		// Never empty under load: move the rest to the front.
		copy(pc.queue, pc.queue[pc.head:])
		clear(pc.queue[n:])
		pc.queue, pc.head = pc.queue[:n], 0
	}
	pc.since = time.Now()
	if req.prepares != "" {
		delete(pc.preparing, req.prepares)
	}
	closeNow = pc.retired && pc.inflight() == 0
	pc.mu.Unlock()
	req.done <- err
	return closeNow
}

// readAnswers is the connection's reader: each answer goes to the client
// of the request at the head, up to its ReadyForQuery.
func (pc *pipeConn) readAnswers() {
	var req *pipeRequest
	for {
		typ, body, err := pc.sc.ReadMessage()
		if err != nil {
			pc.fail()
			return
		}
		if req == nil {
			if req = pc.running(); req == nil {
				// Nothing asked: a server going away says why first.
				if typ == 'E' {
					pc.fail()
					return
				}
				continue
			}
		}
		var er *pgproto3.ErrorResponse
		if typ == 'E' {
			// Decoded once for every use of it (errors are rare).
			er = &pgproto3.ErrorResponse{}
			_ = er.Decode(body)
			if er.Severity == "FATAL" || er.Severity == "PANIC" {
				pc.fail()
				return
			}
		}
		if !pc.answer(req, typ, body, er) {
			continue
		}
		// ReadyForQuery. A read cannot leave a transaction open; if one
		// did, the connection is not fit for anyone else.
		broken := len(body) == 0 || body[0] != 'I'
		result := req.again
		if result == nil {
			result = pc.clientFlush(req)
		}
		if pc.finish(req, result) || broken {
			pc.fail()
			return
		}
		req = nil
	}
}

// answer handles one server message of req's answer (er: an
// ErrorResponse's, decoded); it reports whether it was the ReadyForQuery
// that ends it.
func (pc *pipeConn) answer(req *pipeRequest, typ byte, body []byte, er *pgproto3.ErrorResponse) bool {
	if req.swallow > 0 {
		switch typ {
		case '1', '3':
			req.swallow--
			if typ == '1' && req.prepares != "" {
				pc.mu.Lock()
				pc.sc.addPrepared(req.prepares, req.epoch)
				pc.mu.Unlock()
			}
			return false
		case 't':
			req.paramDesc = bytes.Clone(body)
			return false
		case 'T', 'n':
			// The proxy's Describe of the statement it prepared.
			req.swallow--
			desc := describeResult(typ, body)
			pc.mu.Lock()
			pc.sc.setPreparedDesc(req.prepares, desc, req.paramDesc)
			pc.mu.Unlock()
			if req.stmt.desc == nil || req.replayable {
				// Parsed in this very batch: the client has no older
				// description to hold the statement to.
				req.stmt.desc, req.stmt.paramDesc = desc, req.paramDesc
			} else if !bytes.Equal(desc, req.stmt.desc) {
				req.changed = true
				req.stmt.invalid = true
				pc.toClient(req, 0, nil, wireError(errResultTypeChanged()))
			}
			return false
		}
		// An error: PostgreSQL skips the rest up to the Sync.
		req.swallow = 0
	}
	if er != nil && req.again == nil && pc.strayCancel(req, er) {
		req.again = errPipeLost
	}
	if er != nil && req.serverName != "" && req.again == nil {
		if er.Code == staleResultTypeCode && er.Message == staleResultTypeMsg {
			// The statement changed under the proxy (DDL from
			// elsewhere): the connection prepares it again next time.
			pc.mu.Lock()
			pc.sc.forgetPrepared(req.serverName)
			pc.sc.toClose = append(pc.sc.toClose, req.serverName)
			pc.mu.Unlock()
			if req.replayable && !req.delivered {
				req.again = errPipeReplay
			}
		}
		if req.again == nil && !req.simpleShape && er.Message != "" {
			// The client knows its statement by its own name.
			er.Message = strings.ReplaceAll(er.Message, `"`+req.serverName+`"`, `"`+string(req.clientName)+`"`)
			if fixed, err := er.Encode(nil); err == nil {
				body = fixed[5:]
			}
		}
	}
	if req.again != nil {
		return typ == 'Z'
	}
	if typ == 'Z' {
		pc.toClient(req, typ, body, nil)
		return true
	}
	if req.changed {
		return false
	}
	switch typ {
	case 'A':
		return false // no session of this kind listens
	case '2', 'n':
		if req.simpleShape {
			return false // a simple query's answer has neither
		}
	}
	pc.toClient(req, typ, body, nil)
	return false
}

// toClient buffers a message for req's client; a failed client write
// surfaces at the flush.
func (pc *pipeConn) toClient(req *pipeRequest, typ byte, body, raw []byte) {
	req.delivered = true
	if raw != nil {
		_ = req.c.WriteRaw(raw)
		return
	}
	_ = req.c.WriteFrame(typ, body)
}

func (pc *pipeConn) clientFlush(req *pipeRequest) error {
	if err := req.c.Flush(); err != nil {
		return &clientLostError{err: err}
	}
	return nil
}

// close ends an idle pipelined connection (shutdown).
func (pl *pipelines) closeAll() {
	pl.mu.Lock()
	conns := pl.conns
	pl.conns = nil
	pl.mu.Unlock()
	for _, pc := range conns {
		_ = pc.sc.SetDeadline(time.Now()) // its reader ends it
	}
}

func wireError(pe *pgerror.Error) []byte {
	b, _ := wire.ErrorResponse(pe).Encode(nil)
	return b
}
