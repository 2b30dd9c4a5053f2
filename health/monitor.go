package health

// The polling loop: every Interval, probe every backend of the current map
// concurrently, then publish what was found as one immutable snapshot that
// the router's hot path reads without locks (pick.go). Everything mutable
// about a backend's polling belongs to the round in progress; only the
// router's counters are shared, and those are atomics.

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Monitor polls backends and answers which replica may serve a read. Its
// methods are safe for concurrent use.
type Monitor struct {
	cfg Config
	log *slog.Logger

	snap atomic.Pointer[snapshot]
	// gen orders MarkDown calls against the start of rounds: a mark is
	// cleared only by a successful poll of a round that began after it.
	gen atomic.Uint64

	// sem holds one token: whoever has it runs a round and owns backends
	// and their polling fields. A channel rather than a mutex so that
	// PollNow can give up when its context ends.
	sem      chan struct{}
	backends map[string]*backend // by address
}

// backend is one server, kept across rounds (and map versions) while its
// address stays in the map, so its connection and counters survive.
type backend struct {
	addr string

	// Shared with the router.
	outstanding atomic.Int64
	served      [2]atomic.Uint64 // by Role.index()
	markedAt    atomic.Uint64    // gen of an uncleared MarkDown; 0 if none
	end         func()           // Begin's result, made once: Begin allocates nothing

	// Owned by the round in progress.
	conn     Querier
	ok       bool      // the last poll succeeded
	last     sample    // the last successful poll's
	polledAt time.Time // of last
	err      error     // the last poll's
	// current and timeline are the last seen out of recovery: a primary's
	// reference position for its replicas' lag, kept while it is down
	// (a primary that answers nobody writes nothing either).
	current     LSN
	timeline    uint32
	seenCurrent bool
	reportedTL  uint32 // timeline last passed to OnPromoted; 0 if none since recovery
	state       State  // last published, to log changes only
}

func newBackend(addr string) *backend {
	b := &backend{addr: addr, state: StateUnknown}
	b.end = func() { b.outstanding.Add(-1) }
	return b
}

// New returns a Monitor that knows nothing yet: PickReplica says no until
// the first round (Run's first, or PollNow) is over.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Monitor{
		cfg:      cfg,
		log:      cfg.Logger,
		sem:      make(chan struct{}, 1),
		backends: map[string]*backend{},
	}
	m.sem <- struct{}{}
	m.snap.Store(&snapshot{})
	return m, nil
}

// Run polls now and then every Interval until ctx ends, then closes the
// monitor's connections and returns ctx's error.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	defer m.Close()
	for {
		m.PollNow(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PollNow runs one round now, after any round in progress, and returns
// when its results are published (or ctx has ended). Start-up uses it to
// know the replicas before serving, tests to settle without waiting.
func (m *Monitor) PollNow(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	select {
	case <-m.sem:
	case <-ctx.Done():
		return
	}
	defer func() { m.sem <- struct{}{} }()
	m.round(ctx)
}

// Close closes the monitor's connections (Run does when it returns). A
// later round opens them again.
func (m *Monitor) Close() {
	<-m.sem
	defer func() { m.sem <- struct{}{} }()
	for _, b := range m.backends {
		m.closeConn(b)
	}
}

// member is one backend's place in the map a round polls.
type member struct {
	shard string
	role  Role
	b     *backend
}

// promotion is an OnPromoted call decided by a round.
type promotion struct {
	shard, addr string
	timeline    uint32
}

// round polls every backend of the current map once and publishes the
// result. The caller holds sem.
func (m *Monitor) round(ctx context.Context) {
	members := m.members()
	start := m.gen.Add(1)
	var wg sync.WaitGroup
	polled := map[*backend]bool{}
	for _, mb := range members {
		b := mb.b
		if polled[b] {
			continue // one address listed twice is polled once
		}
		polled[b] = true
		wg.Go(func() {
			s, err := m.poll(ctx, b)
			m.record(b, s, err, start)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Shutting down: the failures are ours, not the backends'.
		return
	}
	snap, promotions := m.build(members)
	m.snap.Store(snap)
	for _, p := range promotions {
		m.log.Warn("health: replica promoted", "shard", p.shard, "addr", p.addr, "timeline", p.timeline)
		if m.cfg.OnPromoted != nil {
			m.cfg.OnPromoted(p.shard, p.addr, p.timeline)
		}
	}
}

// members lists the current map's backends, creating the new ones and
// dropping (and disconnecting) those no longer in it.
func (m *Monitor) members() []member {
	mp := m.cfg.Map()
	var out []member
	keep := map[string]bool{}
	add := func(shard string, role Role, addr string) {
		if addr == "" {
			return
		}
		b := m.backends[addr]
		if b == nil {
			b = newBackend(addr)
			m.backends[addr] = b
		}
		keep[addr] = true
		out = append(out, member{shard: shard, role: role, b: b})
	}
	if mp != nil {
		for _, sh := range mp.Shards {
			add(sh.ID, RolePrimary, sh.Primary)
			for _, r := range sh.Replicas {
				add(sh.ID, RoleReplica, r)
			}
		}
	}
	for addr, b := range m.backends {
		if !keep[addr] {
			m.closeConn(b)
			delete(m.backends, addr)
		}
	}
	return out
}

// record keeps a poll's outcome in b. Each backend is recorded by one
// goroutine of the round.
func (m *Monitor) record(b *backend, s sample, err error, start uint64) {
	b.ok, b.err = err == nil, err
	if err != nil {
		return
	}
	b.last, b.polledAt = s, time.Now()
	if !s.inRecovery {
		b.current, b.timeline, b.seenCurrent = s.lsn, s.timeline, true
	}
	// A MarkDown made before this round began is answered by this poll;
	// one made while it ran may have seen a failure the poll missed.
	for {
		at := b.markedAt.Load()
		if at == 0 || at > start || b.markedAt.CompareAndSwap(at, 0) {
			break
		}
	}
}

// errInRecovery is a primary's error when it answers as a standby.
var errInRecovery = errors.New("in recovery: not acting as a primary")

// build makes the snapshot of a finished round and decides which
// promotions to report. The caller holds sem.
func (m *Monitor) build(members []member) (*snapshot, []promotion) {
	snap := &snapshot{
		shards: map[string]*shardView{},
		addrs:  make(map[string]addrView, len(members)),
		status: make([]BackendStatus, 0, len(members)),
	}
	var promotions []promotion
	// Primaries first: their positions are the replicas' reference.
	for _, mb := range members {
		if mb.role != RolePrimary || snap.shards[mb.shard] != nil {
			continue
		}
		b := mb.b
		sv := &shardView{primaryDown: !b.ok || b.last.inRecovery}
		if b.seenCurrent {
			sv.primaryLSN, sv.primaryTL = b.current, b.timeline
		}
		snap.shards[mb.shard] = sv
		st := m.status(mb)
		st.LagBytes, st.CurrentLSN = 0, sv.primaryLSN
		switch {
		case !b.ok:
			st.State = StateDown
		case b.last.inRecovery:
			st.State, st.LastError = StateDown, errInRecovery.Error()
		default:
			st.State = StateUp
		}
		m.publish(snap, mb, st)
	}
	for _, mb := range members {
		if mb.role != RoleReplica {
			continue
		}
		b := mb.b
		sv := snap.shards[mb.shard]
		if sv == nil { // a shard without a primary address
			sv = &shardView{primaryDown: true}
			snap.shards[mb.shard] = sv
		}
		st := m.status(mb)
		eligible := false
		switch {
		case !b.ok:
			st.State = StateDown
		case !b.last.inRecovery:
			st.State = StatePromoted
			if (b.last.timeline > sv.primaryTL || sv.primaryDown) && b.reportedTL != b.last.timeline {
				b.reportedTL = b.last.timeline
				promotions = append(promotions, promotion{mb.shard, b.addr, b.last.timeline})
			}
		case sv.primaryLSN == 0:
			st.State = StateUnknown
		default:
			st.ReplayLSN, st.CurrentLSN = b.last.lsn, sv.primaryLSN
			st.LagBytes = lagBytes(sv.primaryLSN, b.last.lsn)
			st.State = StateUp
			if st.LagBytes > m.cfg.MaxLagBytes {
				st.State = StateLagging
			}
			eligible = st.State == StateUp
		}
		if b.ok && b.last.inRecovery {
			b.reportedTL = 0
			st.ReplayLSN = b.last.lsn
		}
		if _, dup := snap.addrs[b.addr]; !dup {
			sv.replicas = append(sv.replicas, candidate{b: b, replay: b.last.lsn, eligible: eligible})
		}
		m.publish(snap, mb, st)
	}
	return snap, promotions
}

// status starts a backend's status with what does not depend on its
// state.
func (m *Monitor) status(mb member) BackendStatus {
	b := mb.b
	st := BackendStatus{Shard: mb.shard, Addr: b.addr, Role: mb.role, LagBytes: -1, PolledAt: b.polledAt}
	if b.err != nil {
		st.LastError = b.err.Error()
	}
	if b.ok {
		st.Timeline = b.last.timeline
		if !b.last.inRecovery {
			st.CurrentLSN = b.last.lsn
		}
	}
	return st
}

// publish adds a backend's status to the snapshot and logs a change of
// state.
func (m *Monitor) publish(snap *snapshot, mb member, st BackendStatus) {
	if _, dup := snap.addrs[mb.b.addr]; !dup {
		snap.addrs[mb.b.addr] = addrView{b: mb.b, role: mb.role.index()}
	}
	snap.status = append(snap.status, st)
	if st.State == mb.b.state {
		return
	}
	level := slog.LevelInfo
	if st.State == StateDown {
		level = slog.LevelWarn
	}
	m.log.Log(context.Background(), level, "health: backend state changed",
		"shard", st.Shard, "addr", st.Addr, "role", st.Role, "from", mb.b.state, "to", st.State,
		"lag_bytes", st.LagBytes, "err", st.LastError)
	mb.b.state = st.State
}
