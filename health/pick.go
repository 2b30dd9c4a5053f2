package health

// The router's side: which replica serves a read, and the accounting
// around it. PickReplica runs for every read-only statement, so it reads
// one atomically published, immutable snapshot and a few atomic counters,
// takes no lock and allocates nothing.

import (
	"math"
	"slices"
	"sync/atomic"
)

// snapshot is what one round found. Nothing in it changes after it is
// published except the atomics it points to.
type snapshot struct {
	shards map[string]*shardView
	addrs  map[string]addrView
	status []BackendStatus // in map order; counters filled in by Backends
}

type shardView struct {
	primaryLSN  LSN // the primary's last current position; 0 if never seen
	primaryTL   uint32
	primaryDown bool
	replicas    []candidate // in map order
	rr          atomic.Uint32
}

type candidate struct {
	b        *backend
	replay   LSN
	eligible bool // up, in recovery, within the lag bound at the round
}

type addrView struct {
	b    *backend
	role int // Role.index() in the map of the round
}

// PickReplica returns an eligible replica of the shard: up and in recovery
// at the last round, not marked down since, at most MaxLagBytes behind the
// primary, and with a replay position of at least minLSN (0 for a session
// without a read-your-writes position). Among those it takes the one with
// the fewest outstanding queries, rotating among equals. ok is false when
// none qualifies: the primary serves.
func (m *Monitor) PickReplica(shardID string, minLSN LSN) (addr string, ok bool) {
	sv := m.snap.Load().shards[shardID]
	if sv == nil || len(sv.replicas) == 0 {
		return "", false
	}
	n := len(sv.replicas)
	first := 0
	if n > 1 {
		first = int(sv.rr.Add(1) % uint32(n))
	}
	var best *backend
	bestOut := int64(math.MaxInt64)
	for i := range n {
		c := &sv.replicas[(first+i)%n]
		if !c.eligible || c.replay < minLSN || c.b.markedAt.Load() != 0 {
			continue
		}
		// Strictly fewer: among equals the first in rotated order wins, so
		// equals take turns.
		if out := c.b.outstanding.Load(); out < bestOut {
			best, bestOut = c.b, out
		}
	}
	if best == nil {
		return "", false
	}
	return best.addr, true
}

// Begin counts a query outstanding on addr, for PickReplica's balancing
// and the query counters, until end is called (exactly once).
func (m *Monitor) Begin(addr string) (end func()) {
	v, ok := m.snap.Load().addrs[addr]
	if !ok {
		return noop
	}
	v.b.outstanding.Add(1)
	v.b.served[v.role].Add(1)
	return v.b.end
}

func noop() {}

// MarkDown takes addr out of PickReplica's choices until a poll that
// begins after this call succeeds: the router saw a connection to it fail,
// which the monitor may not see for up to an interval.
func (m *Monitor) MarkDown(addr string) {
	v, ok := m.snap.Load().addrs[addr]
	if !ok {
		return
	}
	if v.b.markedAt.Swap(m.gen.Add(1)) == 0 {
		m.log.Info("health: backend marked down by the router", "addr", addr)
	}
}

// PrimaryLSN returns the last current WAL position seen on the shard's
// primary, 0 if none.
func (m *Monitor) PrimaryLSN(shardID string) LSN {
	if sv := m.snap.Load().shards[shardID]; sv != nil {
		return sv.primaryLSN
	}
	return 0
}

// Backends returns every backend of the map as of the last round, in map
// order, with live query counters and marks.
func (m *Monitor) Backends() []BackendStatus {
	snap := m.snap.Load()
	out := slices.Clone(snap.status)
	for i := range out {
		st := &out[i]
		v := snap.addrs[st.Addr]
		st.Queries = v.b.served[st.Role.index()].Load()
		st.Outstanding = v.b.outstanding.Load()
		if v.b.markedAt.Load() != 0 && (st.State == StateUp || st.State == StateLagging) {
			st.State, st.LastError = StateDown, "marked down by the router until the next successful poll"
		}
	}
	return out
}
