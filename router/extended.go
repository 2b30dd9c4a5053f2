package router

// Extended protocol under transaction pooling. A client's statements live
// in the client's session, not on any server connection: each is prepared
// on a server connection under a name derived from its text (so clients
// share them and never collide), lazily, on whichever connection serves
// the client's Bind or Describe. Unnamed statements are treated the same
// way, which lets repeated unnamed Parses skip PostgreSQL's parse and
// planning. In session pooling messages pass through unchanged.
//
// Changes to the client's statement table are applied when the message is
// read (later messages of the batch need them) and undone if PostgreSQL
// would have skipped the message after an earlier error.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

var (
	parseCompleteFrame = []byte{'1', 0, 0, 0, 4}
	closeCompleteFrame = []byte{'3', 0, 0, 0, 4}
)

func (s *session) parse(ctx context.Context, body []byte) error {
	if s.mode == PoolSession {
		return s.forwardExtended(ctx, 'P', body, expect{kind: 'P'})
	}
	if stmt := s.reparse(body); stmt != nil {
		// The same unnamed Parse as before (a driver's extended-protocol
		// query): nothing in it needs analysing again.
		if s.deferParse(stmt) {
			return nil
		}
		if err := s.ensureServer(ctx); err != nil {
			return err
		}
		return s.parsed("", stmt)
	}
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return pgerror.Fatal(pgerror.ProtocolViolation, "invalid Parse message: %v", err)
	}
	if msg.Name != "" && !s.replaying && s.hasStatementName(msg.Name) {
		// PostgreSQL analyses the query before it looks at the name, so
		// a broken query reports its own error: let the server analyse it
		// as the proxy's unnamed statement first.
		if err := s.ensureServer(ctx); err != nil {
			return err
		}
		p := pgproto3.Parse{Query: msg.Query, ParameterOIDs: msg.ParameterOIDs}
		if buf, err := p.Encode(s.scratch[:0]); err == nil && s.server.WriteRaw(buf) == nil {
			s.scratch = buf
			s.queue = append(s.queue, expect{kind: 'P', swallow: true})
		}
		return pgerror.New(pgerror.DuplicatePreparedStatement, "prepared statement %q already exists", msg.Name)
	}
	st := planner.Analyze(msg.Query)
	if !st.Opaque && s.callsUserFunction(msg.Query) {
		st.Opaque = true
	}
	if st.NeedsSession != "" {
		return pgerror.New(pgerror.FeatureNotSupported, "%s is not supported in transaction pooling", st.NeedsSession).
			WithHint("it needs a server session of its own; use pool.mode: session for this client")
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	stmt := &statement{
		query:         msg.Query,
		paramOIDs:     msg.ParameterOIDs,
		analysis:      st,
		parsedInBatch: s.batch.number,
	}
	// EXECUTE of a SQL-level statement means different things for
	// different clients: the name carries the PREPARE texts it runs.
	var sqlTexts []string
	for _, name := range st.ExecuteNames {
		if text, ok := s.sqlStmts[name]; ok {
			sqlTexts = append(sqlTexts, text)
			s.ensureSQLPreparedExtended(name)
		}
	}
	// Names resolve, and parameter types are inferred, under the
	// search_path in force: it is part of the statement's identity.
	searchPath := s.settings["search_path"]
	stmt.serverName = serverStatementName(msg.Query, msg.ParameterOIDs, append(sqlTexts, "search_path="+searchPath)...)
	if msg.Name == "" && len(st.ExecuteNames) == 0 {
		s.lastUnnamed = unnamedParse{body: append(s.lastUnnamed.body[:0], body...), searchPath: searchPath, stmt: stmt,
			epoch: s.r.schemaEpoch.Load()}
	}
	return s.parsed(msg.Name, stmt)
}

// unnamedParse remembers the session's last unnamed Parse: drivers that
// use the extended protocol without naming statements (pgx's default,
// JDBC's first executions, pgbench -M extended) send the same one again
// and again, and its analysis and server name do not change.
type unnamedParse struct {
	body       []byte
	searchPath string
	stmt       *statement
	epoch      uint64 // the schema epoch it was parsed in
}

// reparse returns a new statement for an unnamed Parse equal to the last
// one, or nil.
func (s *session) reparse(body []byte) *statement {
	last := &s.lastUnnamed
	if last.stmt == nil || len(body) == 0 || body[0] != 0 || s.replaying ||
		!bytes.Equal(body, last.body) || s.settings["search_path"] != last.searchPath {
		return nil
	}
	t := last.stmt
	return &statement{serverName: t.serverName, query: t.query, paramOIDs: t.paramOIDs, analysis: t.analysis, parsedInBatch: s.batch.number}
}

// deferParse answers a repeated unnamed Parse without a server connection
// when the session has none and its statements are routed (or, without
// sharding, pipelined) by their Bind:
// taking the last shard's connection now would cost a Flush and a Sync
// there whenever the Bind goes elsewhere. The connection the Bind is
// routed to prepares the statement (ensurePrepared), as it does for any
// statement parsed on another connection. Only a statement a server
// accepted before, in the current schema epoch, is answered this way.
func (s *session) deferParse(stmt *statement) bool {
	last := &s.lastUnnamed
	if s.server != nil || !s.sharded() && s.r.cfg.PipelineConnections == 0 || s.mode != PoolTransaction || s.txStatus != 'I' || s.inTransaction() ||
		len(s.parked) > 0 || last.stmt.desc == nil || last.epoch != s.r.schemaEpoch.Load() {
		return false
	}
	stmt.desc, stmt.paramDesc = last.stmt.desc, last.stmt.paramDesc
	s.queue = append(s.queue, expect{kind: 'x', synthetic: parseCompleteFrame, undo: s.enterStatement("", stmt)})
	return true
}

// enterStatement puts stmt in the client's statement table under name and
// returns what undoes that if PostgreSQL skips the message.
func (s *session) enterStatement(name string, stmt *statement) (undo func()) {
	prev, hadPrev := s.stmts[name]
	s.stmts[name] = stmt
	return func() {
		if s.stmts[name] == stmt {
			if hadPrev {
				s.stmts[name] = prev
			} else {
				delete(s.stmts, name)
			}
		}
	}
}

// parsed enters a client's statement in its table and prepares it on the
// current server connection unless that has it already.
func (s *session) parsed(name string, stmt *statement) error {
	undo := s.enterStatement(name, stmt)
	present, stale := s.server.lookupPrepared(stmt.serverName, s.r.schemaEpoch.Load())
	if present && !stale {
		stmt.desc, stmt.paramDesc = s.server.preparedDesc(stmt.serverName)
		s.queue = append(s.queue, expect{kind: 'x', synthetic: parseCompleteFrame, undo: undo})
		if stmt.desc == nil {
			// Prepared without a description (a literal_parameters
			// rewrite of the same text): a statement without one is
			// never answered without a server (deferParse).
			return s.writeDescribe(stmt, nil)
		}
		return nil
	}
	if s.parseQueued(stmt.serverName) {
		// The same text is already being prepared in this batch; if that
		// Parse fails, the server skips this one too.
		s.queue = append(s.queue, expect{kind: 'x', synthetic: parseCompleteFrame, undo: undo})
		return nil
	}
	if stale {
		if err := s.closeServerStatement(stmt.serverName); err != nil {
			return err
		}
	}
	return s.writeParse(stmt, expect{kind: 'P', stmt: stmt, clientName: name, serverName: stmt.serverName, undo: undo}, nil)
}

// parseQueued reports whether a Parse of the server statement is already
// in this batch.
func (s *session) parseQueued(serverName string) bool {
	for i := range s.queue {
		if s.queue[i].kind == 'P' && s.queue[i].serverName == serverName {
			return true
		}
	}
	return false
}

// hasStatementName: SQL-level and protocol-level prepared statements share
// one namespace in PostgreSQL.
func (s *session) hasStatementName(name string) bool {
	if _, ok := s.stmts[name]; ok {
		return true
	}
	_, ok := s.sqlStmts[name]
	return ok
}

// writeParse prepares a client's statement on the server, followed by a
// Describe of the proxy's own: the result description is kept with the
// server statement and the client's, so a later re-prepare can tell
// whether the result type changed meanwhile. described, if set, also
// receives it.
func (s *session) writeParse(stmt *statement, e expect, described func([]byte)) error {
	s.scratch = appendParse(s.scratch[:0], stmt.serverName, stmt.query, stmt.paramOIDs)
	if err := s.server.WriteRaw(s.scratch); err != nil {
		return &serverLostError{err: err}
	}
	e.epoch = s.r.schemaEpoch.Load()
	s.queue = append(s.queue, e)
	return s.writeDescribe(stmt, described)
}

// writeDescribe describes a server statement for the proxy, its answer
// swallowed: the description is kept with the server statement and, if it
// has none, the client's statement; described, if set, also receives it.
func (s *session) writeDescribe(stmt *statement, described func([]byte)) error {
	sc := s.server
	name := stmt.serverName
	s.scratch = appendStatementMessage(s.scratch[:0], 'D', name)
	if err := sc.WriteRaw(s.scratch); err != nil {
		return &serverLostError{err: err}
	}
	var paramDesc []byte
	s.queue = append(s.queue, expect{kind: 'D', swallow: true, swallowErrors: true,
		onParamDesc: func(body []byte) { paramDesc = bytes.Clone(body) },
		onDesc: func(desc []byte) {
			sc.setPreparedDesc(name, desc, paramDesc)
			if stmt.desc == nil {
				stmt.desc, stmt.paramDesc = desc, paramDesc
			}
			if described != nil {
				described(desc)
			}
		}})
	return nil
}

// frame encodes one message.
func frame(typ byte, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// appendFrameStart appends a message's type and a length that
// finishFrame fills in once the body is appended: messages are built in
// place in a reused buffer.
func appendFrameStart(buf []byte, typ byte) []byte {
	return append(buf, typ, 0, 0, 0, 0)
}

// finishFrame fills in the length of the message that starts at start.
func finishFrame(buf []byte, start int) []byte {
	binary.BigEndian.PutUint32(buf[start+1:], uint32(len(buf)-start-1))
	return buf
}

// errResultTypeChanged is PostgreSQL's own error for a prepared statement
// whose result type changed under it.
func errResultTypeChanged() *pgerror.Error {
	return pgerror.New(pgerror.FeatureNotSupported, staleResultTypeMsg)
}

// closeServerStatement closes a server statement ahead of preparing it
// again, its answer swallowed.
func (s *session) closeServerStatement(name string) error {
	s.server.forgetPrepared(name)
	body := append(append([]byte{'S'}, name...), 0)
	if err := s.server.WriteFrame('C', body); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'C', swallow: true, swallowErrors: true})
	return nil
}

// ensurePrepared injects a Parse when the server connection lacks the
// statement (or holds a copy older than a schema change); its
// ParseComplete is swallowed, its error is not.
func (s *session) ensurePrepared(stmt *statement) error {
	for _, name := range stmt.analysis.ExecuteNames {
		s.ensureSQLPreparedExtended(name)
	}
	present, stale := s.server.lookupPrepared(stmt.serverName, s.r.schemaEpoch.Load())
	if present && !stale {
		return nil
	}
	if s.parseQueued(stmt.serverName) {
		return nil // already on its way in this batch
	}
	if stale {
		if err := s.closeServerStatement(stmt.serverName); err != nil {
			return err
		}
	}
	e := expect{kind: 'P', swallow: true, serverName: stmt.serverName}
	if stmt.desc == nil {
		return s.writeParse(stmt, e, nil)
	}
	// The client was given a result description: prepare and describe
	// now, before its Bind goes out, and fail as PostgreSQL would if the
	// result type changed.
	var got []byte
	if err := s.writeParse(stmt, e, func(d []byte) { got = d }); err != nil {
		return err
	}
	if err := s.server.WriteFrame('H', nil); err != nil {
		return &serverLostError{err: err}
	}
	if err := s.roundTrip(context.Background()); err != nil {
		return err
	}
	if s.skipping {
		return errSkipped
	}
	if got != nil && !bytes.Equal(got, stmt.desc) {
		stmt.invalid = true
		return errResultTypeChanged()
	}
	return nil
}

// errSkipped: the server failed earlier in the batch, so the message is
// skipped as PostgreSQL would skip it.
var errSkipped = errors.New("skipped after an earlier error")

func (s *session) lookupStatement(name string) (*statement, error) {
	stmt, ok := s.stmts[name]
	if !ok {
		if name == "" {
			return nil, pgerror.New(pgerror.InvalidSQLStatementName, "unnamed prepared statement does not exist")
		}
		if _, sql := s.sqlStmts[name]; sql {
			return nil, pgerror.New(pgerror.FeatureNotSupported,
				"prepared statement %q was made with PREPARE and cannot be bound through shardproxy's transaction pooling", name).
				WithHint("use EXECUTE, or prepare it with a protocol-level Parse")
		}
		return nil, pgerror.New(pgerror.InvalidSQLStatementName, "prepared statement %q does not exist", name)
	}
	return stmt, nil
}

func (s *session) bind(ctx context.Context, body []byte) error {
	if s.mode == PoolSession {
		return s.forwardExtended(ctx, 'B', body, expect{kind: 'B'})
	}
	portalEnd := bytes.IndexByte(body, 0)
	if portalEnd < 0 {
		return pgerror.Fatal(pgerror.ProtocolViolation, "invalid Bind message")
	}
	stmtEnd := bytes.IndexByte(body[portalEnd+1:], 0)
	if stmtEnd < 0 {
		return pgerror.Fatal(pgerror.ProtocolViolation, "invalid Bind message")
	}
	stmtEnd += portalEnd + 1
	clientName := string(body[portalEnd+1 : stmtEnd])
	stmt, err := s.lookupStatement(clientName)
	if err != nil {
		return err
	}
	if s.sharded() {
		if handled, err := s.shardedBind(ctx, stmt, body); handled || err != nil {
			return err
		}
	} else if portalEnd == 0 && s.pipelineIdle() {
		if handled, err := s.pipelineUnshardedBind(ctx, stmt, body); handled {
			return err
		}
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if stmt.invalid {
		return errResultTypeChanged()
	}
	if err := s.prepareSQLStatementEffects(stmt); err != nil {
		return err
	}
	if err := s.ensurePrepared(stmt); err != nil {
		if errors.Is(err, errSkipped) {
			return nil
		}
		return err
	}
	s.notePortal(string(body[:portalEnd]), stmt)
	if stmt.analysis.ChangesSettings {
		s.settingsDirty = true
		s.batch.changesSettings = true
	}
	if stmt.analysis.ChangesSchema {
		s.schemaChanged = true
	}
	s.noteCustomSettings(stmt.analysis.CustomSettings)
	if stmt.analysis.Opaque {
		s.opaque, s.settingsDirty = true, true
	}
	// Same Bind with the server's statement name.
	b := s.scratch[:0]
	b = append(b, body[:portalEnd+1]...)
	b = append(b, stmt.serverName...)
	b = append(b, body[stmtEnd:]...)
	s.scratch = b
	if err := s.server.WriteFrame('B', b); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'B', stmt: stmt, clientName: clientName, afterExecute: s.batch.executed})
	return nil
}

func (s *session) describe(ctx context.Context, body []byte) error {
	if len(body) >= 2 && body[0] == 'P' {
		if p := s.distributedPortalFor(string(trimNul(body[1:]))); p != nil {
			return s.describePortal(ctx, p)
		}
	}
	if s.mode == PoolSession || len(body) < 2 || body[0] != 'S' {
		return s.forwardExtended(ctx, 'D', body, expect{kind: 'D'})
	}
	clientName := string(trimNul(body[1:]))
	stmt, err := s.lookupStatement(clientName)
	if err != nil {
		return err
	}
	if stmt.invalid {
		// PostgreSQL describes the parameters before it finds the
		// result type changed.
		if stmt.paramDesc != nil {
			s.queue = append(s.queue, expect{kind: 'x', synthetic: frame('t', stmt.paramDesc)})
		}
		return errResultTypeChanged()
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if err := s.ensurePrepared(stmt); err != nil {
		if errors.Is(err, errSkipped) {
			return nil
		}
		return err
	}
	b := append(append(append(s.scratch[:0], 'S'), stmt.serverName...), 0)
	s.scratch = b
	if err := s.server.WriteFrame('D', b); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'D', stmt: stmt, clientName: clientName, afterExecute: s.batch.executed})
	return nil
}

func (s *session) execute(ctx context.Context, body []byte) error {
	if p := s.distributedPortalFor(string(trimNulPrefix(body))); p != nil {
		var maxRows uint32
		if i := len(trimNulPrefix(body)) + 1; len(body) >= i+4 {
			maxRows = binary.BigEndian.Uint32(body[i:])
		}
		return s.executePortal(ctx, p, maxRows)
	}
	e := expect{kind: 'E'}
	var stmt *statement
	if s.mode == PoolTransaction {
		s.batch.executed = true
		if stmt = s.portalStatement(body); stmt != nil {
			e.onTag = s.sqlStatementTagHandler(stmt)
		}
	}
	if err := s.forwardExtended(ctx, 'E', body, e); err != nil {
		return err
	}
	if stmt != nil && (stmt.analysis.Kind == planner.KindDiscardAll || stmt.analysis.Kind == planner.KindDeallocate && stmt.analysis.All) {
		// The rest of the batch must see the emptied statement table, as
		// PostgreSQL's would: have the server answer this much now.
		if err := s.server.WriteFrame('H', nil); err != nil {
			return &serverLostError{err: err}
		}
		return s.roundTrip(ctx)
	}
	return nil
}

func (s *session) closeMsg(ctx context.Context, body []byte) error {
	if len(body) >= 2 && body[0] == 'P' {
		if p := s.distributedPortalFor(string(trimNul(body[1:]))); p != nil {
			delete(s.dportals, string(trimNul(body[1:])))
			s.queue = append(s.queue, expect{kind: 'x', synthetic: closeCompleteFrame})
			return nil
		}
	}
	if s.mode == PoolSession || len(body) < 2 || body[0] != 'S' {
		if s.server == nil && s.mode == PoolTransaction {
			// No server connection: no portal can exist.
			s.queue = append(s.queue, expect{kind: 'x', synthetic: closeCompleteFrame})
			return nil
		}
		return s.forwardExtended(ctx, 'C', body, expect{kind: 'C'})
	}
	// Closing a statement forgets it for this client only; the server
	// keeps it for every other client that uses the same text.
	name := string(trimNul(body[1:]))
	prev, had := s.stmts[name]
	delete(s.stmts, name)
	undo := func() {
		if had {
			if _, again := s.stmts[name]; !again {
				s.stmts[name] = prev
			}
		}
	}
	s.queue = append(s.queue, expect{kind: 'x', synthetic: closeCompleteFrame, undo: undo})
	return nil
}

func (s *session) forwardExtended(ctx context.Context, typ byte, body []byte, e expect) error {
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if err := s.server.WriteFrame(typ, body); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, e)
	return nil
}
