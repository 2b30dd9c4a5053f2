package health_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/metadata"
)

const maxLag = 64 << 10 // newMonitor's MaxLagBytes

func TestEligibility(t *testing.T) {
	const p = health.LSN(0x5_00000000)
	tests := []struct {
		name      string
		replica   func(s *fakeServer)
		primary   func(s *fakeServer)
		minLSN    health.LSN
		wantState health.State
		wantLag   int64
		wantPick  bool
	}{
		{name: "caught up", replica: func(s *fakeServer) { s.lsn = p },
			wantState: health.StateUp, wantLag: 0, wantPick: true},
		{name: "behind by the bound", replica: func(s *fakeServer) { s.lsn = p - maxLag },
			wantState: health.StateUp, wantLag: maxLag, wantPick: true},
		{name: "behind by one byte more", replica: func(s *fakeServer) { s.lsn = p - maxLag - 1 },
			wantState: health.StateLagging, wantLag: maxLag + 1},
		{name: "behind across a 4 GiB boundary", replica: func(s *fakeServer) { s.lsn = p - 0x10 },
			wantState: health.StateUp, wantLag: 0x10, wantPick: true},
		{name: "ahead of the sampled primary", replica: func(s *fakeServer) { s.lsn = p + 100 },
			wantState: health.StateUp, wantLag: 0, wantPick: true},
		{name: "replica down", replica: func(s *fakeServer) { s.lsn, s.down = p, true },
			wantState: health.StateDown, wantLag: -1},
		{name: "replica promoted", replica: func(s *fakeServer) { s.lsn, s.inRecovery, s.timeline = p, false, 2 },
			wantState: health.StatePromoted, wantLag: -1},
		{name: "primary never seen", replica: func(s *fakeServer) { s.lsn = p },
			primary:   func(s *fakeServer) { s.down = true },
			wantState: health.StateUnknown, wantLag: -1},
		{name: "session position reached", replica: func(s *fakeServer) { s.lsn = p - 10 }, minLSN: p - 10,
			wantState: health.StateUp, wantLag: 10, wantPick: true},
		{name: "session position not reached", replica: func(s *fakeServer) { s.lsn = p - 10 }, minLSN: p - 9,
			wantState: health.StateUp, wantLag: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFake(t, 1, 1)
			fc.server("s1").set(func(s *fakeServer) { s.lsn = p })
			if tt.primary != nil {
				fc.server("s1").set(tt.primary)
			}
			fc.server("s1r1").set(tt.replica)
			m := newMonitor(t, fc, nil)
			m.PollNow(context.Background())
			st := status(t, m, "s1r1")
			if st.State != tt.wantState || st.LagBytes != tt.wantLag {
				t.Errorf("state %s, lag %d; want %s, %d (%+v)", st.State, st.LagBytes, tt.wantState, tt.wantLag, st)
			}
			addr, ok := m.PickReplica("s1", tt.minLSN)
			if ok != tt.wantPick || (ok && addr != "s1r1") {
				t.Errorf("PickReplica = %q, %v; want ok=%v", addr, ok, tt.wantPick)
			}
		})
	}
}

func TestPickReplicaUnknownShardAndNoRound(t *testing.T) {
	fc := newFake(t, 1, 1)
	m := newMonitor(t, fc, nil)
	if _, ok := m.PickReplica("s1", 0); ok {
		t.Error("a replica picked before any round")
	}
	m.PollNow(context.Background())
	if _, ok := m.PickReplica("s9", 0); ok {
		t.Error("a replica picked for an unknown shard")
	}
	if got := m.PrimaryLSN("s1"); got != 0x1000000 {
		t.Errorf("PrimaryLSN = %s, want 0/1000000", got)
	}
	m.Begin("nowhere")() // an unknown address is not counted, and does not panic
	m.MarkDown("nowhere")
}

func TestPickReplicaBalancesOutstanding(t *testing.T) {
	fc := newFake(t, 1, 3)
	m := newMonitor(t, fc, nil)
	m.PollNow(context.Background())

	// Equals take turns.
	seen := map[string]int{}
	for range 30 {
		addr, ok := m.PickReplica("s1", 0)
		if !ok {
			t.Fatal("no replica picked")
		}
		seen[addr]++
	}
	if len(seen) != 3 || seen["s1r1"] != 10 || seen["s1r2"] != 10 || seen["s1r3"] != 10 {
		t.Errorf("picks among equals: %v, want 10 each", seen)
	}

	var ends []func()
	begin := func(addr string, n int) {
		for range n {
			ends = append(ends, m.Begin(addr))
		}
	}
	begin("s1r1", 2)
	begin("s1r2", 1)
	for range 5 {
		if addr, _ := m.PickReplica("s1", 0); addr != "s1r3" {
			t.Fatalf("picked %s, want s1r3, the only idle replica", addr)
		}
	}
	begin("s1r3", 2)
	if addr, _ := m.PickReplica("s1", 0); addr != "s1r2" {
		t.Fatalf("picked %s, want s1r2 (1 outstanding against 2 and 2)", addr)
	}
	for _, end := range ends {
		end()
	}
	for _, st := range m.Backends() {
		if st.Outstanding != 0 {
			t.Errorf("%s: %d outstanding after every end", st.Addr, st.Outstanding)
		}
	}
	if st := status(t, m, "s1r1"); st.Queries != 2 {
		t.Errorf("s1r1 served %d queries, want 2", st.Queries)
	}
}

func TestDownAndUpWithinOnePoll(t *testing.T) {
	fc := newFake(t, 1, 1)
	m := newMonitor(t, fc, nil)
	ctx := context.Background()
	r := fc.server("s1r1")
	steps := []struct {
		name     string
		change   func(s *fakeServer)
		want     health.State
		wantPick bool
	}{
		{"healthy", func(s *fakeServer) {}, health.StateUp, true},
		{"killed", func(s *fakeServer) { s.down = true }, health.StateDown, false},
		{"still down", func(s *fakeServer) {}, health.StateDown, false},
		{"started again", func(s *fakeServer) { s.down = false; s.epoch++ }, health.StateUp, true},
		{"restarted between polls", func(s *fakeServer) { s.epoch++ }, health.StateUp, true},
	}
	for _, step := range steps {
		r.set(step.change)
		m.PollNow(ctx)
		st := status(t, m, "s1r1")
		if st.State != step.want {
			t.Fatalf("%s: state %s, want %s (%+v)", step.name, st.State, step.want, st)
		}
		if (st.LastError != "") != (step.want == health.StateDown) {
			t.Errorf("%s: last error %q", step.name, st.LastError)
		}
		if _, ok := m.PickReplica("s1", 0); ok != step.wantPick {
			t.Errorf("%s: PickReplica ok=%v, want %v", step.name, ok, step.wantPick)
		}
	}
	r.set(func(s *fakeServer) {
		// Connects: the first; the kill's retry and the next round's
		// attempt, both refused; the start; the restart's retry. A healthy
		// connection is kept across rounds.
		if s.connects != 5 || s.open != 1 {
			t.Errorf("%d connects (%d open), want 5 (1 open)", s.connects, s.open)
		}
	})
}

func TestHungServerBoundedByInterval(t *testing.T) {
	fc := newFake(t, 1, 1)
	fc.server("s1r1").set(func(s *fakeServer) { s.hang = true })
	interval := 500 * time.Millisecond
	m, err := health.New(health.Config{Interval: interval, Connect: fc.Connect, Map: fc.Map})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	began := time.Now()
	m.PollNow(context.Background())
	if took := time.Since(began); took >= interval {
		t.Errorf("a round with a hung server took %v, not less than the interval %v", took, interval)
	}
	if st := status(t, m, "s1r1"); st.State != health.StateDown {
		t.Errorf("hung replica is %s, want down", st.State)
	}
	if st := status(t, m, "s1"); st.State != health.StateUp {
		t.Errorf("primary is %s, want up: one hung server does not hold up the others", st.State)
	}
}

func TestMarkDown(t *testing.T) {
	fc := newFake(t, 1, 2)
	m := newMonitor(t, fc, nil)
	ctx := context.Background()
	m.PollNow(ctx)
	m.MarkDown("s1r1")
	for range 4 {
		if addr, ok := m.PickReplica("s1", 0); !ok || addr != "s1r2" {
			t.Fatalf("picked %q, %v after s1r1 was marked down; want s1r2", addr, ok)
		}
	}
	if st := status(t, m, "s1r1"); st.State != health.StateDown {
		t.Errorf("marked replica shows as %s", st.State)
	}
	m.MarkDown("s1r2")
	if addr, ok := m.PickReplica("s1", 0); ok {
		t.Fatalf("picked %q with every replica marked down", addr)
	}
	// The next successful poll lifts the marks; a failed one does not.
	fc.server("s1r2").set(func(s *fakeServer) { s.down = true })
	m.PollNow(ctx)
	if addr, ok := m.PickReplica("s1", 0); !ok || addr != "s1r1" {
		t.Fatalf("picked %q, %v after a poll; want s1r1", addr, ok)
	}
	fc.server("s1r2").set(func(s *fakeServer) { s.down = false })
	m.PollNow(ctx)
	if st := status(t, m, "s1r2"); st.State != health.StateUp {
		t.Errorf("s1r2 is %s after a successful poll", st.State)
	}
}

func TestPromotion(t *testing.T) {
	fc := newFake(t, 1, 2)
	var p promotions
	m := newMonitor(t, fc, &p)
	ctx := context.Background()
	round := func(step string, change func(), want ...string) {
		t.Helper()
		if change != nil {
			change()
		}
		m.PollNow(ctx)
		if got := p.get(); !slices.Equal(got, want) {
			t.Fatalf("%s: OnPromoted calls %q, want %q", step, got, want)
		}
	}
	r1, r2, primary := fc.server("s1r1"), fc.server("s1r2"), fc.server("s1")
	round("healthy", nil)
	round("r1 promoted", func() { r1.set(func(s *fakeServer) { s.inRecovery, s.timeline = false, 2 }) },
		"s1 s1r1 2")
	round("r1 still promoted", nil, "s1 s1r1 2")
	if st := status(t, m, "s1r1"); st.State != health.StatePromoted || st.Timeline != 2 {
		t.Errorf("promoted replica: %+v", st)
	}
	if _, ok := m.PickReplica("s1", 0); !ok {
		t.Error("no replica picked: s1r2 is still eligible")
	}
	if addr, _ := m.PickReplica("s1", 0); addr == "s1r1" {
		t.Error("the promoted replica was picked for a read")
	}
	// Out of recovery on the primary's own timeline: a stray server, not
	// a promotion, while the primary answers.
	round("r2 out of recovery, same timeline", func() { r2.set(func(s *fakeServer) { s.inRecovery = false }) },
		"s1 s1r1 2")
	round("primary down", func() { primary.set(func(s *fakeServer) { s.down = true }) },
		"s1 s1r1 2", "s1 s1r2 1")
	round("r1 rebuilt as a standby", func() { r1.set(func(s *fakeServer) { s.inRecovery = true }) },
		"s1 s1r1 2", "s1 s1r2 1")
	round("r1 promoted again", func() { r1.set(func(s *fakeServer) { s.inRecovery, s.timeline = false, 3 }) },
		"s1 s1r1 2", "s1 s1r2 1", "s1 s1r1 3")
	// The map makes r1 the primary: nothing more to report about it.
	mp, err := metadata.NewMap(2, []metadata.Shard{{ID: "s1", Primary: "s1r1", Replicas: []string{"s1r2"}}})
	if err != nil {
		t.Fatal(err)
	}
	round("map changed", func() {
		fc.setMap(mp)
		r2.set(func(s *fakeServer) { s.inRecovery, s.lsn = true, 0x1000000 })
		r1.set(func(s *fakeServer) { s.lsn = 0x1000010 })
	}, "s1 s1r1 2", "s1 s1r2 1", "s1 s1r1 3")
	if st := status(t, m, "s1r1"); st.Role != health.RolePrimary || st.State != health.StateUp || st.Timeline != 3 {
		t.Errorf("new primary: %+v", st)
	}
	if st := status(t, m, "s1r2"); st.State != health.StateUp || st.LagBytes != 0x10 {
		t.Errorf("replica of the new primary: %+v", st)
	}
	primary.set(func(s *fakeServer) {
		if s.open != 0 {
			t.Errorf("the old primary, gone from the map, has %d connections open", s.open)
		}
	})
}

func TestPrimaryDownKeepsReference(t *testing.T) {
	fc := newFake(t, 1, 1)
	m := newMonitor(t, fc, nil)
	ctx := context.Background()
	m.PollNow(ctx)
	fc.server("s1").set(func(s *fakeServer) { s.down = true })
	fc.server("s1r1").set(func(s *fakeServer) { s.lsn = 0x1000000 - 100 })
	m.PollNow(ctx)
	if st := status(t, m, "s1"); st.State != health.StateDown {
		t.Errorf("primary is %s, want down", st.State)
	}
	if st := status(t, m, "s1r1"); st.State != health.StateUp || st.LagBytes != 100 || st.CurrentLSN != 0x1000000 {
		t.Errorf("replica measured against the primary's last position: %+v", st)
	}
	if got := m.PrimaryLSN("s1"); got != 0x1000000 {
		t.Errorf("PrimaryLSN = %s, want the last seen 0/1000000", got)
	}
}

func TestPrimaryInRecovery(t *testing.T) {
	fc := newFake(t, 1, 0)
	fc.server("s1").set(func(s *fakeServer) { s.inRecovery = true })
	m := newMonitor(t, fc, nil)
	m.PollNow(context.Background())
	if st := status(t, m, "s1"); st.State != health.StateDown || st.LastError == "" {
		t.Errorf("a primary in recovery: %+v", st)
	}
}

func TestLaggingReplicaRecovers(t *testing.T) {
	fc := newFake(t, 1, 1)
	m := newMonitor(t, fc, nil)
	ctx := context.Background()
	primary, r := fc.server("s1"), fc.server("s1r1")
	steps := []struct {
		name     string
		primary  health.LSN
		replay   health.LSN
		want     health.State
		wantPick bool
	}{
		{"caught up", 0x1000000, 0x1000000, health.StateUp, true},
		{"paused, primary writes 32 KiB", 0x1008000, 0x1000000, health.StateUp, true},
		{"paused, primary writes 1 MiB", 0x1100000, 0x1000000, health.StateLagging, false},
		{"resumed, half way", 0x1100000, 0x1080000, health.StateLagging, false},
		{"resumed, caught up", 0x1100000, 0x1100000, health.StateUp, true},
	}
	for _, step := range steps {
		primary.set(func(s *fakeServer) { s.lsn = step.primary })
		r.set(func(s *fakeServer) { s.lsn = step.replay })
		m.PollNow(ctx)
		st := status(t, m, "s1r1")
		if st.State != step.want || st.LagBytes != int64(step.primary-step.replay) || st.ReplayLSN != step.replay {
			t.Errorf("%s: %+v, want %s", step.name, st, step.want)
		}
		if _, ok := m.PickReplica("s1", 0); ok != step.wantPick {
			t.Errorf("%s: PickReplica ok=%v", step.name, ok)
		}
	}
}

func TestMapChangeAddsAndDropsBackends(t *testing.T) {
	fc := newFake(t, 1, 2)
	m := newMonitor(t, fc, nil)
	ctx := context.Background()
	m.PollNow(ctx)
	mp, err := metadata.NewMap(2, []metadata.Shard{{ID: "s1", Primary: "s1", Replicas: []string{"s1r2"}}})
	if err != nil {
		t.Fatal(err)
	}
	fc.setMap(mp)
	m.PollNow(ctx)
	var addrs []string
	for _, st := range m.Backends() {
		addrs = append(addrs, st.Addr)
	}
	if !slices.Equal(addrs, []string{"s1", "s1r2"}) {
		t.Errorf("backends %v after s1r1 left the map", addrs)
	}
	fc.server("s1r1").set(func(s *fakeServer) {
		if s.open != 0 {
			t.Errorf("s1r1 left the map with %d connections open", s.open)
		}
	})
	for range 4 {
		if addr, _ := m.PickReplica("s1", 0); addr != "s1r2" {
			t.Fatalf("picked %q", addr)
		}
	}
}

func TestNilMap(t *testing.T) {
	m, err := health.New(health.Config{
		Connect: func(context.Context, string) (health.Querier, error) { return nil, errors.New("unused") },
		Map:     func() *metadata.Map { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	m.PollNow(context.Background())
	if got := m.Backends(); len(got) != 0 {
		t.Errorf("backends without a map: %+v", got)
	}
}

func TestHotPathAllocations(t *testing.T) {
	fc := newFake(t, 2, 3)
	m := newMonitor(t, fc, nil)
	m.PollNow(context.Background())
	if n := testing.AllocsPerRun(1000, func() {
		addr, ok := m.PickReplica("s2", 0x1000000)
		if !ok {
			t.Fatal("no replica")
		}
		m.Begin(addr)()
	}); n != 0 {
		t.Errorf("PickReplica and Begin allocate %v times per read", n)
	}
}

func BenchmarkPickReplica(b *testing.B) {
	fc := newFake(b, 4, 3)
	m, err := health.New(health.Config{Connect: fc.Connect, Map: fc.Map})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.PollNow(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			addr, _ := m.PickReplica("s3", 0)
			m.Begin(addr)()
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	fc := newFake(t, 2, 2)
	m := newMonitor(t, fc, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if addr, ok := m.PickReplica("s1", 0); ok {
					end := m.Begin(addr)
					m.MarkDown(addr)
					end()
				}
				_ = m.Backends()
				_ = m.PrimaryLSN("s2")
			}
		})
	}
	for i := range 50 {
		fc.server("s1r1").set(func(s *fakeServer) { s.down = i%3 == 0; s.lsn += 1000 })
		m.PollNow(ctx)
	}
	cancel()
	wg.Wait()
	for _, st := range m.Backends() {
		if st.Outstanding != 0 {
			t.Errorf("%s: %d outstanding", st.Addr, st.Outstanding)
		}
	}
}

func TestRun(t *testing.T) {
	fc := newFake(t, 1, 1)
	m, err := health.New(health.Config{Interval: 10 * time.Millisecond, Connect: fc.Connect, Map: fc.Map})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitFor(t, "the replica picked", func() bool { _, ok := m.PickReplica("s1", 0); return ok })
	fc.server("s1r1").set(func(s *fakeServer) { s.down = true })
	waitFor(t, "the replica down", func() bool { return status(t, m, "s1r1").State == health.StateDown })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	fc.server("s1").set(func(s *fakeServer) {
		if s.open != 0 {
			t.Errorf("%d connections open after Run returned", s.open)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	conn := func(context.Context, string) (health.Querier, error) { return nil, nil }
	mp := func() *metadata.Map { return nil }
	tests := []struct {
		name string
		cfg  health.Config
		ok   bool
	}{
		{"minimal", health.Config{Connect: conn, Map: mp}, true},
		{"no Connect", health.Config{Map: mp}, false},
		{"no Map", health.Config{Connect: conn}, false},
		{"negative interval", health.Config{Connect: conn, Map: mp, Interval: -1}, false},
		{"negative lag", health.Config{Connect: conn, Map: mp, MaxLagBytes: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := health.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestDefaultMaxLag(t *testing.T) {
	fc := newFake(t, 1, 1)
	fc.server("s1").set(func(s *fakeServer) { s.lsn = 0x1000000 + health.DefaultMaxLagBytes })
	m, err := health.New(health.Config{Connect: fc.Connect, Map: fc.Map})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.PollNow(context.Background())
	if _, ok := m.PickReplica("s1", 0); !ok {
		t.Error("a replica exactly 1 MiB behind is not eligible under the default bound")
	}
	fc.server("s1").set(func(s *fakeServer) { s.lsn++ })
	m.PollNow(context.Background())
	if _, ok := m.PickReplica("s1", 0); ok {
		t.Error("a replica 1 MiB + 1 behind is eligible under the default bound")
	}
}

func TestCollector(t *testing.T) {
	fc := newFake(t, 1, 2)
	fc.server("s1r1").set(func(s *fakeServer) { s.lsn -= 500 })
	fc.server("s1r2").set(func(s *fakeServer) { s.down = true })
	m := newMonitor(t, fc, nil)
	m.PollNow(context.Background())
	m.Begin("s1r1")()
	m.Begin("s1r1")()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"shardproxy_backend_lag_bytes addr=s1r1 shard=s1":                  500,
		"shardproxy_backend_up addr=s1 role=primary shard=s1":              1,
		"shardproxy_backend_up addr=s1r1 role=replica shard=s1":            1,
		"shardproxy_backend_up addr=s1r2 role=replica shard=s1":            0,
		"shardproxy_backend_queries_total addr=s1 role=primary shard=s1":   0,
		"shardproxy_backend_queries_total addr=s1r1 role=replica shard=s1": 2,
		"shardproxy_backend_queries_total addr=s1r2 role=replica shard=s1": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("gathered %d series, want %d: %v", len(got), len(want), got)
	}
}
