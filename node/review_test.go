package node

// Review tests: each demonstrates one bug found in review. They need no
// PostgreSQL: backends are fake listeners or fake health queriers.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/loopback"
	"github.com/shardproxy/shardproxy/metadata"
)

// reviewConfig is a single-node configuration (Raft on an in-memory
// transport) with the given shards.
func reviewConfig(t *testing.T, dataDir string, shards ...config.Shard) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = ""
	cfg.DataDir = dataDir
	cfg.Users = []config.User{{Name: "app", Password: "app", BackendUser: "app", BackendPassword: "app"}}
	cfg.Shards = shards
	return cfg
}

func shutdownNode(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Shutdown(ctx)
}

// Bug: a node shut down before it ever got a map (no quorum, a joiner
// nobody contacted) never closes its client listener. startServing, the
// only place that hands ln to wire.Serve, never ran, and wire.Shutdown
// only closes listeners Serve registered. The port stays bound (a restart
// on it fails) and clients connecting are accepted by the kernel into the
// backlog and then hang forever instead of being refused.
func TestReviewShutdownBeforeFirstMapLeaksClientListener(t *testing.T) {
	raftAddr := freeTCPAddr(t)
	cfg := reviewConfig(t, t.TempDir(), config.Shard{ID: "s1", Primary: "127.0.0.1:1"})
	cfg.NodeID = "n1"
	cfg.AdminToken = "review-token"
	// Two other voters that do not exist, and no bootstrap: this node
	// waits to be contacted and never gets a map.
	cfg.Raft = config.Raft{Listen: raftAddr, Peers: []string{
		"n1@" + raftAddr, "n2@" + freeTCPAddr(t), "n3@" + freeTCPAddr(t)}}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	addr := n.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := n.WaitReady(ctx); err == nil {
		cancel()
		t.Fatal("a node with no bootstrap and no reachable peers got a map")
	}
	cancel()
	shutdownNode(t, n)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after Shutdown the client port %s is still bound: %v", addr, err)
	}
	ln.Close()
}

// Bug: OnPromoted is edge-triggered in the monitor (backend.reportedTL is
// set whatever the callback did), and the node's callback drops the event
// when this node does not lead at that instant. A promotion first seen
// while the node is not the leader (here: the first health round, which
// runs before the node has won its election; in a fleet: every
// follower's monitor, then the leader dies) is never reported again, so
// no CmdSetPrimary is ever proposed and writes keep going to the old
// primary.
func TestReviewPromotionSeenBeforeLeadingIsNeverApplied(t *testing.T) {
	const primary, replica = "127.0.0.1:1", "127.0.0.1:2"
	cfg := reviewConfig(t, t.TempDir(), config.Shard{ID: "s1", Primary: primary, Replicas: []string{replica}})
	cfg.Routing.HealthInterval = 50 * time.Millisecond
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.New(health.Config{
		Interval:    cfg.Routing.HealthInterval,
		MaxLagBytes: cfg.Routing.MaxReplicaLag,
		Map:         func() *metadata.Map { return n.router.Map() },
		Connect: func(ctx context.Context, addr string) (health.Querier, error) {
			if addr == primary {
				return nil, errors.New("primary is down")
			}
			return promotedReplica{}, nil
		},
		// Reported while the node may not lead yet: the leader's
		// reconciliation must act on it all the same.
		OnPromoted: func(shardID, addr string, tl uint32) { n.onPromoted(shardID, addr, tl) },
	})
	if err != nil {
		t.Fatal(err)
	}
	n.monitor = mon
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if m := n.store.Map(); m != nil && m.Shards[0].Primary == replica {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the replica %s reports promotion (timeline 2, primary down) every round, but the map's primary is still %s: "+
		"the promotion was seen before this node led and never again", replica, n.store.Map().Shards[0].Primary)
}

type promotedReplica struct{}

func (promotedReplica) QueryRow(context.Context, string) ([]string, error) {
	return []string{"f", "0/3000000", "2"}, nil
}
func (promotedReplica) Close(context.Context) error { return nil }

// Bug: two-phase-commit recovery reads the shard list from the router's
// map (recoveryShards(cfg, rt.Map)), not from the store it has just made
// complete with a barrier. In startServing, recoverOnce runs on the
// followMap goroutine, which is therefore not following: on a restart the
// router holds the first map Raft replay published (the seed), so
// recovery lists, commits, rolls back and forgets decisions on shards and
// primaries the committed map no longer has (here s2 moved from an old
// host to a new one with set-hosts before the restart).
func TestReviewRecoveryAfterRestartUsesStaleMap(t *testing.T) {
	s1, oldS2, newS2 := newFakeBackend(t), newFakeBackend(t), newFakeBackend(t)
	dir := t.TempDir()
	cfg := reviewConfig(t, dir,
		config.Shard{ID: "s1", Primary: s1.addr()},
		config.Shard{ID: "s2", Primary: oldS2.addr()})
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.Apply(ctx, metadata.Command{Type: metadata.CmdSetHosts,
		Shard: &metadata.Shard{ID: "s2", Primary: newS2.addr()}}); err != nil {
		t.Fatal(err)
	}
	shutdownNode(t, n)
	time.Sleep(200 * time.Millisecond) // late connections of the first run
	oldS2.reset()

	// Restart with the same configuration file (the map in Raft wins).
	n2, err := New(reviewConfig(t, dir,
		config.Shard{ID: "s1", Primary: s1.addr()},
		config.Shard{ID: "s2", Primary: oldS2.addr()}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNode(t, n2)
	if err := n2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n2.store.Map().Shards[1].Primary; got != newS2.addr() {
		t.Fatalf("store map lost the set-hosts: s2 primary %s", got)
	}
	time.Sleep(300 * time.Millisecond)
	if c := oldS2.count(); c > 0 {
		t.Fatalf("after the restart, recovery connected %d times to %s, which the committed map no longer has as s2's primary (it is %s)",
			c, oldS2.addr(), newS2.addr())
	}
}

// fakeBackend accepts connections, counts those that send a startup
// message, and closes them.
type fakeBackend struct {
	ln net.Listener
	mu sync.Mutex
	n  int
}

func newFakeBackend(t *testing.T) *fakeBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				if binary.BigEndian.Uint32(hdr[4:]) == 80877103 { // SSLRequest
					_, _ = c.Write([]byte{'N'})
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
				}
				f.mu.Lock()
				f.n++
				f.mu.Unlock()
			}()
		}
	}()
	return f
}

func (f *fakeBackend) addr() string { return f.ln.Addr().String() }
func (f *fakeBackend) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}
func (f *fakeBackend) reset() {
	f.mu.Lock()
	f.n = 0
	f.mu.Unlock()
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Bug: the HTTP listener serves from before the Raft store opens (health
// and metrics), but the internal and admin endpoints used the store
// unguarded: a forwarded command or an admin call in that window
// dereferenced a nil store. They answer 503 until it is open.
func TestReviewHTTPBeforeStoreOpens(t *testing.T) {
	cfg := reviewConfig(t, t.TempDir(), config.Shard{ID: "s1", Primary: "127.0.0.1:1"})
	cfg.AdminToken = "review-token"
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := n.httpHandler()
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, internalApplyPath, `{"type":12,"gid":"g"}`, http.StatusServiceUnavailable},
		{http.MethodPost, internalJoinPath, `{"id":"n2"}`, http.StatusServiceUnavailable},
		{http.MethodGet, admin.PathPrefix + "status", "", http.StatusServiceUnavailable},
		{http.MethodGet, "/healthz", "", http.StatusOK},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer review-token")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s before the store opened: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body.String(), tc.want)
		}
	}
}
