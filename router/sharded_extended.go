package router

// The extended protocol over shards. Routing waits for Bind, when the
// parameter values are known. A Bind whose plan runs on one shard makes
// that shard's connection current and continues down the pass-through
// path; a Bind whose plan needs several shards becomes a distributed
// portal, answered by the proxy itself: BindComplete at once, the
// statement run on the shards at the portal's first Describe or Execute,
// its merged rows kept until Execute has sent them all.
//
// An extended-protocol batch outside a transaction block is one implicit
// transaction in PostgreSQL: all of it commits at Sync, or none. Spread
// over shards it would commit shard by shard, so the moment a batch writes
// on a second shard (or runs a write that needs several), the proxy turns
// it into a transaction block: a BEGIN of its own on the current
// connection (PostgreSQL turns an implicit block into a real one there),
// replayed on every shard that joins, and at the client's Sync a commit on
// every shard (two-phase when several wrote) or, after an error, a
// rollback, answered with the ReadyForQuery the client expects ('I').

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// distributedPortal is a portal the proxy answers itself.
type distributedPortal struct {
	rt *routing
	cs *clientStatement
	// control: COMMIT or ROLLBACK of a transaction spanning shards.
	control string
	res     *distributedResult
	sent    int  // rows already sent (Execute with a row limit)
	ran     bool // res is set
}

// upgradeBatch turns the open implicit transaction into a block of the
// proxy's own (see the top of this file).
func (s *session) upgradeBatch() {
	if s.upgraded {
		return
	}
	s.upgraded = true
	s.beginSQL = "BEGIN"
	if s.server != nil {
		if s.openBatch {
			s.writeUnnamedStatement("BEGIN", nil, false)
			if s.batchWrote {
				s.noteWroteOn(s.shardID)
			}
		} else {
			// Nothing of the batch ran here yet: this connection joins
			// like any other.
			s.writeUnnamedStatement("BEGIN", nil, false)
		}
	}
}

// inTransaction: statements join a transaction block, the client's or
// the proxy's own for an upgraded batch.
func (s *session) inTransaction() bool { return s.txStatus == 'T' || s.upgraded || s.batchInBlock }

// noteWroteOn records a write on a shard in the current transaction.
func (s *session) noteWroteOn(id string) {
	if s.wrote == nil {
		s.wrote = map[string]bool{}
	}
	s.wrote[id] = true
}

// finishUpgradedBatch answers the client's Sync of an upgraded batch:
// every shard commits (or, when the batch failed, rolls back), then the
// client gets ReadyForQuery 'I' as after any implicit transaction.
func (s *session) finishUpgradedBatch(ctx context.Context) error {
	failed := s.distributedFailed
	for _, sc := range s.participants() {
		if sc.txStatus == 'E' {
			failed = true
		}
	}
	s.upgraded = false
	if err := s.finishDistributedQuiet(ctx, !failed); err != nil {
		if err := s.c.SendError(pgerror.From(err)); err != nil {
			return &clientLostError{err: err}
		}
	}
	s.commitTag = ""
	s.txStatus = 'I'
	if err := s.c.WriteFrame('Z', []byte{'I'}); err != nil {
		return &clientLostError{err: err}
	}
	return s.c.Flush()
}

// paramOIDsOf returns the parameter types the server resolved for
// the statement (its ParameterDescription), else the client's own.
func (s *session) paramOIDsOf(stmt *statement) []uint32 {
	pd := stmt.paramDesc
	if len(pd) < 2 {
		return stmt.paramOIDs
	}
	n := int(binary.BigEndian.Uint16(pd))
	if len(pd) < 2+4*n {
		return stmt.paramOIDs
	}
	oids := s.oidScratch[:0]
	for i := range n {
		oids = append(oids, binary.BigEndian.Uint32(pd[2+4*i:]))
	}
	s.oidScratch = oids
	return oids
}

// bindView is a decoded Bind whose slices alias the message body and are
// reused for the next Bind: routing a Bind allocates nothing.
type bindView struct {
	portal, statement []byte
	formats           []int16
	values            [][]byte
	resultFormats     []int16
}

var errBadBind = errors.New("malformed Bind message")

func (v *bindView) decode(b []byte) error {
	var ok bool
	if v.portal, b, ok = cutCString(b); !ok {
		return errBadBind
	}
	if v.statement, b, ok = cutCString(b); !ok {
		return errBadBind
	}
	if v.formats, b, ok = cutInt16s(v.formats[:0], b); !ok {
		return errBadBind
	}
	if len(b) < 2 {
		return errBadBind
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	v.values = v.values[:0]
	for range n {
		if len(b) < 4 {
			return errBadBind
		}
		size := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if size == -1 {
			v.values = append(v.values, nil)
			continue
		}
		if size < 0 || size > len(b) {
			return errBadBind
		}
		v.values = append(v.values, b[:size:size])
		b = b[size:]
	}
	if v.resultFormats, _, ok = cutInt16s(v.resultFormats[:0], b); !ok {
		return errBadBind
	}
	return nil
}

func cutCString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, b, false
	}
	return b[:i], b[i+1:], true
}

func cutInt16s(dst []int16, b []byte) ([]int16, []byte, bool) {
	if len(b) < 2 {
		return dst, b, false
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < 2*n {
		return dst, b, false
	}
	for i := range n {
		dst = append(dst, int16(binary.BigEndian.Uint16(b[2*i:])))
	}
	return dst, b[2*n:], true
}

// detached is a copy of cs that shares nothing with the session's
// scratch or the client's read buffer, for a portal that outlives them.
func (cs *clientStatement) detached() *clientStatement {
	c := *cs
	c.params.formats = slices.Clone(cs.params.formats)
	c.params.oids = slices.Clone(cs.params.oids)
	c.resultFormats = slices.Clone(cs.resultFormats)
	c.params.values = make([][]byte, len(cs.params.values))
	size := 0
	for _, v := range cs.params.values {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	for i, v := range cs.params.values {
		if v != nil {
			start := len(buf)
			buf = append(buf, v...)
			c.params.values[i] = buf[start:len(buf):len(buf)]
		}
	}
	return &c
}

// shardedBind routes a Bind; handled is true when the proxy answers the
// portal itself.
func (s *session) shardedBind(ctx context.Context, stmt *statement, body []byte) (handled bool, err error) {
	msg := &s.bindScratch
	if err := msg.decode(body); err != nil {
		return true, pgerror.Fatal(pgerror.ProtocolViolation, "invalid Bind message: %v", err)
	}
	if len(s.dportals) > 0 {
		delete(s.dportals, string(msg.portal))
	}
	// Routing reads the values in place; a portal the proxy keeps gets
	// copies (the body is the client connection's read buffer).
	cs := &s.bindStatement
	*cs = clientStatement{sql: stmt.query, paramOIDs: stmt.paramOIDs,
		params:        boundParams{formats: msg.formats, values: msg.values, oids: s.paramOIDsOf(stmt)},
		resultFormats: msg.resultFormats}
	rt, err := s.route(ctx, stmt.query, &cs.params)
	if err != nil {
		if s.txStatus == 'E' {
			return false, nil // the server answers 25P02 itself
		}
		return true, err
	}
	if rt.shard != "" && len(msg.portal) == 0 && s.pipelineIdle() {
		if handled, err := s.pipelineBind(ctx, rt, stmt, body); handled {
			return true, err
		}
	}
	if s.txStatus == 'E' && !(rt.plan.Analysis != nil && isTxnEnd(rt.plan.Analysis.Command) && (len(s.parked) > 0 || s.distributedFailed)) {
		if s.distributedFailed {
			return true, errAborted()
		}
		return false, nil // the server answers 25P02 itself
	}
	// The session reuses its literal buffer for the next statement; a
	// portal may run after another Bind was planned.
	portal := &distributedPortal{rt: rt}
	defer func() {
		if handled && err == nil {
			rt.lits = slices.Clone(rt.lits)
			portal.cs = cs.detached()
		}
	}()
	switch {
	case rt.plan.Explain:
		portal.res, portal.ran = explainRows(rt.plan), true
	case rt.plan.Analysis != nil && (len(s.parked) > 0 || s.distributedFailed) && isTxnEnd(rt.plan.Analysis.Command):
		portal.control = rt.plan.Analysis.Command
	case rt.plan.Analysis != nil && len(s.parked) > 0 && isSavepointCommand(rt.plan.Analysis.Command):
		return true, pgerror.New(pgerror.FeatureNotSupported, "%s is not supported in a transaction that spans shards", rt.plan.Analysis.Command)
	case rt.shard != "":
		if a := rt.plan.Analysis; a != nil {
			s.noteBegin(a, stmt.query, false)
			switch {
			case a.Command == "BEGIN" || a.Command == "START TRANSACTION":
				s.batchInBlock = true
			case isTxnEnd(a.Command):
				s.batchInBlock = false
			}
		}
		if err := s.switchInBatch(ctx, rt.shard, rt.plan); err != nil {
			return true, err
		}
		s.noteWrite(rt)
		if s.txStatus == 'I' && rt.plan.Analysis != nil && !rt.plan.Analysis.ReadOnly {
			s.batchWrote = true
		}
		if shard := s.commitsWriteOn(rt); shard != "" {
			s.lsnShard = shard // asked for behind the client's Sync
		}
		return false, nil
	default:
		_, copyOut := rt.plan.Root.(*planner.CopyOut)
		if _, ok := leafOf(rt.plan.Root).(*planner.CopyIn); ok || copyOut {
			return true, pgerror.New(pgerror.FeatureNotSupported, "COPY with a table on several shards is supported in the simple query protocol only").
				WithHint("send the COPY as a simple Query message (psql, pgx CopyFrom and psycopg do)")
		}
		writes := rt.plan.Analysis == nil || !rt.plan.Analysis.ReadOnly
		if !s.inTransaction() && (writes || s.openBatch && s.batchWrote) {
			// Committed with the rest of the batch at Sync, not now (a
			// read after a write of the batch too: its Syncs to the
			// shards would commit that write early).
			s.upgradeBatch()
		}
	}
	if s.dportals == nil {
		s.dportals = map[string]*distributedPortal{}
	}
	s.dportals[string(msg.portal)] = portal
	s.queue = append(s.queue, expect{kind: 'x', synthetic: []byte{'2', 0, 0, 0, 4}})
	return true, nil
}

func isTxnEnd(cmd string) bool {
	return cmd == "COMMIT" || cmd == "END" || cmd == "ROLLBACK" || cmd == "ABORT"
}

func isSavepointCommand(cmd string) bool {
	switch cmd {
	case "SAVEPOINT", "RELEASE", "ROLLBACK TO", "PREPARE TRANSACTION":
		return true
	}
	return false
}

// switchInBatch moves the batch to another shard, refusing when that
// would spread an implicit transaction's writes over shards.
func (s *session) switchInBatch(ctx context.Context, shard string, plan *planner.Plan) error {
	if s.server == nil {
		return s.routeTo(ctx, &routing{plan: plan, shard: shard})
	}
	if shard == s.shardID && s.replicaAddr == "" {
		return nil
	}
	if shard == s.shardID {
		// On a replica of this shard: a read stays, anything else moves
		// to the primary.
		if plan.Analysis != nil && plan.Analysis.ReadOnly && plan.Analysis.Kind == planner.SelectStatement {
			return nil
		}
		return s.useShard(ctx, shard)
	}
	writes := plan.Analysis == nil || !plan.Analysis.ReadOnly
	if !s.inTransaction() && s.openBatch && (s.batchWrote || writes) {
		s.upgradeBatch()
	}
	prev := s.server
	open := s.openBatch
	if err := s.useShard(ctx, shard); err != nil {
		return err
	}
	if open && s.txStatus == 'I' {
		if s.unsynced == nil {
			s.unsynced = map[*serverConn]bool{}
		}
		s.unsynced[prev] = true
	}
	return nil
}

// distributedPortalFor returns the proxy-answered portal an Execute,
// Describe or Close names.
func (s *session) distributedPortalFor(name string) *distributedPortal {
	if len(s.dportals) == 0 {
		return nil
	}
	return s.dportals[name]
}

// runPortal runs a distributed portal's statement once, after relaying
// every answer still owed, so its own answers go out in order.
func (s *session) runPortal(ctx context.Context, p *distributedPortal) error {
	if err := s.settlePending(ctx); err != nil {
		return err
	}
	if s.skipping {
		// An earlier message of the batch failed: PostgreSQL skips this.
		return errSkipped
	}
	if p.ran {
		return nil
	}
	p.ran = true
	if p.control != "" {
		commit := (p.control == "COMMIT" || p.control == "END") && s.inTransaction() && s.txStatus != 'E' && !s.distributedFailed
		if err := s.finishDistributedQuiet(ctx, commit); err != nil {
			return err
		}
		p.res = &distributedResult{tag: s.takeCommitTag(commit)}
		return nil
	}
	res, err := s.runDistributed(ctx, p.rt.plan, p.rt.lits, p.cs)
	if err != nil {
		return err
	}
	p.res = res
	return nil
}

// describePortal answers Describe of a distributed portal.
func (s *session) describePortal(ctx context.Context, p *distributedPortal) error {
	if err := s.runPortal(ctx, p); err != nil {
		return err
	}
	if p.res.fields == nil {
		return s.c.WriteFrame('n', nil)
	}
	buf, err := (&pgproto3.RowDescription{Fields: p.res.fields}).Encode(s.scratch[:0])
	if err != nil {
		return err
	}
	s.scratch = buf
	return s.c.WriteRaw(buf)
}

// executePortal answers Execute of a distributed portal, at most maxRows
// rows at a time (0: all), as PostgreSQL does with PortalSuspended.
func (s *session) executePortal(ctx context.Context, p *distributedPortal, maxRows uint32) error {
	if err := s.runPortal(ctx, p); err != nil {
		return err
	}
	rest := p.res.rows[p.sent:]
	suspended := maxRows > 0 && uint32(len(rest)) > maxRows
	if suspended {
		rest = rest[:maxRows]
	}
	buf := s.scratch[:0]
	for _, row := range rest {
		buf = encodeDataRow(buf, row)
	}
	s.scratch = buf[:0]
	if err := s.c.WriteRaw(buf); err != nil {
		return &clientLostError{err: err}
	}
	p.sent += len(rest)
	if suspended {
		return s.c.WriteFrame('s', nil)
	}
	for _, n := range p.res.notices {
		if err := s.c.WriteFrame('N', n); err != nil {
			return &clientLostError{err: err}
		}
	}
	if p.res.tag == "" {
		return s.c.WriteFrame('I', nil)
	}
	return s.c.WriteFrame('C', append([]byte(p.res.tag), 0))
}

// syncParked ends the implicit transactions of connections the batch
// left for another shard; their errors (a commit-time failure) reach the
// client before the ReadyForQuery.
func (s *session) syncParked() error {
	for sc := range s.unsynced {
		delete(s.unsynced, sc)
		ans, err := exchange(sc, []byte{'S', 0, 0, 0, 4})
		if err != nil {
			return err
		}
		if ans.err != nil {
			if err := s.c.SendError(ans.err); err != nil {
				return &clientLostError{err: err}
			}
		}
	}
	return nil
}

// syncUpgraded is the client's Sync of an upgraded batch: the current
// connection's answers are relayed up to its ReadyForQuery, which the
// client does not see (it says 'T'); then the batch commits or rolls
// back everywhere and the client gets 'I'.
func (s *session) syncUpgraded(ctx context.Context) error {
	s.batch.reset()
	if s.server != nil {
		if err := s.server.WriteFrame('S', nil); err != nil {
			return &serverLostError{err: err}
		}
		s.queue = append(s.queue, expect{kind: 'S', swallow: true, swallowErrors: true})
		if err := s.roundTrip(ctx); err != nil {
			return err
		}
	} else {
		for _, e := range s.queue {
			if err := s.c.WriteRaw(e.synthetic); err != nil {
				return &clientLostError{err: err}
			}
		}
		s.queue = s.queue[:0]
	}
	return s.finishUpgradedBatch(ctx)
}
