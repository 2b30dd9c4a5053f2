package router

// A session is one client connection's life: one goroutine reads the
// client's messages, forwards them to a server connection, and relays the
// answers, synchronously, with no hand-offs per query.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
	"github.com/shardproxy/shardproxy/wire"
)

type session struct {
	r    *Router
	c    *wire.Conn
	log  *slog.Logger
	mode PoolMode
	pool *pool

	pid, secret uint32
	cred        Credentials

	// Shards: pools per shard for this client, the current connection's
	// shard, and the other shards' connections in this transaction.
	pools   map[string]*pool
	shardID string
	parked  map[string]*serverConn
	// wrote lists the shards written in the current transaction.
	wrote map[string]bool
	// beginSQL is the client's BEGIN of the open transaction block,
	// replayed on shards that join it.
	beginSQL string
	// beginDeferred: the proxy answered the client's BEGIN and no server
	// has the block yet (deferbegin.go).
	beginDeferred bool
	// distributedFailed: a statement of this transaction failed on a
	// shard other than the current connection's; COMMIT rolls back.
	distributedFailed bool
	// replicaAddr is the replica the current connection is on ("" for a
	// primary); replicaDone ends its outstanding-query account.
	replicaAddr string
	replicaDone func()
	// minLSN is, per shard, the WAL position this session's reads must
	// see (its own last commit there, or a token it was given).
	minLSN map[string]uint64
	// lsnShard: the client's next Query or Sync commits a write on this
	// shard; its position is asked for right behind it (ryw.go).
	lsnShard string
	// targetBuf backs one-shard target lists (the hot path).
	targetBuf []string
	// cursors maps the open cursors to the shard that declared them.
	cursors map[string]string
	// commitTag overrides the tag of the COMMIT being answered.
	commitTag string
	// view is the schema the last statement was planned with.
	view *schemaView
	// passAnalysis is the routing plan's analysis of the simple query
	// now going down the pass-through path (nil when none was planned).
	passAnalysis *planner.Analysis
	// lits holds the last planned statement's literals (reused).
	lits []planner.Literal
	// dportals are the portals the proxy answers itself (multi-shard).
	dportals map[string]*distributedPortal
	// batchWrote: the open implicit transaction wrote on the current
	// shard; unsynced are connections it left with messages unsynced.
	batchWrote bool
	unsynced   map[*serverConn]bool
	// upgraded: the open batch was turned into a transaction block of the
	// proxy's own, committed at the client's Sync (sharded_extended.go).
	upgraded bool
	// batchInBlock: the open batch forwarded a BEGIN the server has not
	// confirmed with a ReadyForQuery yet (cleared at the client's Sync).
	batchInBlock bool

	// mu guards server, pipe and busy against the cancel path.
	mu     sync.Mutex
	server *serverConn
	busy   bool
	// pipe is the shared connection running the session's request
	// (pipeline.go); pipeReq is that request, reused.
	pipe    *pipeConn
	pipeReq *pipeRequest

	txStatus byte // as of the last ReadyForQuery the client saw

	// Client-visible state that must survive transaction pooling.
	settings map[string]string // session settings (pg_settings source 'session')
	startup  map[string]string // the startup packet's settings, as the server spells them
	// heldReady is a ReadyForQuery kept back while the proxy's follow-up
	// query runs (see restoreStartupSettings).
	heldReady []byte
	stmts     map[string]*statement // protocol-level statements by client name
	// litRewrite: the current simple query goes to the server with its
	// key literals as parameters (literalparams.go).
	litRewrite literalRewrite
	// litStmt stands for the rewritten query on a pipelined connection
	// (allocated at first use: most sessions never need it).
	litStmt *statement
	// bindScratch, bindStatement and oidScratch are reused by every
	// sharded Bind (sharded_extended.go).
	bindScratch   bindView
	bindStatement clientStatement
	oidScratch    []uint32
	// lastUnnamed: the last unnamed Parse, reused when it comes again.
	lastUnnamed unnamedParse
	sqlStmts    map[string]string // SQL-level PREPARE name -> PREPARE text
	// settingsDirty: the client may have changed settings in the current
	// transaction; they are read back when it ends.
	settingsDirty bool
	// listening: the client ran LISTEN; while idle its server is watched
	// for notifications.
	listening bool
	// customNames are the custom (dotted) settings the client used; they
	// are read back by name (the map's values are unused).
	customNames map[string]string
	// opaque: the transaction ran a DO block or CALL; the session state is
	// checked before the connection is pooled again.
	opaque bool
	// serverSentFatal: the server's own FATAL error reached the client.
	serverSentFatal bool

	queue []expect // answers expected from the server, in order
	// queueStore is the start of queue's array, reused once it empties.
	queueStore []expect
	batch      batchState
	// replaying: a batch is being replayed (see reprepare.go); suppress
	// counts answers the client already has and must not see twice.
	replaying bool
	suppress  int
	// awaitingSync: the server ignored Syncs sent into a COPY and is not
	// idle until the client's next Sync is answered.
	awaitingSync bool
	// schemaChanged: DDL ran in this transaction; statements prepared
	// before it are re-prepared once it is over.
	schemaChanged bool
	// portals maps portals to statements whose completion is recorded
	// (PREPARE, DEALLOCATE, DISCARD ALL); usually empty.
	portals  map[string]*statement
	skipping bool // an error happened: ignore messages until Sync
	// idleDeadline: a read deadline for the idle-in-transaction timeout is set.
	idleDeadline bool
	// openBatch: extended-protocol messages reached the server since its
	// last ReadyForQuery (cleared there).
	openBatch bool
	// unanswered counts bytes of client messages sent to the server since
	// its answers were last read (see drainLongPipeline).
	unanswered int
	scratch    []byte
}

type statement struct {
	serverName string
	query      string
	paramOIDs  []uint32
	analysis   planner.Statement
	// desc is the result description the client could have seen for
	// this statement; invalid is set once it changed under the client
	// (PostgreSQL then fails every use until the client prepares again).
	desc, paramDesc []byte
	invalid         bool
	// parsedInBatch is the batch number of the client's Parse.
	parsedInBatch uint64
}

// Serve runs a client's session after login.
// Its frame stays on the goroutine's stack below every idle wait, so the
// session is built in newSession: a shallow idle stack is one the runtime
// can shrink (see wire's Server.serveConn).
func (r *Router) Serve(ctx context.Context, c *wire.Conn) error {
	s, err := r.newSession(c)
	if s == nil {
		return err
	}
	defer r.unregister(s)
	c.OnForce(s.interruptServer)
	err = s.run(ctx)
	s.end()
	return err
}

// newSession builds and registers a client's session. It returns nil when
// the client could not be served and has been told why.
func (r *Router) newSession(c *wire.Conn) (*session, error) {
	cred, ok := r.cfg.Backend(c.User)
	if !ok {
		c.Goodbye(pgerror.Fatal(pgerror.InvalidAuthorizationSpecification, "user %q has no backend credentials", c.User))
		return nil, nil
	}
	m := r.Map()
	s := &session{
		r: r, c: c, mode: r.cfg.Mode, txStatus: 'I',
		log:      r.log.With("user", c.User, "db", c.Database, "remote", c.RemoteAddr),
		pool:     r.poolFor(m.Shards[0].Primary, c.Database, cred),
		cred:     cred,
		shardID:  m.Shards[0].ID,
		pools:    map[string]*pool{},
		settings: startupSettings(c.Params),
		stmts:    map[string]*statement{},
		sqlStmts: map[string]string{},
	}
	if err := r.register(s); err != nil {
		c.Goodbye(pgerror.Wrap(err, pgerror.InternalError, "could not start session"))
		return nil, err
	}
	return s, nil
}

func (s *session) run(ctx context.Context) error {
	if err := s.login(ctx); err != nil {
		s.c.Goodbye(fatal(err))
		return err
	}
	for {
		typ, body, rerr := s.readClient()
		if rerr != nil {
			return s.clientReadFailed(rerr)
		}
		if s.skipping && typ != 'S' && typ != 'X' {
			continue
		}
		if s.mode == PoolTransaction && isBatchMessage(typ) {
			s.logBatchMessage(typ, body)
		}
		err := s.dispatch(ctx, typ, body)
		if isBatchMessage(typ) && s.server != nil {
			s.openBatch = true
		}
		if errors.Is(err, errTerminate) {
			return nil
		}
		if err == nil && isBatchMessage(typ) {
			err = s.drainLongPipeline(len(body) + 5)
		}
		if err != nil {
			if err := s.handleBatchError(ctx, err); err != nil {
				return err
			}
		}
	}
}

// handleBatchError decides what an error from handling a client message
// means: a proxy-made error is reported in order and the session goes on;
// a lost connection or a fatal error ends the session.
func (s *session) handleBatchError(ctx context.Context, err error) error {
	if errors.Is(err, errSkipped) {
		// PostgreSQL skips the message after an earlier error; so do we.
		return nil
	}
	var sl *serverLostError
	var cl *clientLostError
	switch {
	case errors.As(err, &cl):
		return err
	case errors.As(err, &sl):
		s.dropServer()
		if s.serverSentFatal {
			// The client has the server's own reason already.
			_ = s.c.Close()
			return err
		}
		if s.c.Forced() {
			s.c.Goodbye(pgerror.Fatal(pgerror.AdminShutdown, "terminating connection due to administrator command").
				WithHint("the proxy's shutdown deadline passed while the query ran"))
			return nil
		}
		s.log.Warn("server connection lost", "err", err)
		s.c.Goodbye(fatal(serverLostClientError(err)))
		return err
	}
	var pe *pgerror.Error
	if errors.As(err, &pe) && pe.Severity != pgerror.SeverityFatal {
		// A proxy-side error inside a batch: report it in order and
		// behave like PostgreSQL after an error.
		return s.clientError(ctx, pe)
	}
	s.c.Goodbye(fatal(err))
	return err
}

var errTerminate = errors.New("client sent Terminate")

// pipelineChunk bounds how much of a client's pipeline goes to the server
// before its answers are read. A client that pipelines a large batch
// before one Sync (pgx's SendBatch) reads answers while it writes; if the
// proxy kept writing without reading, the server would block on its full
// socket, then the proxy on the server, then the client on the proxy.
const pipelineChunk = 64 << 10

// drainLongPipeline asks the server for the answers so far (a Flush, which
// does not end the implicit transaction) once a pipeline grows past
// pipelineChunk, and relays them.
func (s *session) drainLongPipeline(n int) error {
	if s.server == nil {
		s.unanswered = 0 // nothing went to a server
		return nil
	}
	s.unanswered += n
	if s.unanswered < pipelineChunk || len(s.queue) == 0 || s.skipping || s.batch.retry {
		return nil
	}
	if err := s.server.WriteFrame('H', nil); err != nil {
		return &serverLostError{err: err}
	}
	return s.roundTrip(context.Background())
}

// dispatch handles one client message.
func (s *session) dispatch(ctx context.Context, typ byte, body []byte) error {
	switch typ {
	case 'Q':
		return s.simpleQuery(ctx, body)
	case 'P':
		return s.parse(ctx, body)
	case 'B':
		return s.bind(ctx, body)
	case 'D':
		return s.describe(ctx, body)
	case 'E':
		return s.execute(ctx, body)
	case 'C':
		return s.closeMsg(ctx, body)
	case 'H':
		return s.flushMsg(ctx)
	case 'S':
		return s.sync(ctx)
	case 'F':
		return s.functionCall(ctx, body)
	case 'd', 'c', 'f':
		// PostgreSQL ignores copy messages outside COPY; so do we.
		return nil
	case 'X':
		return errTerminate
	default:
		return pgerror.Fatal(pgerror.ProtocolViolation, "invalid frontend message type %d", typ)
	}
}

// readClient waits for the client's next message, applying the drain and
// idle-in-transaction rules.
func (s *session) readClient() (byte, []byte, error) {
	idle := s.txStatus == 'I' && len(s.queue) == 0 && !s.awaitingSync
	if idle {
		if s.idleDeadline {
			_ = s.c.SetReadDeadline(time.Time{})
			s.idleDeadline = false
		}
		if !s.c.BeginIdle() {
			return 0, nil, errDraining
		}
		if s.listening && s.server != nil {
			return s.readClientWatchingServer()
		}
		typ, body, err := s.c.ReadMessage()
		s.c.EndIdle()
		return typ, body, err
	}
	if t := s.r.cfg.IdleTransactionTimeout; t > 0 && s.txStatus != 'I' && len(s.queue) == 0 && s.c.Buffered() == 0 {
		_ = s.c.SetReadDeadline(time.Now().Add(t))
		s.idleDeadline = true
	}
	return s.c.ReadMessage()
}

var errDraining = errors.New("proxy is shutting down")

func (s *session) clientReadFailed(err error) error {
	switch {
	case errors.Is(err, errDraining):
		s.c.Goodbye(pgerror.Fatal(pgerror.AdminShutdown, "terminating connection due to administrator command").
			WithHint("the proxy is shutting down; reconnect to another node"))
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if s.c.Draining() {
			s.c.Goodbye(pgerror.Fatal(pgerror.AdminShutdown, "terminating connection due to administrator command"))
			return nil
		}
		if s.idleDeadline {
			s.c.Goodbye(pgerror.Fatal(pgerror.IdleInTransactionSessionTimeout,
				"terminating connection due to idle-in-transaction timeout").
				WithHint("limits.idle_transaction_timeout is %s", s.r.cfg.IdleTransactionTimeout))
			return nil
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return nil
	}
	var sl *serverLostError
	if errors.As(err, &sl) {
		s.dropServer()
		if !s.serverSentFatal {
			s.c.Goodbye(fatal(serverLostClientError(err)))
		}
		return err
	}
	var pe *pgerror.Error
	if errors.As(err, &pe) {
		s.c.Goodbye(fatal(pe))
	}
	return err
}

func fatal(err error) *pgerror.Error {
	pe := pgerror.From(err)
	if pe.Severity != pgerror.SeverityFatal {
		c := *pe
		c.Severity = pgerror.SeverityFatal
		pe = &c
	}
	return pe
}

// clientError reports a proxy-made error in the position of the message
// that caused it and then skips to Sync, as PostgreSQL does. Inside a
// transaction block the server's transaction is aborted too, so the
// client's next statement fails the way it would on PostgreSQL.
func (s *session) clientError(ctx context.Context, pe *pgerror.Error) error {
	buf, _ := wire.ErrorResponse(pe).Encode(nil)
	s.queue = append(s.queue, expect{kind: 'x', synthetic: buf})
	s.skipping = true
	if s.server == nil {
		// Nothing reached a server in this batch: no server transaction
		// to fail. The answer waits for its turn (or goes now).
		s.failDeferredBlock()
		if len(s.queue) == 1 {
			s.queue = s.queue[:0]
			return s.c.WriteRaw(buf)
		}
		return nil
	}
	// Make the server fail the batch too: its implicit transaction rolls
	// back (or its transaction block aborts) and it skips to Sync, exactly
	// as if it had raised the error itself.
	// (Session pooling passes the client's messages through, so the proxy
	// makes no errors there that the server would not.)
	if s.mode == PoolTransaction {
		s.writeUnnamedStatement(abortQuery, nil, true)
	}
	return nil
}

// abortQuery fails on purpose to put the server's transaction into the
// aborted state after an error the proxy reported itself.
const abortQuery = "DO $$BEGIN RAISE EXCEPTION 'shardproxy: transaction aborted by an error the proxy reported'; END$$"

// end releases everything when the client has gone.
func (s *session) end() {
	if len(s.parked) > 0 {
		// Other shards' parts of an unfinished transaction (or of a
		// pipeline without its Sync): closing their connections rolls
		// them back.
		s.releaseParked(s.txStatus != 'I' || s.openBatch || len(s.unsynced) > 0 || s.batchInBlock || s.upgraded)
	}
	s.mu.Lock()
	sc := s.server
	s.mu.Unlock()
	if sc == nil {
		return
	}
	if len(s.queue) > 0 {
		// The client vanished with a query in flight: the connection's
		// state is unknown, so it is cancelled and closed, never reused.
		_ = sc.Cancel(context.Background())
		s.dropServer()
		return
	}
	if s.openBatch || s.skipping {
		// Extended-protocol messages without their Sync: the server holds
		// an implicit transaction (a Sync would commit it) or is skipping
		// to a Sync after an error. Only closing is safe.
		s.dropServer()
		return
	}
	s.resetForPool()
}

// interruptServer is called by the wire server when the shutdown deadline
// passes: a wait on the server fails at once.
func (s *session) interruptServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		_ = s.server.SetDeadline(time.Now())
	}
	if s.pipe != nil {
		// The shared connection ends for every session on it; they are
		// all being interrupted.
		_ = s.pipe.sc.SetDeadline(time.Now())
	}
}
