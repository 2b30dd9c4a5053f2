package router

// Extended protocol under transaction pooling. A client's statements live
// in the client's session, not on any server connection: each is prepared
// on a server connection under a name derived from its text (so clients
// share them and never collide), lazily, on whichever connection serves
// the client's Bind or Describe. Unnamed statements are treated the same
// way, which lets repeated unnamed Parses skip PostgreSQL's parse and
// planning. In session pooling messages pass through unchanged.

import (
	"bytes"
	"context"

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
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return pgerror.Fatal(pgerror.ProtocolViolation, "invalid Parse message: %v", err)
	}
	if msg.Name != "" && !s.replaying {
		if _, ok := s.stmts[msg.Name]; ok {
			return pgerror.New(pgerror.DuplicatePreparedStatement, "prepared statement %q already exists", msg.Name)
		}
	}
	st := planner.Analyze(msg.Query)
	if st.NeedsSession != "" {
		return pgerror.New(pgerror.FeatureNotSupported, "%s is not supported in transaction pooling", st.NeedsSession).
			WithHint("it needs a server session of its own; use pool.mode: session for this client")
	}
	stmt := &statement{
		serverName:      serverStatementName(msg.Query, msg.ParameterOIDs),
		query:           msg.Query,
		paramOIDs:       msg.ParameterOIDs,
		changesSettings: st.ChangesSettings,
		parsedInBatch:   s.batch.number,
	}
	s.stmts[msg.Name] = stmt
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if s.server.hasPrepared(stmt.serverName) {
		s.queue = append(s.queue, expect{kind: 'x', synthetic: parseCompleteFrame})
		return nil
	}
	return s.writeParse(stmt, expect{kind: 'P', stmt: stmt, clientName: msg.Name, serverName: stmt.serverName})
}

func (s *session) writeParse(stmt *statement, e expect) error {
	p := pgproto3.Parse{Name: stmt.serverName, Query: stmt.query, ParameterOIDs: stmt.paramOIDs}
	var err error
	s.scratch, err = p.Encode(s.scratch[:0])
	if err != nil {
		return err
	}
	if err := s.server.WriteRaw(s.scratch); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, e)
	return nil
}

// ensurePrepared injects a Parse when the server connection lacks the
// statement; its ParseComplete is swallowed, its error is not.
func (s *session) ensurePrepared(stmt *statement) error {
	if s.server.hasPrepared(stmt.serverName) {
		return nil
	}
	for i := range s.queue {
		if s.queue[i].kind == 'P' && s.queue[i].serverName == stmt.serverName {
			return nil // already on its way in this batch
		}
	}
	return s.writeParse(stmt, expect{kind: 'P', swallow: true, serverName: stmt.serverName})
}

func (s *session) lookupStatement(name string) (*statement, error) {
	stmt, ok := s.stmts[name]
	if !ok {
		if name == "" {
			return nil, pgerror.New(pgerror.InvalidSQLStatementName, "unnamed prepared statement does not exist")
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
	stmt, err := s.lookupStatement(string(body[portalEnd+1 : stmtEnd]))
	if err != nil {
		return err
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if err := s.ensurePrepared(stmt); err != nil {
		return err
	}
	if stmt.changesSettings {
		s.settingsDirty = true
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
	s.queue = append(s.queue, expect{kind: 'B', stmt: stmt})
	return nil
}

func (s *session) describe(ctx context.Context, body []byte) error {
	if s.mode == PoolSession || len(body) < 2 || body[0] != 'S' {
		return s.forwardExtended(ctx, 'D', body, expect{kind: 'D'})
	}
	stmt, err := s.lookupStatement(string(trimNul(body[1:])))
	if err != nil {
		return err
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if err := s.ensurePrepared(stmt); err != nil {
		return err
	}
	b := append(append(append(s.scratch[:0], 'S'), stmt.serverName...), 0)
	s.scratch = b
	if err := s.server.WriteFrame('D', b); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'D'})
	return nil
}

func (s *session) closeMsg(ctx context.Context, body []byte) error {
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
	delete(s.stmts, string(trimNul(body[1:])))
	s.queue = append(s.queue, expect{kind: 'x', synthetic: closeCompleteFrame})
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
