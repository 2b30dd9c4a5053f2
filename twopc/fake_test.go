package twopc_test

// Fakes for the unit tests: a shard that keeps what PostgreSQL keeps about
// two-phase commit (open transactions per session, prepared transactions
// by gid, which outlive sessions), sessions on it that can be told to fail
// a statement, and a decision log whose Commit can be told to fail.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shardproxy/shardproxy/twopc"
)

// pgErr is a server error as pgconn.PgError presents it to errors.As
// probes.
type pgErr struct{ code, msg string }

func (e *pgErr) Error() string    { return e.msg + " (SQLSTATE " + e.code + ")" }
func (e *pgErr) SQLState() string { return e.code }

type fakeShard struct {
	id string

	mu       sync.Mutex
	prepared map[string]twopc.Prepared
	resolved []string // "commit <gid>" / "rollback <gid>", in order
	listErr  error
	connErr  error
	// hangList and hangResolve make listing, or COMMIT/ROLLBACK
	// PREPARED, wait until the caller's context ends: a server that
	// keeps the connection open without answering.
	hangList, hangResolve bool
}

func newShard(id string) *fakeShard {
	return &fakeShard{id: id, prepared: make(map[string]twopc.Prepared)}
}

// prepare puts a prepared transaction on the shard directly, as a crashed
// coordinator would have left it.
func (s *fakeShard) prepare(gid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared[gid] = twopc.Prepared{GID: gid, Database: "app", Owner: "app"}
}

func (s *fakeShard) gids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gids []string
	for g := range s.prepared {
		gids = append(gids, g)
	}
	slices.Sort(gids)
	return gids
}

func (s *fakeShard) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resolved)
}

func (s *fakeShard) access() twopc.ShardAccess {
	return twopc.ShardAccess{
		ID: s.id,
		List: func(ctx context.Context) ([]twopc.Prepared, error) {
			s.mu.Lock()
			hang := s.hangList
			s.mu.Unlock()
			if hang {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.listErr != nil {
				return nil, s.listErr
			}
			var out []twopc.Prepared
			for _, p := range s.prepared {
				out = append(out, p)
			}
			slices.SortFunc(out, func(a, b twopc.Prepared) int { return strings.Compare(a.GID, b.GID) })
			return out, nil
		},
		Connect: func(ctx context.Context, shardID, database, owner string) (twopc.Conn, error) {
			if shardID != s.id {
				return nil, fmt.Errorf("connector asked for shard %s on %s", shardID, s.id)
			}
			if s.connErr != nil {
				return nil, s.connErr
			}
			return &session{shard: s, db: database, owner: owner}, nil
		},
	}
}

// failure makes a session fail statements starting with prefix. lost
// means the statement took effect but the answer was lost (a broken
// connection); otherwise a server error means it did not.
type failure struct {
	prefix string
	err    error
	lost   bool
}

type session struct {
	shard     *fakeShard
	db, owner string
	inTx      bool
	txFailed  bool // an earlier statement failed: COMMIT/PREPARE roll back
	fail      []failure
	calls     []string
	closed    bool
}

// begin returns a session inside a transaction block, as the router hands
// it to the coordinator.
func (s *fakeShard) begin(fail ...failure) *session {
	return &session{shard: s, db: "app", owner: "app", inTx: true, fail: fail}
}

func (c *session) Name() string { return c.shard.id }

func (c *session) Close(ctx context.Context) error { c.closed = true; return nil }

func (c *session) Exec(ctx context.Context, sql string) (string, error) {
	c.calls = append(c.calls, sql)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c.shard.mu.Lock()
	hang := c.shard.hangResolve && strings.Contains(sql, " PREPARED ")
	c.shard.mu.Unlock()
	if hang {
		<-ctx.Done()
		return "", ctx.Err()
	}
	for _, f := range c.fail {
		if !strings.HasPrefix(sql, f.prefix) {
			continue
		}
		if !f.lost {
			if c.inTx {
				// A failing statement ends PREPARE/COMMIT's transaction.
				c.inTx = false
			}
			return "", f.err
		}
		c.exec(sql) // took effect; the caller never hears
		return "", f.err
	}
	return c.exec(sql)
}

func (c *session) exec(sql string) (string, error) {
	s := c.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(sql, "PREPARE TRANSACTION "):
		gid := unquote(strings.TrimPrefix(sql, "PREPARE TRANSACTION "))
		if !c.inTx || c.txFailed {
			c.inTx, c.txFailed = false, false
			return "ROLLBACK", nil
		}
		c.inTx = false
		if _, ok := s.prepared[gid]; ok {
			return "", &pgErr{"42710", "transaction identifier is already in use"}
		}
		s.prepared[gid] = twopc.Prepared{GID: gid, Database: c.db, Owner: c.owner}
		return "PREPARE TRANSACTION", nil
	case strings.HasPrefix(sql, "COMMIT PREPARED "), strings.HasPrefix(sql, "ROLLBACK PREPARED "):
		verb, lit, _ := strings.Cut(sql, " PREPARED ")
		gid := unquote(lit)
		if c.inTx {
			return "", &pgErr{"25001", verb + " PREPARED cannot run inside a transaction block"}
		}
		p, ok := s.prepared[gid]
		if !ok {
			return "", &pgErr{"42704", fmt.Sprintf("prepared transaction with identifier %q does not exist", gid)}
		}
		if p.Database != c.db {
			return "", &pgErr{"0A000", "prepared transaction belongs to another database"}
		}
		delete(s.prepared, gid)
		s.resolved = append(s.resolved, strings.ToLower(verb)+" "+gid)
		return verb + " PREPARED", nil
	case sql == "ROLLBACK":
		c.inTx, c.txFailed = false, false
		return "ROLLBACK", nil
	case sql == "COMMIT":
		failed := c.txFailed || !c.inTx
		c.inTx, c.txFailed = false, false
		if failed {
			return "ROLLBACK", nil
		}
		s.resolved = append(s.resolved, "commit (one phase)")
		return "COMMIT", nil
	}
	return "", &pgErr{"42601", "syntax error: " + sql}
}

// unquote undoes twopc's literal quoting: '...' or E'...' with doubled
// quotes and, in E'...', doubled backslashes.
func unquote(lit string) string {
	e := strings.HasPrefix(lit, "E'")
	lit = strings.TrimPrefix(lit, "E")
	lit = strings.TrimSuffix(strings.TrimPrefix(lit, "'"), "'")
	lit = strings.ReplaceAll(lit, "''", "'")
	if e {
		lit = strings.ReplaceAll(lit, `\\`, `\`)
	}
	return lit
}

// memLog is a DecisionLog in memory whose Commit can be made to fail.
type memLog struct {
	mu        sync.Mutex
	decided   map[string]bool
	commitErr error
	// recordAnyway makes a failing Commit record the decision all the
	// same, as a write whose fsync failed may have.
	recordAnyway bool
	doneCalls    []string
}

func newMemLog() *memLog { return &memLog{decided: make(map[string]bool)} }

func (l *memLog) decide(gid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.decided[gid] = true
}

func (l *memLog) Commit(ctx context.Context, gid string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.commitErr != nil {
		if l.recordAnyway {
			l.decided[gid] = true
		}
		return l.commitErr
	}
	l.decided[gid] = true
	return nil
}

func (l *memLog) Done(ctx context.Context, gid string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.doneCalls = append(l.doneCalls, gid)
	delete(l.decided, gid)
	return nil
}

func (l *memLog) Decided(gid string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.decided[gid], nil
}

func (l *memLog) Pending() ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gids []string
	for g := range l.decided {
		gids = append(gids, g)
	}
	slices.Sort(gids)
	return gids, nil
}

var _ twopc.DecisionLog = (*memLog)(nil)

func newCoordinator(t *testing.T, log twopc.DecisionLog, hooks twopc.Hooks) *twopc.Coordinator {
	t.Helper()
	c, err := twopc.NewCoordinator(twopc.Config{NodeID: "n1", Log: log, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var errBroken = errors.New("connection reset by peer")

// pipelinedSession is a session that also takes statements pipelined
// (twopc.Pipeliner): Send runs the statement, as a server would on
// receipt, and Receive hands back its answer.
type pipelinedSession struct {
	*session
	answers []pipelinedAnswer
	sendErr error // Send fails with it and nothing reaches the shard
}

type pipelinedAnswer struct {
	tag string
	err error
}

func (p *pipelinedSession) Send(ctx context.Context, sql string) error {
	if p.sendErr != nil {
		p.calls = append(p.calls, sql)
		return p.sendErr
	}
	tag, err := p.session.Exec(ctx, sql)
	p.answers = append(p.answers, pipelinedAnswer{tag, err})
	return nil
}

func (p *pipelinedSession) Receive(context.Context) (string, error) {
	a := p.answers[0]
	p.answers = p.answers[1:]
	return a.tag, a.err
}
