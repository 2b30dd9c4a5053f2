package router

// A pool of server connections for one (backend, database, user). Idle
// connections are kept LIFO so the warmest one (its prepared statements and
// settings most likely to match) is reused first, and the slot semaphore
// caps connections per backend at pool.size.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/backend"
	"github.com/shardproxy/shardproxy/pgerror"
)

type poolKey struct {
	addr, database, user string
}

type pool struct {
	key     poolKey
	dial    backend.DialConfig
	cfg     *Config
	slots   chan struct{}
	maxPrep int

	// pipes are the connections taken for pipelining (pipeline.go).
	pipes pipelines

	mu           sync.Mutex
	idle         []*serverConn
	open         int
	backoff      time.Duration
	backoffUntil time.Time
	lastErr      error
}

func newPool(key poolKey, dial backend.DialConfig, cfg *Config) *pool {
	return &pool{key: key, dial: dial, cfg: cfg, slots: make(chan struct{}, cfg.PoolSize), maxPrep: cfg.PreparedPerServer}
}

// acquire returns a server connection, waiting up to the pool wait timeout
// for a free slot.
func (p *pool) acquire(ctx context.Context) (*serverConn, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		t := time.NewTimer(p.cfg.PoolWaitTimeout)
		select {
		case p.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, pgerror.New(pgerror.PoolTimeout,
				"no server connection to %s became free within pool.wait_timeout (%s)", p.key.addr, p.cfg.PoolWaitTimeout).
				WithHint("all %d server connections are busy; raise pool.size or shorten transactions", cap(p.slots))
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		sc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		// The liveness peek is a system call: outside the pool's lock,
		// which every session of the pool takes.
		if !p.expired(sc, now) && sc.Alive() {
			return sc, nil
		}
		_ = sc.Close()
		p.mu.Lock()
		p.open--
	}
	p.mu.Unlock()
	return p.connect(ctx)
}

// connect opens a server connection in a slot the caller holds; the slot
// is given back when it fails.
func (p *pool) connect(ctx context.Context) (*serverConn, error) {
	p.mu.Lock()
	if time.Now().Before(p.backoffUntil) {
		err := p.lastErr
		p.mu.Unlock()
		<-p.slots
		return nil, p.unavailable(err)
	}
	p.open++
	p.mu.Unlock()

	bc, err := backend.Dial(ctx, p.dial)
	if err != nil {
		p.mu.Lock()
		p.open--
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			// The server refused or is down: back off so a dead backend
			// costs each client one fast error, not a connect timeout.
			p.backoff = min(max(p.backoff*2, 100*time.Millisecond), 5*time.Second)
			p.backoffUntil = time.Now().Add(p.backoff)
			p.lastErr = err
		}
		p.mu.Unlock()
		<-p.slots
		if pgErr != nil {
			// Login errors from the server (bad password for the backend
			// user, missing database) go to the client as the server said.
			return nil, pgErr
		}
		return nil, p.unavailable(err)
	}
	p.mu.Lock()
	p.backoff, p.lastErr = 0, nil
	p.mu.Unlock()
	return newServerConn(bc, p), nil
}

func (p *pool) unavailable(err error) error {
	return pgerror.Wrap(err, pgerror.CannotConnectNow, "server %s is not available", p.key.addr).
		WithHint("shardproxy retries with backoff; check that the shard's PostgreSQL is running")
}

func (p *pool) expired(sc *serverConn, now time.Time) bool {
	if p.cfg.ServerLifetime > 0 && now.Sub(sc.Created) > p.cfg.ServerLifetime {
		return true
	}
	return p.cfg.ServerIdleTimeout > 0 && now.Sub(sc.lastUsed) > p.cfg.ServerIdleTimeout
}

// release returns a clean, idle connection to the pool.
func (p *pool) release(sc *serverConn) {
	sc.lastUsed = time.Now()
	p.mu.Lock()
	p.idle = append(p.idle, sc)
	p.mu.Unlock()
	<-p.slots
}

// discard closes a connection that must not be reused.
func (p *pool) discard(sc *serverConn) {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	_ = sc.Close()
	<-p.slots
}

// closeIdle closes every idle connection (shutdown).
func (p *pool) closeIdle() {
	p.pipes.closeAll()
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	for _, sc := range idle {
		_ = sc.Close()
	}
}

// Stats is a pool's state for SHOW POOLS and metrics.
type PoolStats struct {
	Addr, Database, User string
	Open, Idle, InUse    int
	// Pipelined counts the open connections that carry pipelined
	// requests (counted in InUse too); PipelinedRequests the requests
	// they have served.
	Pipelined         int
	PipelinedRequests uint64
}

func (p *pool) stats() PoolStats {
	p.pipes.mu.Lock()
	pipes := len(p.pipes.conns)
	p.pipes.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Addr: p.key.addr, Database: p.key.database, User: p.key.user,
		Open: p.open, Idle: len(p.idle), InUse: p.open - len(p.idle),
		Pipelined: pipes, PipelinedRequests: p.pipes.served.Load()}
}

func (k poolKey) String() string { return fmt.Sprintf("%s/%s@%s", k.user, k.database, k.addr) }
