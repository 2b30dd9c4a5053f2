package router

// The session's side of pipelining (pipeline.go): deciding that a request
// qualifies, handing it to a shared connection, and waiting for its answer.

import (
	"bytes"
	"context"
	"errors"

	"github.com/shardproxy/shardproxy/planner"
)

// pipelineIdle reports whether the session is between transactions with
// nothing of its own on any server, so its next request may share a
// connection.
func (s *session) pipelineIdle() bool {
	if s.r.cfg.PipelineConnections == 0 || s.mode != PoolTransaction || s.txStatus != 'I' || s.server != nil ||
		len(s.parked) > 0 || len(s.unsynced) > 0 || len(s.dportals) > 0 || s.openBatch || s.awaitingSync ||
		s.listening || s.inTransaction() || s.replaying || s.skipping {
		return false
	}
	// Answers the proxy made up (a repeated Parse's ParseComplete) may be
	// owed; they go to the client ahead of the request's.
	for i := range s.queue {
		if s.queue[i].kind != 'x' || s.queue[i].synthetic == nil {
			return false
		}
	}
	return true
}

// pipelinablePlan reports whether a routed statement is a one-shard read
// without side effects (what lets a replica serve it).
func pipelinablePlan(rt *routing) bool {
	a := rt.plan.Analysis
	return a != nil && a.ReadOnly && a.Kind == planner.SelectStatement && !a.CallsUserFunction &&
		rt.plan.Statements == nil && rt.plan.TargetHint == "" && !rt.plan.Explain
}

// pipelinablePooling reports whether the pooling analysis of a statement
// finds nothing it would track on the connection.
func pipelinablePooling(st planner.Statement) bool {
	return st.Kind == planner.KindOther && !st.Opaque && !st.ChangesSettings && !st.ChangesSchema &&
		st.NeedsSession == "" && !st.Multi && len(st.ExecuteNames) == 0 && len(st.CustomSettings) == 0
}

// payOwedAnswers writes the made-up answers queued while no server
// connection was taken (ahead of a pipelined request, or of a simple
// query: settlePending).
func (s *session) payOwedAnswers() error {
	for _, e := range s.queue {
		if err := s.toClient(0, nil, e.synthetic); err != nil {
			return err
		}
	}
	s.queue = s.queue[:0]
	return nil
}

// pipeTarget picks the shared connection for a routed read: on a replica
// when the read may use one (as routeTo would pick it), else on the
// shard's primary; nil when none can take it. end closes the replica's
// outstanding-read account.
func (s *session) pipeTarget(ctx context.Context, rt *routing) (pc *pipeConn, end func()) {
	noop := func() {}
	if s.replicaEligible(rt) {
		if addr, ok := s.r.cfg.Replicas.PickReplica(rt.shard, s.minLSN[rt.shard]); ok {
			if pc = s.r.poolFor(addr, s.c.Database, s.cred).pipeFor(ctx, s.settings); pc != nil {
				return pc, s.r.cfg.Replicas.Begin(addr)
			}
			// The ordinary way, to a replica: a read the replicas can
			// serve does not move to the primary for want of a shared
			// connection.
			return nil, noop
		}
	}
	p, err := s.shardPool(rt.shard)
	if err != nil {
		return nil, noop
	}
	return p.pipeFor(ctx, s.settings), noop
}

// noteShard makes the shard of a pipelined read the session's current
// one, as useShard would have.
func (s *session) noteShard(shard string) {
	if p, err := s.shardPool(shard); err == nil {
		s.shardID, s.pool = shard, p
	}
}

// pipelineRequest returns the session's request, reset (one at a time).
func (s *session) pipelineRequest() *pipeRequest {
	req := s.pipeReq
	if req == nil {
		req = &pipeRequest{done: make(chan error, 1)}
		s.pipeReq = req
	}
	done := req.done
	*req = pipeRequest{c: s.c, done: done, epoch: s.r.schemaEpoch.Load()}
	return req
}

// pipelineQuery sends a simple query down a shared connection of the
// shard. handled is false when it did not go (no connection could take
// it, or the connection died before answering): the caller runs it the
// ordinary way.
func (s *session) pipelineQuery(ctx context.Context, rt *routing, sql string) (handled bool, err error) {
	pc, end := s.pipeTarget(ctx, rt)
	if pc == nil {
		return false, nil
	}
	defer end()
	if err := s.payOwedAnswers(); err != nil {
		return true, err
	}
	req := s.pipelineRequest()
	var stmt *statement
	var text []byte
	if s.litRewrite.ok {
		// As a prepared statement with the key literals as parameters
		// (pool.literal_parameters), answered as the simple query.
		name := s.rewriteServerName()
		if s.litStmt == nil {
			s.litStmt = &statement{}
		}
		*s.litStmt = statement{serverName: name}
		stmt, text = s.litStmt, s.litRewrite.text
		req.simpleShape = true
		s.scratch = s.appendLiteralRun(s.scratch[:0], name)
	} else {
		s.scratch = simpleQueryFrame(s.scratch[:0], sql)
	}
	if !pc.submit(req, stmt, text, s.scratch) {
		return false, nil
	}
	if err := s.awaitPipe(pc, req); err != nil {
		if errors.Is(err, errPipeLost) {
			return false, nil
		}
		return true, err
	}
	s.noteShard(rt.shard)
	// PostgreSQL drops the unnamed statement at every simple query.
	delete(s.stmts, "")
	return true, nil
}

// awaitPipe waits for the request's ReadyForQuery; meanwhile a cancel
// request from the client reaches the server if the request is running.
func (s *session) awaitPipe(pc *pipeConn, req *pipeRequest) error {
	s.mu.Lock()
	s.pipe, s.busy = pc, true
	s.mu.Unlock()
	err := <-req.done
	s.mu.Lock()
	s.pipe, s.busy = nil, false
	s.mu.Unlock()
	if errors.Is(err, errPipeLost) && s.c.Forced() {
		// Shutdown interrupted it (interruptServer): not run again.
		return &serverLostError{err: err}
	}
	return err
}

// pipelineBind sends an unnamed-portal Bind down a shared connection of
// its shard when the client's Describe, Execute and Sync of the portal
// are already buffered behind it (libpq, pgx and JDBC send them in one
// write). handled is false when it did not go: nothing is consumed, and
// the caller goes on the ordinary way.
func (s *session) pipelineBind(ctx context.Context, rt *routing, stmt *statement, body []byte) (handled bool, err error) {
	if stmt.invalid || !pipelinablePlan(rt) || !pipelinablePooling(stmt.analysis) {
		return false, nil
	}
	rest, frames := portalRunAhead(s.c.Peek())
	if frames == 0 {
		return false, nil
	}
	pc, end := s.pipeTarget(ctx, rt)
	if pc == nil {
		return false, nil
	}
	defer end()
	// The same Bind, naming the server's statement, then the client's
	// Describe, Execute and Sync as they are.
	nameEnd := bytes.IndexByte(body[1:], 0) + 1
	b := appendFrameStart(s.scratch[:0], 'B')
	b = append(append(append(b, 0), stmt.serverName...), body[nameEnd:]...)
	b = append(finishFrame(b, 0), rest...)
	s.scratch = b
	if err := s.payOwedAnswers(); err != nil {
		return true, err
	}
	req := s.pipelineRequest()
	req.clientName = body[1:nameEnd]
	req.replayable = stmt.parsedInBatch == s.batch.number
	if !pc.submit(req, stmt, nil, b) {
		return false, nil
	}
	if err := s.awaitPipe(pc, req); err != nil {
		switch {
		case errors.Is(err, errPipeLost):
			return false, nil
		case errors.Is(err, errPipeReplay):
			// As the ordinary path does when a Bind finds its statement
			// stale: run the batch so far again, its Parse prepared anew.
			return true, s.replayBatch(ctx)
		}
		return true, err
	}
	for range frames {
		if _, _, err := s.c.ReadMessage(); err != nil {
			return true, &clientLostError{err: err}
		}
	}
	s.batch.reset()
	s.noteShard(rt.shard)
	return true, nil
}

// portalRunAhead looks at buffered client input for what completes an
// unnamed-portal batch after its Bind: an optional Describe of the portal,
// an Execute of all its rows, and a Sync. It returns those bytes and how
// many messages they are (0: something else, or not all of it is here).
func portalRunAhead(in []byte) ([]byte, int) {
	describe := []byte{'D', 0, 0, 0, 6, 'P', 0}
	execute := []byte{'E', 0, 0, 0, 9, 0, 0, 0, 0, 0}
	sync := []byte{'S', 0, 0, 0, 4}
	n, frames := 0, 0
	if bytes.HasPrefix(in, describe) {
		n, frames = len(describe), 1
	}
	if !bytes.HasPrefix(in[n:], execute) || !bytes.HasPrefix(in[n+len(execute):], sync) {
		return nil, 0
	}
	return in[:n+len(execute)+len(sync)], frames + 2
}

// pipelineUnshardedBind pipelines an unnamed-portal Bind of a proxy
// without sharding (no tables, one shard), whose statements are otherwise
// not planned: with pipelining on, one that passes the pooling analysis is
// planned for its side-effect analysis (the plan cache holds it by text)
// and routed to the shard. Simple queries are not: planning each one cost
// more proxy CPU (30 -> 44 µs per select on the rig) than pipelining saved.
func (s *session) pipelineUnshardedBind(ctx context.Context, stmt *statement, body []byte) (handled bool, err error) {
	if !pipelinablePooling(stmt.analysis) {
		return false, nil // before planning it
	}
	rt, err := s.route(ctx, stmt.query, nil)
	if err != nil || rt.shard == "" {
		return false, nil
	}
	return s.pipelineBind(ctx, rt, stmt, body)
}
