package router

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/backend"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/planner"
	"github.com/shardproxy/shardproxy/twopc"
	"github.com/shardproxy/shardproxy/wire"
)

// PoolMode says when a client gives its server connection back.
type PoolMode string

const (
	// PoolTransaction: after each transaction; session state is replayed.
	PoolTransaction PoolMode = "transaction"
	// PoolSession: when the client disconnects.
	PoolSession PoolMode = "session"
)

// Credentials are what a client user logs into backends with.
type Credentials struct {
	User, Password string
}

// Hooks let tests inject delays at points where races matter. Production
// leaves them nil.
type Hooks struct {
	// BeforeCancelLookup runs when a CancelRequest arrives, before the
	// proxy looks up which server connection the client is using.
	BeforeCancelLookup func()
	// AfterCancel runs when the proxy has finished handling a cancel.
	AfterCancel func(forwarded bool)
}

// Config configures a Router.
type Config struct {
	Mode              PoolMode
	PoolSize          int
	PoolWaitTimeout   time.Duration
	ServerIdleTimeout time.Duration
	ServerLifetime    time.Duration
	PreparedPerServer int
	// LiteralParameters: simple queries routed by literal keys run as
	// prepared statements with the keys as parameters (literalparams.go).
	LiteralParameters bool
	// EagerBegin sends a client's BEGIN to a server at once instead of
	// with the block's first statement (deferbegin.go).
	EagerBegin bool
	// PipelineConnections: up to this many connections per pool carry
	// several sessions' one-statement reads at once (pipeline.go); 0 is
	// off.
	PipelineConnections int
	// PlanCacheMode is the servers' plan_cache_mode ("" leaves the
	// server's default): force_custom_plan keeps PostgreSQL planning
	// every execution of the statements the proxy prepares.
	PlanCacheMode string
	// IdleTransactionTimeout ends clients idle inside a transaction (25P03).
	IdleTransactionTimeout time.Duration
	// QueryTimeout becomes the servers' statement_timeout.
	QueryTimeout time.Duration
	// MaxMergeBuffer bounds the bytes of shard rows one multi-shard
	// statement holds while they are merged (54000 beyond it).
	MaxMergeBuffer int64
	BackendTLSMode string
	BackendTLSCA   string
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	// Backend maps a client user name to the credentials used on backends.
	Backend func(user string) (Credentials, bool)
	Map     *metadata.Map
	// Coordinator commits writes that span shards (two-phase commit).
	Coordinator *twopc.Coordinator
	// NodeID names this node in the cancel keys it issues; Peers lists
	// the cluster's nodes, for cancel requests that land on the wrong one
	// (nil: a node on its own).
	NodeID string
	Peers  peersFunc
	// Replicas picks replicas for reads; nil sends every statement to
	// primaries.
	Replicas ReplicaPicker
	// ReadYourWrites: after a write commits on a shard with replicas, the
	// session's reads there wait for a replica past it (or use the
	// primary).
	ReadYourWrites bool
	Hooks          Hooks
	Logger         *slog.Logger
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	switch c.Mode {
	case "":
		c.Mode = PoolTransaction
	case PoolTransaction, PoolSession:
	default:
		return fmt.Errorf("router: unknown pool mode %q", c.Mode)
	}
	if c.PoolSize < 1 {
		return fmt.Errorf("router: pool size %d is below 1", c.PoolSize)
	}
	if c.PreparedPerServer < 1 {
		return fmt.Errorf("router: prepared statements per server %d is below 1", c.PreparedPerServer)
	}
	if c.PoolWaitTimeout <= 0 {
		c.PoolWaitTimeout = 30 * time.Second
	}
	if c.MaxMergeBuffer <= 0 {
		c.MaxMergeBuffer = 256 << 20
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Backend == nil {
		return errors.New("router: Backend credentials lookup is required")
	}
	if c.Map == nil || len(c.Map.Shards) == 0 {
		return errors.New("router: the shard map has no shards")
	}
	if c.Mode == PoolSession && (len(c.Map.Shards) > 1 || len(c.Map.Tables) > 0) {
		return errors.New("router: session pooling routes to one shard only; with several shards or configured tables use pool.mode: transaction")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Router serves client sessions; it implements wire.Handler.
type Router struct {
	cfg Config
	log *slog.Logger

	mapPtr atomic.Pointer[metadata.Map]
	// schemaEpoch counts schema changes seen through this node; server
	// statements prepared in an older epoch are prepared again before use.
	schemaEpoch atomic.Uint64

	poolsMu sync.Mutex
	pools   map[poolKey]*pool

	catalogs catalogs
	planner  *planner.Planner
	// columnCounts caches how many columns a rewritten shard statement
	// returns (columnCountKey -> int).
	columnCounts sync.Map

	sessionsMu sync.RWMutex
	sessions   map[uint64]*session
	nextPID    atomic.Uint32
	tag        uint32 // this node's tag in issued process ids (cancel.go)
}

var _ wire.Handler = (*Router)(nil)

// New returns a router.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pl, err := planner.New(planner.PlannerConfig{Cache: planner.CacheConfig{Size: planCacheSize}})
	if err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg, log: cfg.Logger, pools: map[poolKey]*pool{}, sessions: map[uint64]*session{}, planner: pl,
		tag: nodeTag(cfg.NodeID)}
	r.mapPtr.Store(cfg.Map)
	// Start issued process ids away from 0 so they never look unset.
	r.nextPID.Store(1 << 20)
	return r, nil
}

// Map returns the shard map the router currently routes with.
func (r *Router) Map() *metadata.Map { return r.mapPtr.Load() }

// SetMap switches to a new map version. Statements planned from now on
// use it; nothing in flight is interrupted (plans name keys, not shards,
// and a session's connections stay where they are until its transaction
// ends).
func (r *Router) SetMap(m *metadata.Map) {
	if m == nil || len(m.Shards) == 0 {
		return
	}
	for {
		old := r.mapPtr.Load()
		if old != nil && old.Version >= m.Version {
			return
		}
		if r.mapPtr.CompareAndSwap(old, m) {
			return
		}
	}
}

func (r *Router) poolFor(addr, database string, cred Credentials) *pool {
	key := poolKey{addr: addr, database: database, user: cred.User}
	r.poolsMu.Lock()
	defer r.poolsMu.Unlock()
	p, ok := r.pools[key]
	if !ok {
		dc := backend.DialConfig{
			Addr: addr, User: cred.User, Password: cred.Password, Database: database,
			TLSMode: r.cfg.BackendTLSMode, TLSCA: r.cfg.BackendTLSCA,
			ConnectTimeout: r.cfg.ConnectTimeout, KeepAlive: r.cfg.KeepAlive,
		}
		dc.RuntimeParams = map[string]string{}
		if r.cfg.QueryTimeout > 0 {
			dc.RuntimeParams["statement_timeout"] = fmt.Sprint(r.cfg.QueryTimeout.Milliseconds())
		}
		if r.cfg.PlanCacheMode != "" {
			dc.RuntimeParams["plan_cache_mode"] = r.cfg.PlanCacheMode
		}
		p = newPool(key, dc, &r.cfg)
		r.pools[key] = p
	}
	return p
}

// Pools returns the state of every pool, sorted, for SHOW POOLS and metrics.
func (r *Router) Pools() []PoolStats {
	r.poolsMu.Lock()
	ps := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		ps = append(ps, p)
	}
	r.poolsMu.Unlock()
	out := make([]PoolStats, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.stats())
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Addr != b.Addr {
			return a.Addr < b.Addr
		}
		if a.Database != b.Database {
			return a.Database < b.Database
		}
		return a.User < b.User
	})
	return out
}

// Close closes idle server connections. Sessions end on their own when
// the wire server shuts them down.
func (r *Router) Close() {
	r.poolsMu.Lock()
	ps := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		ps = append(ps, p)
	}
	r.poolsMu.Unlock()
	for _, p := range ps {
		p.closeIdle()
	}
}

// planCacheSize bounds the plan cache (raw-text aliases included).
const planCacheSize = 10000

func cancelKey(pid, secret uint32) uint64 { return uint64(pid)<<32 | uint64(secret) }

func (r *Router) register(s *session) error {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("cancel key: %w", err)
	}
	s.secret = binary.BigEndian.Uint32(b[:])
	r.sessionsMu.Lock()
	defer r.sessionsMu.Unlock()
	for {
		// The counter wraps after 4M sessions; skip a key still in use.
		s.pid = r.issuePID()
		if _, taken := r.sessions[cancelKey(s.pid, s.secret)]; !taken {
			break
		}
	}
	r.sessions[cancelKey(s.pid, s.secret)] = s
	return nil
}

func (r *Router) unregister(s *session) {
	r.sessionsMu.Lock()
	delete(r.sessions, cancelKey(s.pid, s.secret))
	r.sessionsMu.Unlock()
}

// Cancel forwards a client's CancelRequest to the server connection that
// runs the client's query at this moment. The session lock is held while
// the cancel is delivered, so the connection cannot change hands meanwhile
// and a late cancel never reaches another client's query.
func (r *Router) Cancel(ctx context.Context, pid, secret uint32) {
	if h := r.cfg.Hooks.BeforeCancelLookup; h != nil {
		h()
	}
	forwarded := false
	defer func() {
		if h := r.cfg.Hooks.AfterCancel; h != nil {
			h(forwarded)
		}
	}()
	r.sessionsMu.RLock()
	s := r.sessions[cancelKey(pid, secret)]
	r.sessionsMu.RUnlock()
	if s == nil {
		forwarded = r.forwardCancel(ctx, pid, secret)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.busy {
		return
	}
	if s.pipe != nil {
		if err := s.pipe.cancel(ctx, s.pipeReq); err != nil {
			r.log.Warn("forwarding cancel request failed", "server", s.pipe.sc.Addr, "err", err)
			return
		}
		forwarded = true
		return
	}
	// A statement running on several shards is cancelled on each.
	for _, sc := range s.participants() {
		if err := sc.Cancel(ctx); err != nil {
			r.log.Warn("forwarding cancel request failed", "server", sc.Addr, "err", err)
			continue
		}
		forwarded = true
	}
}
