package metadata_test

// The Store with real Raft: three stores in this process on loopback TCP,
// each with its own data directory, stopped and restarted as a node would
// be. Waits are on conditions with deadlines, never on fixed sleeps.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/loopback"
	"github.com/shardproxy/shardproxy/metadata"
)

// testTuning makes elections quick on loopback but keeps the heartbeat
// timeout well above what -race on two cores can stall for.
var testTuning = metadata.RaftTuning{
	HeartbeatTimeout:   500 * time.Millisecond,
	ElectionTimeout:    500 * time.Millisecond,
	LeaderLeaseTimeout: 250 * time.Millisecond,
}

// testLogger sends warnings (raft's included) to t.Log, shown only when the
// test fails, and drops what arrives after the test ended.
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// freePort is a loopback address nothing listens on right now (below the
// ephemeral range: the stores restart on it).
func freePort(t *testing.T) string {
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// eventually waits until cond holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		<-tick.C
	}
}

func testSeed(t *testing.T) *metadata.Map {
	m, err := metadata.NewMap(0, []metadata.Shard{
		{ID: "s1", Primary: "127.0.0.1:15432", Replicas: []string{"127.0.0.1:15433"}},
		{ID: "s2", Primary: "127.0.0.1:15442"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Tables = []metadata.Table{{Schema: "public", Name: "accounts", Key: "id"}}
	return m
}

// cluster is a set of nodes whose stores can be stopped and reopened from
// their data directories.
type cluster struct {
	t       *testing.T
	configs []metadata.StoreConfig
	stores  []*metadata.Store // nil while stopped
	// running is stores by node id, for ForwardToLeader, which runs on
	// the stores' goroutines.
	running sync.Map
}

// forward stands in for the admin API: a follower's command is applied by
// the leader it names.
func (c *cluster) forward(ctx context.Context, leader metadata.NodeInfo, cmd metadata.Command) error {
	s, ok := c.running.Load(leader.ID)
	if !ok {
		return fmt.Errorf("leader %s is not running", leader.ID)
	}
	_, err := s.(*metadata.Store).Apply(ctx, cmd)
	return err
}

func newCluster(t *testing.T, n int, tuning metadata.RaftTuning) *cluster {
	c := &cluster{t: t, stores: make([]*metadata.Store, n)}
	var peers []metadata.Peer
	for i := range n {
		peers = append(peers, metadata.Peer{ID: fmt.Sprint("n", i+1), Addr: freePort(t)})
	}
	logger := testLogger(t)
	for i, p := range peers {
		c.configs = append(c.configs, metadata.StoreConfig{
			NodeID:    p.ID,
			Bind:      p.Addr,
			Peers:     peers,
			Bootstrap: i == 0,
			DataDir:   filepath.Join(t.TempDir(), p.ID),
			Seed:      testSeed(t),
			Self:      metadata.NodeInfo{PGAddr: fmt.Sprint("127.0.0.1:64", 30+i), HTTPAddr: fmt.Sprint("127.0.0.1:91", 80+i)},
			Logger:    logger,
			Tuning:    tuning,

			ForwardToLeader: c.forward,
		})
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.stores {
			if c.stores[i] != nil {
				c.stop(i)
			}
		}
	})
	return c
}

func (c *cluster) start(i int) *metadata.Store {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := metadata.OpenStore(ctx, c.configs[i])
	if err != nil {
		c.t.Fatalf("open %s: %v", c.configs[i].NodeID, err)
	}
	c.stores[i] = s
	c.running.Store(c.configs[i].NodeID, s)
	return s
}

func (c *cluster) stop(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.running.Delete(c.configs[i].NodeID)
	if err := c.stores[i].Shutdown(ctx); err != nil {
		c.t.Errorf("shutdown %s: %v", c.configs[i].NodeID, err)
	}
	c.stores[i] = nil
}

// leader waits until exactly one running store leads and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	found := -1
	eventually(c.t, 10*time.Second, "no single leader", func() bool {
		found = -1
		for i, s := range c.stores {
			if s != nil && s.IsLeader() {
				if found >= 0 {
					return false
				}
				found = i
			}
		}
		return found >= 0
	})
	return found
}

// waitVersion waits until every running store's map has reached version.
func (c *cluster) waitVersion(within time.Duration, version uint64) {
	c.t.Helper()
	for i, s := range c.stores {
		if s == nil {
			continue
		}
		eventually(c.t, within, fmt.Sprintf("%s has not applied map version %d", c.configs[i].NodeID, version), func() bool {
			m := s.Map()
			return m != nil && m.Version >= version
		})
	}
}

func (c *cluster) apply(cmd metadata.Command) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	index, err := c.stores[c.leader()].Apply(ctx, cmd)
	if err != nil {
		c.t.Fatalf("apply %v: %v", cmd.Type, err)
	}
	return index
}

func TestStoreCluster(t *testing.T) {
	c := newCluster(t, 3, testTuning)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The steps build on each other, so they are not subtests: the first
	// failure ends the test.
	step := func(name string, f func()) {
		t.Logf("step: %s", name)
		f()
	}
	var seedVersion uint64

	step("bootstrap elects a leader and seeds once", func() {
		for _, s := range c.stores {
			if err := s.WaitForLeader(ctx); err != nil {
				t.Fatal(err)
			}
		}
		c.leader()
		for i, s := range c.stores {
			m, err := s.WaitForMap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if seedVersion == 0 {
				seedVersion = m.Version
			}
			if m.Version != seedVersion || len(m.Ranges) != 2 || len(m.Tables) != 1 {
				t.Fatalf("%s: map %+v, want the seed at version %d", c.configs[i].NodeID, m, seedVersion)
			}
		}
		// A second seed (another node's configuration, a restart) loses.
		other := testSeed(t)
		other.Shards = other.Shards[:1]
		other.Ranges = nil
		c.apply(metadata.Command{Type: metadata.CmdSeed, Seed: other})
		for _, s := range c.stores {
			if v := s.Map().Version; v != seedVersion {
				t.Fatalf("a second seed changed the map to version %d", v)
			}
		}
	})

	step("a split on the leader is visible on all within a second", func() {
		index := c.apply(metadata.Command{Type: metadata.CmdSplitRange, At: -1000})
		c.waitVersion(time.Second, index)
		for _, s := range c.stores {
			if m := s.Map(); m.Version != index || len(m.Ranges) != 3 {
				t.Fatalf("map version %d with %d ranges, want version %d with 3", m.Version, len(m.Ranges), index)
			}
		}
	})

	step("followers answer ErrNotLeader naming the leader", func() {
		l := c.leader()
		eventually(t, 5*time.Second, "leader not in every directory", func() bool {
			for _, s := range c.stores {
				if s.Leader().PGAddr != c.configs[l].Self.PGAddr {
					return false
				}
			}
			return true
		})
		for i, s := range c.stores {
			if i == l {
				continue
			}
			_, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: 5})
			var notLeader *metadata.ErrNotLeader
			if !errors.As(err, &notLeader) {
				t.Fatalf("follower Apply = %v, want *ErrNotLeader", err)
			}
			want := c.configs[l]
			if got := notLeader.Leader; got.ID != want.NodeID || got.HTTPAddr != want.Self.HTTPAddr || got.RaftAddr != want.Bind {
				t.Fatalf("ErrNotLeader names %+v, want %s", got, want.NodeID)
			}
			results, err := s.ApplyAll(ctx, []metadata.Command{{Type: metadata.CmdDecideCommit, GID: "g"}})
			if !errors.As(err, &notLeader) || results != nil {
				t.Fatalf("follower ApplyAll = %v, %v, want *ErrNotLeader and no results", results, err)
			}
		}
	})

	step("rejections, decisions and the directory reach every node", func() {
		l := c.stores[c.leader()]
		index, err := l.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: -1000})
		if !errors.Is(err, metadata.ErrRejected) || index == 0 {
			t.Fatalf("split at a boundary = %d, %v; want ErrRejected", index, err)
		}
		c.apply(metadata.Command{Type: metadata.CmdDecideCommit, GID: "gid-1"})
		for _, s := range c.stores {
			eventually(t, time.Second, "decision not replicated", func() bool { return s.Decided("gid-1") })
			// Followers register through ForwardToLeader, retried each
			// second.
			eventually(t, 3*time.Second, "directory incomplete", func() bool { return len(s.Nodes()) == 3 })
		}
		servers, err := l.Servers()
		if err != nil {
			t.Fatal(err)
		}
		leaders, voters := 0, 0
		for _, srv := range servers {
			if srv.Leader {
				leaders++
			}
			if srv.Voter {
				voters++
			}
		}
		if len(servers) != 3 || leaders != 1 || voters != 3 {
			t.Fatalf("servers %+v", servers)
		}
	})

	step("a stopped follower restarts from its data directory and catches up", func() {
		f := (c.leader() + 1) % 3
		c.stop(f)
		index := c.apply(metadata.Command{Type: metadata.CmdSplitRange, At: 1000})
		c.start(f)
		c.waitVersion(5*time.Second, index)
	})

	step("a leader's shutdown hands leadership over at once", func() {
		old := c.leader()
		c.stop(old)
		stopped := time.Now()
		// Without a transfer, no follower would even start an election
		// before its heartbeat timeout had passed.
		eventually(t, testTuning.HeartbeatTimeout*3/4, "no new leader soon after the leader's shutdown", func() bool {
			for _, s := range c.stores {
				if s != nil && s.IsLeader() {
					return true
				}
			}
			return false
		})
		t.Logf("new leader %v after shutdown", time.Since(stopped))
		index := c.apply(metadata.Command{Type: metadata.CmdSplitRange, At: 2000})
		c.start(old)
		c.waitVersion(5*time.Second, index)
	})

	step("all three restarted keep the changed map", func() {
		want := c.stores[c.leader()].Map()
		for i := range c.stores {
			c.stop(i)
		}
		for i := range c.stores {
			c.start(i)
		}
		c.leader()
		for _, s := range c.stores {
			m, err := s.WaitForMap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != want.Version || owners(m) != owners(want) {
				t.Fatalf("after restart: version %d %s, want version %d %s", m.Version, owners(m), want.Version, owners(want))
			}
		}
	})
}

func TestStoreSnapshotAndRestore(t *testing.T) {
	tuning := testTuning
	tuning.SnapshotThreshold = 8
	tuning.TrailingLogs = 4
	tuning.SnapshotInterval = 50 * time.Millisecond
	tuning.LogSegmentBytes = 1024
	c := newCluster(t, 3, tuning)
	c.waitVersion(10*time.Second, 1)

	// A follower away while the leader compacts its log can only catch up
	// from a snapshot.
	f := (c.leader() + 1) % 3
	c.stop(f)
	var index uint64
	for i := range 40 {
		index = c.apply(metadata.Command{Type: metadata.CmdSplitRange, At: keyspace.ID(1_000_000 + i)})
	}
	leaderDir := c.configs[c.leader()].DataDir
	eventually(t, 10*time.Second, "the leader took no snapshot", func() bool {
		return countSnapshots(t, leaderDir) > 0
	})
	c.apply(metadata.Command{Type: metadata.CmdDecideCommit, GID: "after-snapshot"})

	s := c.start(f)
	c.waitVersion(10*time.Second, index)
	eventually(t, 5*time.Second, "decision after the snapshot not applied", func() bool { return s.Decided("after-snapshot") })
	if countSnapshots(t, c.configs[f].DataDir) == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	if got, want := owners(s.Map()), owners(c.stores[c.leader()].Map()); got != want {
		t.Fatalf("restored follower's map %s, want %s", got, want)
	}

	// A restarted node restores its own snapshot while it opens, before
	// any leader tells it which of its log entries are committed.
	c.stop(f)
	if s = c.start(f); s.Map() == nil {
		t.Fatal("a restarted node with a snapshot has no map until the leader contacts it")
	}
	c.waitVersion(5*time.Second, index)
}

func countSnapshots(t *testing.T, dataDir string) int {
	entries, err := os.ReadDir(filepath.Join(dataDir, "snapshots"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && filepath.Ext(e.Name()) != ".tmp" {
			n++
		}
	}
	return n
}

func TestSingleNodeStore(t *testing.T) {
	_, transport := raft.NewInmemTransport("")
	s, err := metadata.OpenStore(context.Background(), metadata.StoreConfig{
		NodeID:    "solo",
		Bootstrap: true,
		DataDir:   t.TempDir(),
		Seed:      testSeed(t),
		Logger:    testLogger(t),
		Transport: transport,
		Tuning:    testTuning,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	updates, unsubscribe := s.Subscribe()
	defer unsubscribe()
	first := <-updates
	if first == nil || first.Version == 0 {
		t.Fatalf("first update %+v", first)
	}
	// Two changes before the reader looks: it sees only the newest.
	if _, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: 10}); err != nil {
		t.Fatal(err)
	}
	last, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: 20})
	if err != nil {
		t.Fatal(err)
	}
	if m := <-updates; m.Version != last {
		t.Fatalf("update version %d, want the latest %d", m.Version, last)
	}
	if got := s.Leader(); got.ID != "solo" || got.RaftAddr == "" {
		t.Fatalf("Leader() = %+v", got)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, open := <-updates; open {
		t.Fatal("subscription still open after Shutdown")
	}
	if _, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: 30}); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Apply after Shutdown = %v", err)
	}
	if _, err := s.WaitForMap(ctx); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("WaitForMap after Shutdown = %v", err)
	}
}

// ApplyAll gives each command its own outcome, in order, as Apply would.
func TestStoreApplyAll(t *testing.T) {
	_, transport := raft.NewInmemTransport("")
	s, err := metadata.OpenStore(context.Background(), metadata.StoreConfig{
		NodeID: "solo", Bootstrap: true, DataDir: t.TempDir(), Seed: testSeed(t),
		Logger: testLogger(t), Transport: transport, Tuning: testTuning,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer s.Shutdown(ctx)
	if _, err := s.WaitForMap(ctx); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		cmd          metadata.Command
		wantRejected bool
	}{
		{metadata.Command{Type: metadata.CmdDecideCommit, GID: "g1"}, false},
		{metadata.Command{Type: metadata.CmdDecideCommit, GID: "g2"}, false},
		{metadata.Command{Type: metadata.CmdDecisionDone}, true}, // no gid
		{metadata.Command{Type: metadata.CmdDecisionDone, GID: "g1"}, false},
		{metadata.Command{Type: metadata.CmdDecideAbort, GID: "g2"}, true}, // g2 commits
		{metadata.Command{Type: metadata.CmdDecideAbort, GID: "g3"}, false},
	}
	cmds := make([]metadata.Command, len(steps))
	for i, st := range steps {
		cmds[i] = st.cmd
	}
	results, err := s.ApplyAll(ctx, cmds)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(steps) {
		t.Fatalf("%d results for %d commands", len(results), len(steps))
	}
	for i, st := range steps {
		if rejected := errors.Is(results[i], metadata.ErrRejected); rejected != st.wantRejected || (!rejected && results[i] != nil) {
			t.Errorf("command %d (%s %q): result %v, want rejected=%t", i, st.cmd.Type, st.cmd.GID, results[i], st.wantRejected)
		}
	}
	if got := s.PendingDecisions(); len(got) != 1 || got[0] != "g2" {
		t.Errorf("pending decisions %v, want [g2]", got)
	}
	if results, err := s.ApplyAll(ctx, nil); err != nil || len(results) != 0 {
		t.Errorf("ApplyAll(nil) = %v, %v", results, err)
	}
}
