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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardproxy/shardproxy/config"
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
	// ranges in shard order.
	m, err := metadata.NewMap(1, shards)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.Tables {
		m.Tables = append(m.Tables, metadata.Table{Schema: t.Schema, Name: t.Name, Key: t.Key, Reference: t.Reference})
	}
	coordinator, err := newCoordinator(cfg, opts.TwoPhaseHooks, log)
	if err != nil {
		return nil, err
	}
	rt, err := router.New(router.Config{
		Coordinator:            coordinator,
		Mode:                   router.PoolMode(cfg.Pool.Mode),
		PoolSize:               cfg.Pool.Size,
		PoolWaitTimeout:        cfg.Pool.WaitTimeout,
		ServerIdleTimeout:      cfg.Pool.ServerIdleTimeout,
		ServerLifetime:         cfg.Pool.ServerLifetime,
		PreparedPerServer:      cfg.Pool.PreparedStatementsPerServer,
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
	}, rt)
	if err != nil {
		return nil, err
	}
	rec, err := twopc.NewRecoverer(twopc.RecovererConfig{
		Coordinator: coordinator,
		Shards:      recoveryShards(cfg, rt.Map),
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, log: log, router: rt, wire: ws, recoverer: rec, serveErr: make(chan error, 2)}, nil
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
	go func() {
		if err := n.wire.Serve(ln); err != nil {
			n.serveErr <- err
		}
	}()
	// In-doubt transactions a crash left behind are settled now and then
	// periodically (a shard that was down at start-up is retried).
	// With one shard nothing is ever prepared, and recovery would only
	// take a connection of the users' own.
	if len(n.router.Map().Shards) > 1 {
		rctx, cancel := context.WithCancel(context.Background())
		n.stopRecovery, n.recoveryDone = cancel, make(chan struct{})
		go func() {
			defer close(n.recoveryDone)
			_ = n.recoverer.Run(rctx)
		}()
	}
	n.readyMu.Lock()
	n.ready = true
	n.readyMu.Unlock()
	n.log.Info("shardproxy node listening", "addr", ln.Addr().String(), "http", n.HTTPAddr())
	return nil
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
		n.readyMu.Unlock()
		err = n.wire.Shutdown(ctx)
		if n.stopRecovery != nil {
			n.stopRecovery()
			<-n.recoveryDone
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

func (n *Node) httpHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	reg.MustRegister(newPoolCollector(n.router), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shardproxy_client_connections", Help: "Client connections, including those logging in.",
	}, func() float64 { return float64(n.wire.ActiveClients()) }))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
