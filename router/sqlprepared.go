package router

// SQL-level prepared statements (PREPARE, EXECUTE, DEALLOCATE) under
// transaction pooling. Each client's statements are kept in its session
// under its own names; before an EXECUTE runs, the serving connection is
// given the client's version of the statement (replacing another client's
// of the same name). In the extended protocol the proxy's own statements
// travel as unnamed Parse/Bind/Execute, which the proxy never uses for
// clients' statements.

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// ensureSQLPrepared makes the server connection hold the client's version
// of a SQL-level prepared statement before an EXECUTE in a simple query.
func (s *session) ensureSQLPrepared(name string) {
	s.syncSQLPrepared(name, s.queueInternalQuery, func(text string, failed func()) {
		if s.server.WriteFrame('Q', append([]byte(text), 0)) == nil {
			// Its error, if any, reaches the client: the EXECUTE that
			// follows would otherwise fail with a confusing message.
			s.queue = append(s.queue, expect{kind: 'Q', swallow: true, onError: func(*pgproto3.ErrorResponse) { failed() }})
		}
	})
}

// ensureSQLPreparedExtended does the same inside an extended-protocol batch.
func (s *session) ensureSQLPreparedExtended(name string) {
	s.syncSQLPrepared(name, func(sql string) { s.writeUnnamedStatement(sql, nil, true) },
		func(text string, failed func()) { s.writeUnnamedStatement(text, failed, false) })
}

func (s *session) syncSQLPrepared(name string, deallocate func(string), prepare func(text string, failed func())) {
	sc := s.server
	want, clientHas := s.sqlStmts[name]
	have, serverHas := sc.sqlPrepared[name]
	if clientHas && serverHas && have == want {
		return
	}
	if serverHas {
		deallocate("DEALLOCATE " + quoteIdent(name))
		delete(sc.sqlPrepared, name)
	}
	if clientHas {
		// Recorded at once, so a second EXECUTE in the same batch does not
		// prepare it twice; forgotten again if the server refuses it.
		sc.sqlPrepared[name] = want
		prepare(want, func() {
			if sc.sqlPrepared[name] == want {
				delete(sc.sqlPrepared, name)
			}
		})
	}
}

// writeUnnamedStatement runs sql as an unnamed Parse/Bind/Execute of the
// proxy's own, answers swallowed (errors too when swallowErrors); failed,
// if set, hears of an error.
func (s *session) writeUnnamedStatement(sql string, failed func(), swallowErrors bool) {
	sc := s.server
	var err error
	buf := s.scratch[:0]
	buf, err = (&pgproto3.Parse{Query: sql}).Encode(buf)
	if err == nil {
		buf, err = (&pgproto3.Bind{}).Encode(buf)
	}
	if err == nil {
		buf, err = (&pgproto3.Execute{}).Encode(buf)
	}
	s.scratch = buf
	if err != nil || sc.WriteRaw(buf) != nil {
		return
	}
	var onError func(*pgproto3.ErrorResponse)
	if failed != nil {
		onError = func(*pgproto3.ErrorResponse) { failed() }
	}
	// failed also runs if the server skips these messages after an
	// earlier error (undo of the dropped Parse).
	s.queue = append(s.queue,
		expect{kind: 'P', swallow: true, swallowErrors: swallowErrors, onError: onError, undo: failed},
		expect{kind: 'B', swallow: true, swallowErrors: swallowErrors, onError: onError},
		expect{kind: 'E', swallow: true, swallowErrors: swallowErrors, onError: onError})
}

// prepareSQLStatementEffects runs at the Bind of a PREPARE or DEALLOCATE
// sent through the extended protocol: the checks PostgreSQL would make for
// this client, and the server made ready for the statement.
func (s *session) prepareSQLStatementEffects(stmt *statement) error {
	a := stmt.analysis
	switch a.Kind {
	case planner.KindPrepare:
		if s.hasStatementName(a.Name) {
			return pgerror.New(pgerror.DuplicatePreparedStatement, "prepared statement %q already exists", a.Name)
		}
		if _, ok := s.server.sqlPrepared[a.Name]; ok {
			s.writeUnnamedStatement("DEALLOCATE "+quoteIdent(a.Name), nil, true)
			delete(s.server.sqlPrepared, a.Name)
		}
	case planner.KindDeallocate:
		if a.All {
			return nil
		}
		if _, ok := s.sqlStmts[a.Name]; !ok {
			return pgerror.New(pgerror.InvalidSQLStatementName, "prepared statement %q does not exist", a.Name)
		}
		s.ensureSQLPreparedExtended(a.Name)
	}
	return nil
}

// sqlStatementTagHandler records what a PREPARE, DEALLOCATE or DISCARD ALL
// did once the server confirms it.
func (s *session) sqlStatementTagHandler(stmt *statement) func(string) {
	a := stmt.analysis
	sc := s.server
	switch a.Kind {
	case planner.KindPrepare:
		text := stmt.query
		return func(tag string) {
			if tag == "PREPARE" {
				s.sqlStmts[a.Name] = text
				sc.sqlPrepared[a.Name] = text
			}
		}
	case planner.KindDeallocate:
		return func(tag string) {
			switch tag {
			case "DEALLOCATE":
				delete(s.sqlStmts, a.Name)
				delete(sc.sqlPrepared, a.Name)
			case "DEALLOCATE ALL":
				clear(s.sqlStmts)
				s.forgetProtocolStatements()
				sc.resetState(false)
			}
		}
	case planner.KindDiscardAll:
		return func(tag string) {
			if tag == "DISCARD ALL" {
				clear(s.sqlStmts)
				s.forgetProtocolStatements()
				sc.resetState(true)
			}
		}
	}
	return nil
}

// forgetProtocolStatements drops the client's protocol-level statements,
// as DEALLOCATE ALL and DISCARD ALL do in PostgreSQL.
func (s *session) forgetProtocolStatements() { clear(s.stmts) }

// notePortal remembers which statement a portal runs, for the few
// statements whose completion the proxy must record.
func (s *session) notePortal(portal string, stmt *statement) {
	if stmt.analysis.Kind == planner.KindOther {
		if len(s.portals) > 0 {
			delete(s.portals, portal)
		}
		return
	}
	if s.portals == nil {
		s.portals = map[string]*statement{}
	}
	s.portals[portal] = stmt
}

func (s *session) portalStatement(executeBody []byte) *statement {
	if len(s.portals) == 0 {
		return nil
	}
	return s.portals[string(trimNulPrefix(executeBody))]
}

// trimNulPrefix returns the bytes before the first NUL.
func trimNulPrefix(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
