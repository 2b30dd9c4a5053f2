package router

// Getting and giving back server connections around a batch of client
// messages, and the messages that end a batch (Sync, Flush, Query).

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
)

// ensureServer gives the session a server connection with the client's
// settings applied, inside the client's deferred block if one is open.
func (s *session) ensureServer(ctx context.Context) error {
	if s.server != nil {
		return s.closeEvicted()
	}
	if !s.beginDeferred {
		return s.takeServer(ctx)
	}
	// Applying settings answers 'I'; the client's status stands.
	status := s.txStatus
	err := s.takeServer(ctx)
	s.txStatus = status
	if err != nil {
		return err
	}
	return s.openDeferredBlock(ctx)
}

// takeServer checks a connection out of the pool and applies the
// client's settings to it.
func (s *session) takeServer(ctx context.Context) error {
	if s.replicaAddr == "" {
		// The map may have given the shard a new primary since.
		if p, err := s.shardPool(s.shardID); err == nil {
			s.pool = p
		}
	}
	sc, err := s.pool.acquire(ctx)
	if err != nil {
		return clientErrorFrom(err)
	}
	s.mu.Lock()
	s.server = sc
	s.mu.Unlock()
	// A custom setting, once set on a server connection, can be reset but
	// never removed: current_setting(name, true) would say '' where the
	// client expects NULL. Such a connection goes to clients that use the
	// setting; others get another connection.
	for tries := 0; sc.customSettings && hasForeignCustomSettings(sc.settings, s.settings) && tries <= cap(s.pool.slots); tries++ {
		s.discardCurrent()
		if sc, err = s.pool.acquire(ctx); err != nil {
			return clientErrorFrom(err)
		}
		s.mu.Lock()
		s.server = sc
		s.mu.Unlock()
	}
	if err := s.closeEvicted(); err != nil {
		return err
	}
	if !equalSettings(s.settings, sc.settings) {
		// Its own round trip: the client's statements must not run on a
		// connection whose settings could not be applied.
		var failed *pgproto3.ErrorResponse
		q := settingsQuery(s.settings, sc.settings)
		if err := s.internalQuery(ctx, q, expect{onError: func(e *pgproto3.ErrorResponse) { failed = e }}); err != nil {
			return err
		}
		if failed != nil {
			s.discardCurrent()
			return &pgerror.Error{Severity: pgerror.SeverityError, Code: pgerror.Code(failed.Code),
				Message: "could not apply the session's settings on a server connection: " + failed.Message,
				Hint:    "a setting that worked earlier was refused by the server"}
		}
		sc.setSettings(cloneSettings(s.settings))
	}
	return nil
}

// closeEvicted closes statements the connection no longer tracks, ahead of
// the client's messages.
func (s *session) closeEvicted() error {
	sc := s.server
	if len(sc.toClose) == 0 {
		return nil
	}
	for _, name := range sc.toClose {
		body := append(append([]byte{'S'}, name...), 0)
		if err := sc.WriteFrame('C', body); err != nil {
			return &serverLostError{err: err}
		}
		s.queue = append(s.queue, expect{kind: 'C', swallow: true, swallowErrors: true})
	}
	sc.toClose = sc.toClose[:0]
	return nil
}

// internalQuery runs a simple query of the proxy's own and waits for it.
func (s *session) internalQuery(ctx context.Context, sql string, e expect) error {
	e.kind, e.swallow, e.swallowErrors = 'Q', true, true
	body := append([]byte(sql), 0)
	if err := s.server.WriteFrame('Q', body); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, e)
	return s.roundTrip(ctx)
}

// roundTrip sends what is buffered for the server and relays every answer.
func (s *session) roundTrip(ctx context.Context) error {
	s.unanswered = 0
	var err error
	if s.mode == PoolTransaction && s.awaitsServer() {
		// relay reads the server next: the frames go out from inside
		// that read's wait, one system call fewer per round trip. That
		// wait does not look at bytes that came before it, which is
		// safe when nothing but answers comes unasked: not so in
		// session pooling, where a LISTENing session's notifications
		// could fill the socket while the server is blocked sending
		// more.
		err = s.server.FlushForReply()
	} else {
		err = s.server.Flush()
	}
	if err != nil {
		return &serverLostError{err: err}
	}
	s.mu.Lock()
	s.busy = true
	s.mu.Unlock()
	err = s.relay(ctx)
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
	return err
}

// awaitsServer reports whether relay will read from the server: some
// queued answer is not made up by the proxy.
func (s *session) awaitsServer() bool {
	for i := range s.queue {
		if s.queue[i].kind != 'x' {
			return true
		}
	}
	return false
}

// afterBatch runs when the server said ReadyForQuery: settings changed in
// a finished transaction are read back, and in transaction pooling the
// connection goes back to the pool.
func (s *session) afterBatch(ctx context.Context) error {
	if s.server == nil || s.txStatus != 'I' || len(s.queue) > 0 || s.awaitingSync {
		return nil
	}
	// In session pooling the connection stays with the client and is reset
	// by DISCARD ALL when it leaves, so settings need no reading back.
	if s.mode == PoolTransaction {
		if s.opaque {
			if err := s.checkSessionState(ctx); err != nil {
				return err
			}
		}
		if s.settingsDirty {
			if err := s.readSettings(ctx); err != nil {
				return err
			}
		}
		s.releaseServer()
	}
	return nil
}

func (s *session) readSettings(ctx context.Context) error {
	got := map[string]string{}
	var dr pgproto3.DataRow
	err := s.internalQuery(ctx, s.readSettingsQuery(), expect{onRow: func(body []byte) {
		if dr.Decode(body) == nil && len(dr.Values) == 2 {
			got[string(dr.Values[0])] = string(dr.Values[1])
		}
	}})
	if err != nil {
		return err
	}
	s.settings = got
	s.server.setSettings(cloneSettings(got))
	s.settingsDirty = false
	return nil
}

// readSettingsQuery lists exactly the settings the session changed: what
// SET, RESET, set_config and the proxy's own replay left in force, after
// PostgreSQL applied its transaction rules (ROLLBACK, SET LOCAL). Settings
// pg_settings does not show are asked for by name: the role, and the
// custom (dotted) settings the client was seen to use.
func (s *session) readSettingsQuery() string {
	var b strings.Builder
	b.WriteString("SELECT name, setting FROM pg_catalog.pg_settings WHERE source = 'session'" +
		" UNION ALL SELECT 'role', pg_catalog.current_setting('role') WHERE pg_catalog.current_setting('role') <> 'none'")
	for _, name := range sortedKeys(s.customNames) {
		n := quoteLiteral(name)
		b.WriteString(" UNION ALL SELECT " + n + ", v FROM (SELECT pg_catalog.current_setting(" + n +
			", true) AS v) c WHERE v IS NOT NULL AND v <> ''")
	}
	return b.String()
}

// noteCustomSettings remembers custom setting names the client uses.
func (s *session) noteCustomSettings(names []string) {
	for _, n := range names {
		if s.customNames == nil {
			s.customNames = map[string]string{}
		}
		s.customNames[n] = ""
	}
}

// checkSessionState runs after a transaction whose effects on the session
// the proxy could not see in its text (a DO block, a CALL): a server
// connection left holding a temporary table, a session advisory lock or a
// LISTEN is closed rather than handed to another client.
func (s *session) checkSessionState(ctx context.Context) error {
	var held bool
	var dr pgproto3.DataRow
	err := s.internalQuery(ctx, sessionStateQuery, expect{onRow: func(body []byte) {
		held = dr.Decode(body) == nil && len(dr.Values) == 1 && string(dr.Values[0]) != "0"
	}})
	if err != nil {
		return err
	}
	if held {
		s.server.dirty = true
	}
	s.opaque = false
	return nil
}

const sessionStateQuery = "SELECT (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory')" +
	" + (SELECT count(*) FROM pg_catalog.pg_listening_channels())" +
	" + (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema())"

func (s *session) releaseServer() {
	s.mu.Lock()
	sc := s.server
	s.server = nil
	s.mu.Unlock()
	if s.replicaAddr != "" {
		s.endReplica()
		// The next statement starts from the shard's primary pool.
		if p, err := s.shardPool(s.shardID); err == nil {
			s.pool = p
		}
	}
	if sc != nil {
		s.giveBack(sc, false)
	}
	s.releaseParked(false)
	s.wrote = nil
	// Cursors end with the transaction (WITH HOLD is refused).
	clear(s.cursors)
}

// discardCurrent closes the current connection only (the session's other
// shards keep theirs).
func (s *session) discardCurrent() {
	s.mu.Lock()
	sc := s.server
	s.server = nil
	s.mu.Unlock()
	if sc != nil {
		sc.pool.discard(sc)
	}
}

func (s *session) dropServer() {
	s.mu.Lock()
	sc := s.server
	s.server = nil
	s.mu.Unlock()
	if s.replicaAddr != "" {
		if s.r.cfg.Replicas != nil {
			s.r.cfg.Replicas.MarkDown(s.replicaAddr)
		}
		s.endReplica()
		if p, err := s.shardPool(s.shardID); err == nil {
			s.pool = p
		}
	}
	s.queue = s.queue[:0]
	if sc != nil {
		sc.pool.discard(sc)
	}
	// The transaction is lost with the connection: the other shards'
	// parts of it are rolled back by closing theirs.
	s.releaseParked(true)
	s.wrote = nil
}

// resetForPool makes an idle connection clean for the next client when
// this one has gone: a transaction left open is rolled back, and in
// session pooling the whole session state is discarded.
func (s *session) resetForPool() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc := s.server
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	if s.txStatus != 'I' {
		if err := s.internalQuery(ctx, "ROLLBACK", expect{}); err != nil {
			s.dropServer()
			return
		}
	}
	if s.mode == PoolSession {
		if err := s.internalQuery(ctx, "DISCARD ALL", expect{}); err != nil {
			s.dropServer()
			return
		}
		sc.resetState(true)
	} else if s.settingsDirty {
		// The next client's settings are applied as a difference from
		// what this connection has, so that must be known exactly.
		if err := s.readSettings(ctx); err != nil {
			s.dropServer()
			return
		}
	}
	_ = sc.SetDeadline(time.Time{})
	s.releaseServer()
}

// sync ends an extended-protocol batch.
func (s *session) sync(ctx context.Context) error {
	s.skipping = false
	if len(s.unsynced) > 0 {
		if err := s.syncParked(); err != nil {
			return err
		}
	}
	s.batchWrote = false
	// The server's ReadyForQuery says from here on.
	defer func() { s.batchInBlock = false }()
	if s.txStatus != 'T' {
		clear(s.dportals)
	}
	if s.upgraded {
		return s.syncUpgraded(ctx)
	}
	if s.server == nil {
		s.batch.reset()
		return s.answerWithoutServer()
	}
	if err := s.server.WriteFrame('S', nil); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue, expect{kind: 'S'})
	s.queueCommitLSN()
	if s.batch.changesSettings {
		if err := s.restoreStartupSettings(); err != nil {
			return err
		}
	}
	if err := s.roundTrip(ctx); err != nil {
		return err
	}
	if s.batch.retry {
		if err := s.replayBatch(ctx); err != nil {
			return err
		}
		s.skipping = false
		if err := s.server.WriteFrame('S', nil); err != nil {
			return &serverLostError{err: err}
		}
		s.queue = append(s.queue, expect{kind: 'S'})
		if s.batch.changesSettings {
			if err := s.restoreStartupSettings(); err != nil {
				return err
			}
		}
		if err := s.roundTrip(ctx); err != nil {
			return err
		}
	}
	s.batch.reset()
	if err := s.afterBatch(ctx); err != nil {
		return err
	}
	return s.c.Flush()
}

// answerWithoutServer answers a Sync when nothing reached a server: the
// queued synthetic answers, then ReadyForQuery.
func (s *session) answerWithoutServer() error {
	for _, e := range s.queue {
		if err := s.c.WriteRaw(e.synthetic); err != nil {
			return &clientLostError{err: err}
		}
	}
	s.queue = s.queue[:0]
	if err := s.c.WriteFrame('Z', []byte{s.txStatus}); err != nil {
		return &clientLostError{err: err}
	}
	return s.c.Flush()
}

// flushMsg handles a client Flush: everything queued is answered now.
func (s *session) flushMsg(ctx context.Context) error {
	if s.server == nil {
		for _, e := range s.queue {
			if err := s.c.WriteRaw(e.synthetic); err != nil {
				return &clientLostError{err: err}
			}
		}
		s.queue = s.queue[:0]
		return s.c.Flush()
	}
	if err := s.server.WriteFrame('H', nil); err != nil {
		return &serverLostError{err: err}
	}
	if err := s.roundTrip(ctx); err != nil {
		return err
	}
	if s.batch.retry {
		// A stale statement in a batch that has no Sync yet: nothing in it
		// executed, so a Sync of the proxy's own ends the server's error
		// state harmlessly, and the batch is replayed up to this Flush.
		if err := s.server.WriteFrame('S', nil); err != nil {
			return &serverLostError{err: err}
		}
		s.queue = append(s.queue, expect{kind: 'S', swallow: true})
		if err := s.roundTrip(ctx); err != nil {
			return err
		}
		s.skipping = false
		if err := s.replayBatch(ctx); err != nil {
			return err
		}
	}
	return s.c.Flush()
}

// clientErrorFrom turns a server's login error into the client's error and
// passes proxy errors through.
func clientErrorFrom(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &pgerror.Error{Severity: pgerror.SeverityError, Code: pgerror.Code(pgErr.Code),
			Message: pgErr.Message, Detail: pgErr.Detail, Hint: pgErr.Hint, Cause: err}
	}
	var pe *pgerror.Error
	if errors.As(err, &pe) {
		return err
	}
	return pgerror.Wrap(err, pgerror.CannotConnectNow, "could not get a server connection")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
