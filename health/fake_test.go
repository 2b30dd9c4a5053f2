package health_test

// A fake set of servers behind the Querier interface: each answers the
// probe from a few fields the test sets, and can be down, hung or
// restarted (which breaks the connections made before).

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/metadata"
)

type fakeServer struct {
	mu         sync.Mutex
	down       bool // refuses connections and fails queries
	hang       bool // blocks until the caller's deadline
	inRecovery bool
	lsn        health.LSN // replay position in recovery, else current
	timeline   uint32
	epoch      int // bumped by restart: older connections fail
	connects   int
	open       int // connections not closed
}

func (s *fakeServer) set(f func(s *fakeServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

type fakeCluster struct {
	mu      sync.Mutex
	servers map[string]*fakeServer
	m       *metadata.Map
}

// newFake makes a cluster of shards "s1".. with primary "sN" on timeline
// 1 at LSN 0/1000000 and replicas "sNrM" replaying at the same position.
func newFake(t testing.TB, shards, replicas int) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{servers: map[string]*fakeServer{}}
	var ms []metadata.Shard
	for i := 1; i <= shards; i++ {
		id := "s" + strconv.Itoa(i)
		sh := metadata.Shard{ID: id, Primary: id}
		fc.servers[id] = &fakeServer{lsn: 0x1000000, timeline: 1}
		for j := 1; j <= replicas; j++ {
			r := id + "r" + strconv.Itoa(j)
			sh.Replicas = append(sh.Replicas, r)
			fc.servers[r] = &fakeServer{inRecovery: true, lsn: 0x1000000, timeline: 1}
		}
		ms = append(ms, sh)
	}
	m, err := metadata.NewMap(1, ms)
	if err != nil {
		t.Fatal(err)
	}
	fc.m = m
	return fc
}

func (fc *fakeCluster) server(addr string) *fakeServer {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.servers[addr]
}

func (fc *fakeCluster) setMap(m *metadata.Map) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.m = m
}

func (fc *fakeCluster) Map() *metadata.Map {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.m
}

var errRefused = errors.New("connection refused")

func (fc *fakeCluster) Connect(ctx context.Context, addr string) (health.Querier, error) {
	s := fc.server(addr)
	if s == nil {
		return nil, errRefused
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connects++
	if s.down {
		return nil, errRefused
	}
	s.open++
	return &fakeConn{s: s, epoch: s.epoch}, nil
}

type fakeConn struct {
	s      *fakeServer
	epoch  int
	closed bool
}

func (c *fakeConn) QueryRow(ctx context.Context, sql string) ([]string, error) {
	c.s.mu.Lock()
	hang := c.s.hang
	c.s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.closed {
		return nil, errors.New("query on a closed connection")
	}
	if c.s.down || c.epoch != c.s.epoch {
		return nil, errors.New("server closed the connection unexpectedly")
	}
	rec := "f"
	if c.s.inRecovery {
		rec = "t"
	}
	return []string{rec, c.s.lsn.String(), strconv.FormatUint(uint64(c.s.timeline), 10)}, nil
}

func (c *fakeConn) Close(context.Context) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.s.open--
	}
	return nil
}

// promotions records OnPromoted calls.
type promotions struct {
	mu    sync.Mutex
	calls []string
}

func (p *promotions) add(shard, addr string, tl uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, shard+" "+addr+" "+strconv.Itoa(int(tl)))
}

func (p *promotions) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// newMonitor returns a monitor over fc with a 64 KiB lag bound and a long
// interval (tests poll with PollNow).
func newMonitor(t *testing.T, fc *fakeCluster, p *promotions) *health.Monitor {
	t.Helper()
	cfg := health.Config{
		Interval:    time.Hour,
		MaxLagBytes: 64 << 10,
		Connect:     fc.Connect,
		Map:         fc.Map,
	}
	if p != nil {
		cfg.OnPromoted = p.add
	}
	m, err := health.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func status(t *testing.T, m *health.Monitor, addr string) health.BackendStatus {
	t.Helper()
	for _, st := range m.Backends() {
		if st.Addr == addr {
			return st
		}
	}
	t.Fatalf("no status for %s in %+v", addr, m.Backends())
	return health.BackendStatus{}
}
