package router

// Simple-protocol queries: the statements that manage per-client state
// under transaction pooling (PREPARE, EXECUTE, DEALLOCATE, DISCARD ALL,
// SET) are handled here; everything else is forwarded untouched.

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

func (s *session) simpleQuery(ctx context.Context, body []byte) error {
	// Answers still owed for earlier messages (a Parse before the Query,
	// say) come first, whoever makes up this query's answer.
	if err := s.settlePending(ctx); err != nil {
		return err
	}
	sql := string(trimNul(body))
	if handled, err := s.deferredControl(sql); handled {
		return err
	}
	s.passAnalysis = nil
	s.litRewrite.ok = false
	if s.sharded() {
		if handled, err := s.shardedSimpleQuery(ctx, sql); handled || err != nil {
			return err
		}
	}
	plan := struct{ planner.Statement }{planner.Analyze(sql)}
	if s.mode == PoolTransaction && !plan.Opaque {
		// The routing plan says already when there was one; else a
		// cached analysis of its own.
		if a := s.passAnalysis; a != nil {
			plan.Opaque = a.CallsUserFunction
		} else {
			plan.Opaque = s.callsUserFunction(sql)
		}
	}
	e := expect{kind: 'Q'}
	if s.mode == PoolTransaction {
		// PostgreSQL drops the unnamed statement at every simple query.
		delete(s.stmts, "")
	}
	// In an aborted transaction everything goes to the server, which
	// answers with the error PostgreSQL gives there.
	if s.mode == PoolTransaction && s.txStatus != 'E' {
		if plan.NeedsSession != "" {
			return s.refuseQuery(pgerror.New(pgerror.FeatureNotSupported,
				"%s is not supported in transaction pooling", plan.NeedsSession).
				WithHint("it needs a server session of its own; use pool.mode: session for this client"))
		}
		if plan.Multi && plan.ManagesStatements {
			return s.refuseQuery(pgerror.New(pgerror.FeatureNotSupported,
				"PREPARE and DEALLOCATE inside a multi-statement query are not supported in transaction pooling").
				WithHint("send each PREPARE or DEALLOCATE as a query of its own"))
		}
		for _, name := range plan.ExecuteNames {
			if _, isSQL := s.sqlStmts[name]; !isSQL {
				if _, isProtocol := s.stmts[name]; isProtocol {
					return s.refuseQuery(pgerror.New(pgerror.FeatureNotSupported,
						"prepared statement %q was made with a protocol-level Parse and cannot be run with EXECUTE through shardproxy's transaction pooling", name).
						WithHint("bind it with the extended protocol, or create it with PREPARE"))
				}
			}
		}
		switch plan.Kind {
		case planner.KindDeallocate:
			return s.deallocate(plan.Statement)
		case planner.KindPrepare:
			if s.hasStatementName(plan.Name) {
				return s.refuseQuery(pgerror.New(pgerror.DuplicatePreparedStatement, "prepared statement %q already exists", plan.Name))
			}
			if err := s.ensureServer(ctx); err != nil {
				return s.refuseQuery(err)
			}
			if _, ok := s.server.sqlPrepared[plan.Name]; ok {
				// Another client's statement of that name lives here.
				s.queueInternalQuery("DEALLOCATE " + quoteIdent(plan.Name))
				delete(s.server.sqlPrepared, plan.Name)
			}
		}
	}
	if err := s.ensureServer(ctx); err != nil {
		return s.refuseQuery(err)
	}
	if s.mode == PoolTransaction && s.txStatus != 'E' {
		for _, name := range plan.ExecuteNames {
			s.ensureSQLPrepared(name)
		}
		// What PREPARE and DISCARD ALL did is recorded once the server
		// confirms it.
		if plan.Kind != planner.KindOther {
			e.onTag = s.sqlStatementTagHandler(&statement{analysis: plan.Statement, query: sql})
		}
	}
	if plan.ChangesSettings {
		s.settingsDirty = true
	}
	if plan.ChangesSchema {
		s.schemaChanged = true
	}
	s.noteCustomSettings(plan.CustomSettings)
	if plan.Opaque {
		s.opaque, s.settingsDirty = true, true
	}
	if plan.NeedsSession == "LISTEN" {
		s.listening = true
	}
	if s.litRewrite.ok && plan.Kind == planner.KindOther && !plan.Opaque && !plan.ChangesSettings && !plan.ChangesSchema &&
		plan.NeedsSession == "" && !plan.Multi && len(plan.ExecuteNames) == 0 && len(plan.CustomSettings) == 0 {
		if err := s.sendLiteralParams(); err != nil {
			return err
		}
	} else {
		if err := s.server.WriteFrame('Q', body); err != nil {
			return &serverLostError{err: err}
		}
		s.queue = append(s.queue, e)
	}
	s.queueCommitLSN()
	if plan.ChangesSettings {
		if err := s.restoreStartupSettings(); err != nil {
			return err
		}
	}
	wasReplica, sentBefore := s.replicaAddr != "", s.batch.sent
	if err := s.roundTrip(ctx); err != nil {
		var sl *serverLostError
		if !wasReplica || !errors.As(err, &sl) || s.batch.sent != sentBefore {
			return err
		}
		// A replica died under a read before any answer went out: the
		// primary answers instead, and the client never knows.
		if err := s.retryReadOnPrimary(ctx, body, e); err != nil {
			return err
		}
	}
	if err := s.afterBatch(ctx); err != nil {
		return err
	}
	return s.c.Flush()
}

// retryReadOnPrimary runs a read again on the shard's primary after its
// replica failed.
func (s *session) retryReadOnPrimary(ctx context.Context, body []byte, e expect) error {
	s.dropServer() // marks the replica down
	s.serverSentFatal = false
	if err := s.useShard(ctx, s.shardID); err != nil {
		return s.refuseQuery(err)
	}
	if err := s.server.WriteFrame('Q', body); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, e)
	return s.roundTrip(ctx)
}

// settlePending delivers the answers owed for messages already received.
func (s *session) settlePending(ctx context.Context) error {
	if len(s.queue) == 0 {
		return nil
	}
	if s.server == nil {
		return s.payOwedAnswers()
	}
	if err := s.server.WriteFrame('H', nil); err != nil {
		return &serverLostError{err: err}
	}
	return s.roundTrip(ctx)
}

// queueInternalQuery writes a query of the proxy's own ahead of the
// client's, its whole answer swallowed.
func (s *session) queueInternalQuery(sql string) {
	if s.server.WriteFrame('Q', append([]byte(sql), 0)) == nil {
		s.queue = append(s.queue, expect{kind: 'Q', swallow: true, swallowErrors: true})
	}
}

// deallocate is answered by the proxy: the statement is forgotten for this
// client only and stays on server connections for whoever else uses it.
func (s *session) deallocate(st planner.Statement) error {
	tag := "DEALLOCATE"
	// One namespace holds both kinds of statement, as in PostgreSQL.
	if st.All {
		tag = "DEALLOCATE ALL"
		clear(s.sqlStmts)
		s.forgetProtocolStatements()
	} else {
		if !s.hasStatementName(st.Name) {
			return s.refuseQuery(pgerror.New(pgerror.InvalidSQLStatementName, "prepared statement %q does not exist", st.Name))
		}
		delete(s.sqlStmts, st.Name)
		delete(s.stmts, st.Name)
	}
	if err := s.c.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)}); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}

// refuseQuery answers a simple query with an error and ReadyForQuery,
// aborting the server's transaction as PostgreSQL's own error would.
func (s *session) refuseQuery(err error) error {
	pe := pgerror.From(clientErrorFrom(err))
	if pe.Severity == pgerror.SeverityFatal {
		return pe
	}
	if s.txStatus == 'T' && s.server != nil {
		if err := s.failServerBlock(context.Background()); err != nil {
			return err
		}
	}
	s.failDeferredBlock()
	if err := s.c.SendError(pe); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}

// failServerBlock puts the server's transaction block into the aborted
// state, as the error the proxy reported would have (abortQuery), behind
// whatever is already queued.
func (s *session) failServerBlock(ctx context.Context) error {
	s.queueInternalQuery(abortQuery)
	if err := s.roundTrip(ctx); err != nil {
		return err
	}
	s.txStatus = 'E'
	return nil
}

// readyWithoutServer sends ReadyForQuery for an answer made by the proxy.
func (s *session) readyWithoutServer() error {
	if err := s.c.WriteFrame('Z', []byte{s.txStatus}); err != nil {
		return &clientLostError{err: err}
	}
	return s.c.Flush()
}

// functionCall forwards the legacy fast-path FunctionCall message.
func (s *session) functionCall(ctx context.Context, body []byte) error {
	if err := s.ensureServer(ctx); err != nil {
		return s.refuseQuery(err)
	}
	if err := s.server.WriteFrame('F', body); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'F'})
	if err := s.roundTrip(ctx); err != nil {
		return err
	}
	if err := s.afterBatch(ctx); err != nil {
		return err
	}
	return s.c.Flush()
}
