package metadata

// The Store runs the shard map's Raft group on this node: it opens the
// log and snapshots under the data directory, joins or bootstraps the
// cluster, and shuts down so the cluster barely notices. Its methods
// (store_ops.go) are what the rest of the proxy uses; the background duties
// of a leader, and map notification, are in store_watch.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Peer is a voter of a new cluster. Addr is host:port; a DNS name (a
// Kubernetes pod's stable name) is resolved again at every connection.
type Peer struct {
	ID, Addr string
}

// ServerInfo is one member of the Raft configuration.
type ServerInfo struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

// StoreConfig configures OpenStore.
type StoreConfig struct {
	// NodeID names this node in Raft and in the node directory.
	NodeID string
	// Bind is where Raft listens (host:port).
	Bind string
	// Advertise is the address other nodes reach this one at; default
	// Bind. It must resolve to a concrete IP when the store opens.
	Advertise string
	// Peers are the voters of a new cluster, this node included; empty
	// means this node alone.
	Peers []Peer
	// Bootstrap makes this node create the cluster (with Peers as voters)
	// when it has no Raft state. Exactly one node of a new cluster sets
	// it; the others wait to be contacted. A node with Raft state never
	// bootstraps again.
	Bootstrap bool
	// DataDir holds the Raft log (raft-wal, in "wal") and snapshots.
	DataDir string
	// Seed is the map the leader proposes while the cluster has none
	// (from configuration). It loses to any map already in the log.
	Seed *Map
	// Self is this node's directory entry (ID defaults to NodeID,
	// RaftAddr to Advertise). The leader registers itself; a follower's
	// entry is registered by Join, or by ForwardToLeader.
	Self NodeInfo
	// ForwardToLeader, when set, is how a follower hands its own
	// directory entry to the leader (the admin API's forwarding). Without
	// it a follower's entry is written by Join or when it leads.
	ForwardToLeader func(ctx context.Context, leader NodeInfo, c Command) error
	// Logger receives Raft's warnings and errors; nil discards them.
	Logger *slog.Logger

	// Transport replaces the TCP transport (tests: raft.NewInmemTransport).
	Transport raft.Transport
	// Tuning overrides Raft's timing and snapshot policy (tests).
	Tuning RaftTuning
}

// RaftTuning overrides Raft's timing and snapshot policy; zero fields keep
// the defaults.
type RaftTuning struct {
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	// SnapshotThreshold is how many new entries trigger a snapshot
	// (default 1024); SnapshotInterval how often that is checked
	// (default 2m); TrailingLogs how many entries stay after one
	// (default 10240), so a briefly absent follower catches up from the
	// log rather than a whole snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// LogSegmentBytes sizes the Raft log's segment files (default 8
	// MiB). Compaction removes whole segments, so entries of the segment
	// being written stay readable: tests that need a follower to catch up
	// from a snapshot make segments small.
	LogSegmentBytes int
}

// ErrClosed is returned by a store that has been shut down.
var ErrClosed = errors.New("metadata: the store is shut down")

// Store is this node's member of the Raft group that keeps the shard map.
type Store struct {
	cfg  StoreConfig
	log  *slog.Logger
	self NodeInfo

	fsm      *FSM
	raft     *raft.Raft
	rlog     *raftLog
	logs     raft.LogStore
	observer *raft.Observer

	// ctx ends when Shutdown starts; the background goroutines in wg
	// watch it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	subsMu     sync.Mutex
	subs       map[uint64]chan *Map
	nextSub    uint64
	subsClosed bool

	changedMu sync.Mutex
	changed   chan struct{} // closed (and replaced) on any state or leadership change

	// openedAt and openedAtIndex are when the store opened and the last
	// log index it held then: what "caught up" is measured from.
	openedAt      time.Time
	openedAtIndex uint64

	shutdownOnce sync.Once
	shutdownErr  error
}

const (
	snapshotsRetained = 2
	transportTimeout  = 10 * time.Second
	transportMaxPool  = 3
)

func (c *StoreConfig) withDefaults() (StoreConfig, error) {
	cfg := *c
	if cfg.NodeID == "" {
		return cfg, errors.New("metadata: StoreConfig.NodeID is required")
	}
	if cfg.DataDir == "" {
		return cfg, errors.New("metadata: StoreConfig.DataDir is required")
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Bind
	}
	if cfg.Transport == nil && cfg.Bind == "" {
		return cfg, errors.New("metadata: StoreConfig.Bind is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Self.ID == "" {
		cfg.Self.ID = cfg.NodeID
	}
	if cfg.Self.ID != cfg.NodeID {
		return cfg, fmt.Errorf("metadata: Self.ID %q is not NodeID %q", cfg.Self.ID, cfg.NodeID)
	}
	if cfg.Self.RaftAddr == "" {
		cfg.Self.RaftAddr = cfg.Advertise
		if cfg.Transport != nil {
			cfg.Self.RaftAddr = string(cfg.Transport.LocalAddr())
		}
	}
	seen := map[string]bool{}
	for _, p := range cfg.Peers {
		if p.ID == "" || seen[p.ID] {
			return cfg, fmt.Errorf("metadata: peer id %q is empty or listed twice", p.ID)
		}
		seen[p.ID] = true
		if p.Addr == "" && p.ID != cfg.NodeID {
			return cfg, fmt.Errorf("metadata: peer %q has no address", p.ID)
		}
	}
	if len(cfg.Peers) > 0 && !seen[cfg.NodeID] {
		return cfg, fmt.Errorf("metadata: the peers list does not include this node (%q)", cfg.NodeID)
	}
	return cfg, nil
}

// raftConfig is raft's configuration with this store's defaults: raft's
// own timing, a snapshot every 1024 entries.
func (c *StoreConfig) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.Logger = newHCLogAdapter(c.Logger, "raft")
	rc.SnapshotThreshold = 1024
	// Commands proposed back to back (ApplyAll, many sessions' commit
	// decisions) wait in a buffer for the leader loop, which takes them all
	// into one log write, instead of each waiting for the write before it.
	rc.BatchApplyCh = true
	t := c.Tuning
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&rc.HeartbeatTimeout, t.HeartbeatTimeout)
	set(&rc.ElectionTimeout, t.ElectionTimeout)
	set(&rc.LeaderLeaseTimeout, t.LeaderLeaseTimeout)
	set(&rc.SnapshotInterval, t.SnapshotInterval)
	if t.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = t.SnapshotThreshold
	}
	if t.TrailingLogs > 0 {
		rc.TrailingLogs = t.TrailingLogs
	}
	return rc
}

// OpenStore opens (or creates) this node's Raft state under cfg.DataDir and
// joins the cluster: it resumes from existing state, bootstraps a new
// cluster when cfg.Bootstrap says so and there is none, or else waits to be
// contacted. It returns without waiting for a leader (WaitForLeader,
// WaitForMap). ctx bounds the start-up (resolving the advertised name,
// which in Kubernetes may take a moment to appear in DNS).
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Seed != nil {
		// Refuse a seed the state machine would refuse, now rather than
		// in a warning every second from the leader.
		if _, err := (&state{}).apply(0, Command{Type: CmdSeed, Seed: cfg.Seed}); err != nil {
			return nil, fmt.Errorf("metadata: the seed map: %w", err)
		}
	}
	rc := cfg.raftConfig()
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("metadata: raft configuration: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata: data directory: %w", err)
	}
	transport := cfg.Transport
	if transport == nil {
		advertise, err := resolveAdvertise(ctx, cfg.Advertise)
		if err != nil {
			return nil, err
		}
		t, err := raft.NewTCPTransportWithLogger(cfg.Bind, advertise, transportMaxPool, transportTimeout, newHCLogAdapter(cfg.Logger, "raft-net"))
		if err != nil {
			return nil, fmt.Errorf("metadata: raft listen on %s (advertised %s): %w", cfg.Bind, advertise, err)
		}
		transport = t
	}
	closeTransport := func() {
		if c, ok := transport.(raft.WithClose); ok {
			_ = c.Close()
		}
	}
	rlog, err := openRaftLog(ctx, cfg.DataDir, cfg.Tuning.LogSegmentBytes, cfg.Logger)
	if err != nil {
		closeTransport()
		return nil, err
	}
	fail := func(err error) (*Store, error) {
		closeTransport()
		_ = rlog.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, newHCLogAdapter(cfg.Logger, "raft-snapshots"))
	if err != nil {
		return fail(fmt.Errorf("metadata: snapshot store: %w", err))
	}
	logs, err := raft.NewLogCache(512, rlog)
	if err != nil {
		return fail(fmt.Errorf("metadata: log cache: %w", err))
	}
	hasState, err := raft.HasExistingState(logs, rlog, snaps)
	if err != nil {
		return fail(fmt.Errorf("metadata: reading raft state: %w", err))
	}

	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		self:    cfg.Self,
		fsm:     NewFSM(),
		rlog:    rlog,
		logs:    logs,
		subs:    map[uint64]chan *Map{},
		changed: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fsm.onChange = s.onStateChange
	s.fsm.onApplied = s.signalChange
	// NewRaft restores the latest snapshot into the FSM before it returns.
	r, err := raft.NewRaft(rc, s.fsm, logs, rlog, snaps, transport)
	if err != nil {
		s.cancel()
		return fail(fmt.Errorf("metadata: starting raft: %w", err))
	}
	s.raft = r
	s.openedAt, s.openedAtIndex = time.Now(), r.LastIndex()
	observations := make(chan raft.Observation, 16)
	s.observer = raft.NewObserver(observations, false, nil)
	r.RegisterObserver(s.observer)

	switch {
	case hasState:
		s.log.Info("metadata: resuming raft state", "node", cfg.NodeID, "dir", cfg.DataDir)
	case cfg.Bootstrap:
		servers := s.bootstrapServers(transport)
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			_ = s.Shutdown(context.Background())
			return nil, fmt.Errorf("metadata: bootstrapping the cluster: %w", err)
		}
		s.log.Info("metadata: bootstrapped a new cluster", "node", cfg.NodeID, "voters", len(servers))
	case len(cfg.Peers) <= 1:
		s.log.Warn("metadata: a single node without raft state and without bootstrap waits until a leader adds it", "node", cfg.NodeID)
	default:
		s.log.Info("metadata: no raft state; waiting to be contacted by the cluster's leader", "node", cfg.NodeID)
	}

	s.wg.Add(2)
	go s.watchObservations(observations)
	go s.runDuties(r.LeaderCh())
	return s, nil
}

// bootstrapServers is the first configuration: the peers as written (DNS
// names stay names), or this node alone.
func (s *Store) bootstrapServers(transport raft.Transport) []raft.Server {
	self := raft.ServerAddress(s.cfg.Advertise)
	if s.cfg.Transport != nil {
		self = transport.LocalAddr()
	}
	if len(s.cfg.Peers) == 0 {
		return []raft.Server{{ID: raft.ServerID(s.cfg.NodeID), Address: self, Suffrage: raft.Voter}}
	}
	var servers []raft.Server
	for _, p := range s.cfg.Peers {
		addr := raft.ServerAddress(p.Addr)
		if p.ID == s.cfg.NodeID && addr == "" {
			addr = self
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: addr, Suffrage: raft.Voter})
	}
	return servers
}

// resolveAdvertise turns the advertised host:port into the IP raft's TCP
// transport wants. A pod's own DNS name can appear a little after the pod
// starts, so a failed lookup is retried until ctx ends.
func resolveAdvertise(ctx context.Context, advertise string) (*net.TCPAddr, error) {
	retry := time.NewTicker(500 * time.Millisecond)
	defer retry.Stop()
	for {
		addr, err := net.ResolveTCPAddr("tcp", advertise)
		if err == nil {
			if addr.IP == nil || addr.IP.IsUnspecified() {
				return nil, fmt.Errorf("metadata: raft advertise address %q is not an address other nodes can reach; set it", advertise)
			}
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metadata: resolving raft advertise address %q: %w", advertise, err)
		case <-retry.C:
		}
	}
}

// Shutdown leaves the cluster gracefully: a leader first hands leadership
// to a caught-up follower (so the others do not wait out an election
// timeout), then raft stops and the log is closed. Subscribers' channels
// are closed. ctx bounds the leadership transfer; raft is shut down even
// when it expires. Calling Shutdown again returns the first result.
func (s *Store) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Store) shutdown(ctx context.Context) error {
	s.cancel()
	s.wg.Wait()
	if s.raft.State() == raft.Leader && s.hasOtherVoters() {
		if err := waitFuture(ctx, s.raft.LeadershipTransfer()); err != nil {
			s.log.Warn("metadata: leadership transfer before shutdown failed; the cluster will elect after a timeout", "err", err)
		}
	}
	s.raft.DeregisterObserver(s.observer)
	var errs []error
	if err := s.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("metadata: raft shutdown: %w", err))
	}
	if err := s.rlog.Close(); err != nil {
		errs = append(errs, fmt.Errorf("metadata: closing the raft log: %w", err))
	}
	s.subsMu.Lock()
	s.subsClosed = true
	for id, ch := range s.subs {
		close(ch)
		delete(s.subs, id)
	}
	s.subsMu.Unlock()
	s.signalChange()
	return errors.Join(errs...)
}

func (s *Store) hasOtherVoters() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != s.cfg.NodeID {
			return true
		}
	}
	return false
}
