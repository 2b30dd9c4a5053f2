package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/twopc"
	"github.com/shardproxy/shardproxy/wire"
)

// Node is a running shardproxy node.
type Node struct {
	cfg    *config.Config
	log    *slog.Logger
	router *router.Router
	wire   *wire.Server

	ln     net.Listener
	httpLn net.Listener
	http   *http.Server

	recoverer    *twopc.Recoverer
	stopRecovery context.CancelFunc
	recoveryDone chan struct{}

	// decisionsDone forgets finished two-phase commits (decisions.go).
	decisionsDone     *doneBatcher
	stopDecisionsDone context.CancelFunc
	decisionsDoneExit chan struct{}

	// The Raft member keeping the map; seed is the configuration's map
	// for a new cluster. mapReady closes when the first map is in force.
	store      *metadata.Store
	storeOpen  atomic.Bool // set once store is; readers outside Start check it first
	seed       *metadata.Map
	mapReady   chan struct{}
	httpClient *http.Client
	stopWatch  func()
	stopJoin   context.CancelFunc
	version    string
	admin      *admin.Server
	monitor    *health.Monitor
	stopHealth context.CancelFunc
	healthDone chan struct{}

	// lifetime ends when Shutdown starts (waits for the first map end).
	lifetime    context.Context
	endLifetime context.CancelFunc
	closing     bool // under readyMu

	serveErr chan error
	once     sync.Once
	ready    bool
	readyMu  sync.Mutex
}

// Options are the parts tests replace.
type Options struct {
	Logger *slog.Logger
	Hooks  router.Hooks
	// TwoPhaseHooks stop two-phase commit at its crash points (fault
	// injection in tests).
	TwoPhaseHooks twopc.Hooks
	// TwoPhaseResolveTimeout replaces twopc's ResolveTimeout (30 s), so
	// tests of a shard that hangs need not wait that long.
	TwoPhaseResolveTimeout time.Duration
	// Version is what SHOW VERSION reports ("dev" when unset).
	Version string
}

// New builds a node; Start opens its listeners.
func New(cfg *config.Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	users := map[string]wire.UserAuth{}
	backends := map[string]router.Credentials{}
	for _, u := range cfg.Users {
		ua := wire.UserAuth{Trust: u.Trust, Admin: u.Admin}
		if !u.Trust {
			v, err := wire.NewSCRAMVerifier(u.Password, rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", u.Name, err)
			}
			ua.Verifier = v
		}
		users[u.Name] = ua
		backends[u.Name] = router.Credentials{User: u.BackendUser, Password: u.BackendPassword}
	}
	var shards []metadata.Shard
	for _, s := range cfg.Shards {
		shards = append(shards, metadata.Shard{ID: s.ID, Primary: s.Primary, Replicas: s.Replicas})
	}
	// With N shards and no stored map, the keyspace starts as N equal
	// ranges in shard order. This seeds the Raft log of a new cluster;
	// the node routes with the map from Raft (version 0 until then).
	m, err := metadata.NewMap(0, shards)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.Tables {
		m.Tables = append(m.Tables, metadata.Table{Schema: t.Schema, Name: t.Name, Key: t.Key, Reference: t.Reference})
	}
	lifetime, endLifetime := context.WithCancel(context.Background())
	ver := opts.Version
	if ver == "" {
		ver = "dev"
	}
	n := &Node{cfg: cfg, log: log, seed: m, serveErr: make(chan error, 2), version: ver,
		lifetime: lifetime, endLifetime: endLifetime,
		httpClient: &http.Client{Timeout: 30 * time.Second}, mapReady: make(chan struct{})}
	n.decisionsDone = newDoneBatcher(n)
	coordinator, err := twopc.NewCoordinator(twopc.Config{NodeID: cfg.NodeID, Log: raftDecisions{n}, Logger: log,
		Hooks: opts.TwoPhaseHooks, ForeignAfter: foreignAfter, ResolveTimeout: opts.TwoPhaseResolveTimeout})
	if err != nil {
		return nil, err
	}
	mon, err := newMonitor(cfg, n)
	if err != nil {
		return nil, err
	}
	n.monitor = mon
	var picker router.ReplicaPicker
	if configHasReplicas(cfg) {
		picker = replicaPicker{mon}
	}
	rt, err := router.New(router.Config{
		Replicas:               picker,
		ReadYourWrites:         cfg.Routing.ReadYourWrites,
		Coordinator:            coordinator,
		NodeID:                 cfg.NodeID,
		Peers:                  n.peers,
		Mode:                   router.PoolMode(cfg.Pool.Mode),
		PoolSize:               cfg.Pool.Size,
		PoolWaitTimeout:        cfg.Pool.WaitTimeout,
		ServerIdleTimeout:      cfg.Pool.ServerIdleTimeout,
		ServerLifetime:         cfg.Pool.ServerLifetime,
		PreparedPerServer:      cfg.Pool.PreparedStatementsPerServer,
		LiteralParameters:      cfg.Pool.LiteralParameters,
		EagerBegin:             !cfg.Pool.DeferBegin,
		PipelineConnections:    cfg.Pool.PipelineConnections,
		PlanCacheMode:          cfg.Pool.PlanCacheMode,
		IdleTransactionTimeout: cfg.Limits.IdleTransactionTimeout,
		QueryTimeout:           cfg.Limits.QueryTimeout,
		MaxMergeBuffer:         cfg.Limits.MaxMergeBuffer,
		BackendTLSMode:         cfg.BackendTLS.Mode,
		BackendTLSCA:           cfg.BackendTLS.CA,
		KeepAlive:              cfg.Limits.TCPKeepalive,
		Backend: func(user string) (router.Credentials, bool) {
			c, ok := backends[user]
			return c, ok
		},
		Map:    m,
		Hooks:  opts.Hooks,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ws, err := wire.NewServer(wire.Config{
		TLS:            tlsCfg,
		MaxMessageSize: int(cfg.Limits.MaxMessageSize),
		LoginTimeout:   cfg.Limits.ClientLoginTimeout,
		MaxClients:     cfg.Limits.MaxClientConnections,
		KeepAlive:      cfg.Limits.TCPKeepalive,
		LookupUser: func(name string) (wire.UserAuth, bool) {
			ua, ok := users[name]
			return ua, ok
		},
		Logger: log,
	}, handler{n})
	if err != nil {
		return nil, err
	}
	rec, err := twopc.NewRecoverer(twopc.RecovererConfig{
		Coordinator: coordinator,
		// The committed map (current after recoverOnce's barrier), not
		// the router's, which may not have caught up yet.
		Shards: recoveryShards(cfg, n.committedMap),
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	n.router, n.wire, n.recoverer = rt, ws, rec
	if cfg.AdminToken != "" {
		if n.admin, err = admin.NewServer(admin.Config{Token: cfg.AdminToken, Logger: log}, storeCluster{n}); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Start opens the listeners and serves in the background. A taken port is
// an error that names it.
func (n *Node) Start() error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another proxy, such as PgBouncer, using that port?)", n.cfg.Listen, err)
	}
	n.ln = ln
	if n.cfg.HTTPListen != "" {
		hl, err := net.Listen("tcp", n.cfg.HTTPListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (http_listen): %w", n.cfg.HTTPListen, err)
		}
		n.httpLn = hl
		n.http = &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := n.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErr <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	self := metadata.NodeInfo{ID: n.cfg.NodeID, PGAddr: n.reachable(ln.Addr().String()), HTTPAddr: n.reachable(n.HTTPAddr())}
	sc, err := storeConfig(n.cfg, n.seed, self, func(ctx context.Context, leader metadata.NodeInfo, c metadata.Command) error {
		_, err := n.forwardApply(ctx, leader, c)
		return err
	})
	if err == nil {
		sc.Logger = n.log
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n.store, err = metadata.OpenStore(ctx, sc)
		cancel()
	}
	if err != nil {
		_ = ln.Close()
		if n.http != nil {
			_ = n.http.Close()
		}
		return fmt.Errorf("raft: %w", err)
	}
	n.storeOpen.Store(true)
	dctx, stopDone := context.WithCancel(context.Background())
	n.stopDecisionsDone, n.decisionsDoneExit = stopDone, make(chan struct{})
	go func() {
		defer close(n.decisionsDoneExit)
		n.decisionsDone.run(dctx)
	}()
	if configHasReplicas(n.cfg) {
		// Replica health, polled from the start: reads find replicas as
		// soon as clients arrive.
		hctx, cancel := context.WithCancel(context.Background())
		n.stopHealth, n.healthDone = cancel, make(chan struct{})
		go func() {
			defer close(n.healthDone)
			go n.promotionLoop(hctx)
			_ = n.monitor.Run(hctx)
		}()
	}
	// Clients are accepted once the map from Raft is in force (until then
	// they wait in the listen backlog); from then on every new map version
	// is switched to as it is applied.
	if len(n.cfg.Raft.Join) > 0 {
		jctx, cancel := context.WithCancel(context.Background())
		n.stopJoin = cancel
		go n.joinCluster(jctx)
	}
	updates, stopWatch := n.store.Subscribe()
	n.stopWatch = stopWatch
	go n.followMap(updates, ln)
	// In-doubt transactions a crash left behind are settled by the leader
	// (the decisions it reads are then the committed ones), at start-up
	// and periodically.
	rctx, cancel := context.WithCancel(context.Background())
	n.stopRecovery, n.recoveryDone = cancel, make(chan struct{})
	go func() {
		defer close(n.recoveryDone)
		n.recoveryLoop(rctx)
	}()
	n.log.Info("shardproxy node listening", "addr", ln.Addr().String(), "http", n.HTTPAddr())
	return nil
}

// followMap switches the router to every new map version, and starts
// serving clients at the first.
func (n *Node) followMap(updates <-chan *metadata.Map, ln net.Listener) {
	// Serve only once this node has caught up with the log it holds (and
	// heard from a leader): a snapshot's map may be older than entries
	// already in the local log, such as a change of primary.
	if m, err := n.store.WaitForMap(n.lifetime); err == nil {
		n.router.SetMap(m)
		n.startServing(ln)
	}
	for m := range updates {
		n.log.Debug("new shard map", "version", m.Version, "shards", fmt.Sprint(m.Shards))
		n.router.SetMap(m)
	}
}

func (n *Node) startServing(ln net.Listener) {
	// A leader that just started (after a crash, most likely) settles the
	// transactions it left in doubt before it takes new ones: their locks
	// would block them, and prepared slots are few.
	ctx, cancel := context.WithTimeout(n.lifetime, 10*time.Second)
	n.recoverOnce(ctx)
	// Ready means reachable: other nodes find this one (status, cancel
	// forwarding) through the directory.
	for !n.ensureRegistered(ctx) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	if n.closing {
		return // Shutdown came first: serve nothing
	}
	go func() {
		if err := n.wire.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			n.serveErr <- err
		}
	}()
	n.ready = true
	close(n.mapReady)
}

// foreignAfter: recovery on the leader settles another node's prepared
// transactions once they are this old (their coordinator had its chance).
const foreignAfter = 10 * time.Second

// recoveryInterval is how often the leader looks for in-doubt
// transactions.
const recoveryInterval = 3 * time.Second

func (n *Node) recoveryLoop(ctx context.Context) {
	// Until the first pass has run, look often: a node that just started
	// (after a crash, most likely) settles what it left as soon as it
	// leads.
	wait := 50 * time.Millisecond
	for {
		n.ensureRegistered(ctx)
		if n.recoverOnce(ctx) {
			wait = recoveryInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// ensureRegistered puts this node's current addresses in the directory
// (through the leader), so status, the console and cancel forwarding can
// reach it.
func (n *Node) ensureRegistered(ctx context.Context) bool {
	self := n.selfInfo()
	for _, ni := range n.store.Nodes() {
		if ni.ID != self.ID {
			continue
		}
		if ni.PGAddr == self.PGAddr && ni.HTTPAddr == self.HTTPAddr {
			return true
		}
		if ni.RaftAddr != "" {
			// The store may have recorded the resolved address.
			self.RaftAddr = ni.RaftAddr
		}
	}
	if n.store.Leader().ID == "" {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.applyCommand(rctx, metadata.Command{Type: metadata.CmdRegisterNode, Node: self}); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("registering this node in the directory failed; retrying", "err", err)
		}
		return false
	}
	return true
}

// recoverOnce runs a recovery pass when this node leads; it reports
// whether a pass ran (or none was needed).
func (n *Node) recoverOnce(ctx context.Context) bool {
	if !n.store.IsLeader() {
		return false
	}
	m := n.router.Map()
	if m == nil {
		return false
	}
	if len(m.Shards) < 2 {
		return true // nothing is ever prepared
	}
	// An entry of its own first: everything committed before is then
	// applied here, so the decisions read are complete.
	if _, err := n.store.Apply(ctx, metadata.Command{Type: metadata.CmdRegisterNode, Node: n.selfInfo()}); err != nil {
		return false
	}
	if _, err := n.recoverer.RunOnce(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("two-phase-commit recovery pass incomplete; retrying", "err", err)
	}
	return true
}

func (n *Node) selfInfo() *metadata.NodeInfo {
	return &metadata.NodeInfo{ID: n.cfg.NodeID, RaftAddr: n.raftAddr(),
		PGAddr: n.reachable(n.Addr()), HTTPAddr: n.reachable(n.HTTPAddr())}
}

// reachable turns a wildcard listen address (0.0.0.0:9187, [::]:6432)
// into one other nodes can dial: the host of raft.advertise (a Kubernetes
// pod's stable name), else this machine's host name.
func (n *Node) reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || addr == "" {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return addr
	}
	if adv := n.cfg.Raft.Advertise; adv != "" {
		if h, _, err := net.SplitHostPort(adv); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return net.JoinHostPort(h, port)
	}
	return addr
}

func (n *Node) raftAddr() string {
	if n.cfg.Raft.Advertise != "" {
		return n.cfg.Raft.Advertise
	}
	if n.cfg.Raft.Listen != "" {
		return n.cfg.Raft.Listen
	}
	return n.cfg.NodeID
}

// committedMap is the map as the Raft log has it (the router's may lag
// behind while it catches up).
func (n *Node) committedMap() *metadata.Map {
	if n.store != nil {
		if m := n.store.Map(); m != nil {
			return m
		}
	}
	return n.router.Map()
}

// peers lists the cluster's nodes for cancel forwarding.
func (n *Node) peers() []metadata.NodeInfo {
	if !n.storeOpen.Load() {
		return nil
	}
	return n.store.Nodes()
}

// WaitReady waits until the node routes with a map from Raft.
func (n *Node) WaitReady(ctx context.Context) error {
	select {
	case <-n.mapReady:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Addr is the client listener's address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// HTTPAddr is the HTTP listener's address, "" without one.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Router exposes the router (pools, cancel) to tests and admin code.
func (n *Node) Router() *router.Router { return n.router }

// Err delivers a fatal serving error.
func (n *Node) Err() <-chan error { return n.serveErr }

// RecoverNow runs a two-phase-commit recovery pass and waits for it.
func (n *Node) RecoverNow(ctx context.Context) (twopc.Result, error) {
	return n.recoverer.RunOnce(ctx)
}

// Shutdown stops accepting, lets clients finish their transactions until
// ctx ends, then closes the rest with 57P01 and closes server connections.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.once.Do(func() {
		n.readyMu.Lock()
		n.ready = false
		n.closing = true
		n.readyMu.Unlock()
		if n.endLifetime != nil {
			n.endLifetime()
		}
		if n.ln != nil {
			// Before the first map nothing serves it; close it here.
			_ = n.ln.Close()
		}
		err = n.wire.Shutdown(ctx)
		if n.stopRecovery != nil {
			n.stopRecovery()
			<-n.recoveryDone
		}
		if n.stopDecisionsDone != nil {
			// Sessions and recovery are over: forget what they finished
			// while Raft still runs, but not at the cost of a slow stop
			// (without a leader each try waits; recovery forgets them too).
			n.stopDecisionsDone()
			<-n.decisionsDoneExit
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n.decisionsDone.flush(fctx)
			cancel()
		}
		if n.stopJoin != nil {
			n.stopJoin()
		}
		if n.stopHealth != nil {
			n.stopHealth()
			<-n.healthDone
		}
		if n.store != nil {
			n.stopWatch()
			// A leader hands leadership over before it goes.
			if serr := n.store.Shutdown(ctx); serr != nil && err == nil {
				err = serr
			}
		}
		n.router.Close()
		if n.http != nil {
			hctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = n.http.Shutdown(hctx)
			cancel()
		}
	})
	return err
}

// needsStore answers 503 until the Raft store is open. The HTTP listener
// serves health and metrics from the start, while opening the store can
// take a while; a handler reaching the store before then would find none.
func (n *Node) needsStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.storeOpen.Load() {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "starting: the cluster store is not open yet"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (n *Node) httpHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if configHasReplicas(n.cfg) {
		reg.MustRegister(n.monitor.Collector())
	}
	reg.MustRegister(newPoolCollector(n.router), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shardproxy_client_connections", Help: "Client connections, including those logging in.",
	}, func() float64 { return float64(n.wire.ActiveClients()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_twopc_decisions_pending",
			Help: "Distributed commits decided and not yet forgotten, cluster-wide (from the Raft state). Growing without end means recovery cannot reach a shard.",
		}, func() float64 {
			if !n.storeOpen.Load() {
				return 0
			}
			return float64(len(n.store.PendingDecisions()))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_twopc_dones_queued",
			Help: "Finished distributed commits of this node waiting to be forgotten in the next Raft write.",
		}, func() float64 { return float64(n.decisionsDone.queuedLen()) }))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("POST "+internalApplyPath, n.needsStore(http.HandlerFunc(n.handleInternalApply)))
	mux.Handle("POST "+internalJoinPath, n.needsStore(http.HandlerFunc(n.handleInternalJoin)))
	if n.admin != nil {
		mux.Handle(admin.PathPrefix, n.needsStore(n.admin))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		n.readyMu.Lock()
		ready := n.ready
		n.readyMu.Unlock()
		if !ready {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
