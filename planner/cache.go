package planner

// The plan cache (DESIGN.md section 3): plans keyed by statement text,
// database, search_path and catalog version. A lookup tries the raw text
// first (an exact hit costs a hash and a compare, no lexing), then the text
// Normalize produces, and computes the plan only on a miss, once per key
// however many clients miss together. The cache is generic so the planner's
// plan type, and tests, can use it alike.
//
// Layout: a fixed number of shards, each a map from a 64-bit hash to a
// chain of entries behind a read-write lock, so hits on different keys
// rarely meet on one lock and a hit takes only the read side. Eviction is
// CLOCK (second chance) per shard: a hit sets the entry's reference bit (a
// load, and a store only when it was clear), insertion sweeps the ring and
// evicts the first entry whose bit is clear. An entry found by a lookup
// after its first insertion survives one full sweep more than one never
// found again, which is what keeps plans ahead of one-off raw texts.
//
// Raw-text entries ("aliases") hold the statement's literals as well as the
// value, so an exact hit can hand them out without lexing. An alias is added
// for the text whose miss computed the plan, and for a text without
// literals found by its normalized form; not for every normalized hit: a
// statement whose literal values change every time (pgbench's simple
// protocol) would fill the cache with texts never seen again.

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// CacheKey identifies a plan. Text is the statement text: raw when looking
// up, normalized in the entries computed from it.
type CacheKey struct {
	Database, SearchPath string
	// CatalogVersion changes when the schema the plans depend on changes;
	// entries for older versions are no longer found and age out.
	CatalogVersion uint64
	Text           string
}

// CacheConfig sizes a PlanCache.
type CacheConfig struct {
	// Size is the most entries the cache holds, raw-text aliases included.
	Size int
	// Shards is the number of independently locked parts: a power of two,
	// at most Size; 0 picks four per CPU (at most 256, at most Size/8).
	Shards int
}

// Validate checks the configuration.
func (c CacheConfig) Validate() error {
	if c.Size < 1 {
		return fmt.Errorf("planner: plan cache size %d: must be at least 1", c.Size)
	}
	if c.Shards < 0 || c.Shards&(c.Shards-1) != 0 {
		return fmt.Errorf("planner: plan cache shards %d: must be 0 or a power of two", c.Shards)
	}
	if c.Shards > c.Size {
		return fmt.Errorf("planner: plan cache shards %d: more than its size %d", c.Shards, c.Size)
	}
	return nil
}

func (c CacheConfig) shards() int {
	if c.Shards > 0 {
		return c.Shards
	}
	n := 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
	n = min(n, 256)
	for n > 1 && n > c.Size/8 {
		n >>= 1
	}
	return n
}

// CacheStats are the cache's counters since it was made.
type CacheStats struct {
	RawHits        uint64 // found by the raw text
	NormalizedHits uint64 // found by the normalized text
	Misses         uint64 // found by neither: computed, or waited for another's computation
	Computes       uint64 // compute calls; Misses - Computes lookups shared one
	Errors         uint64 // compute calls that failed (never cached)
	Evictions      uint64
}

// ErrComputePanicked is what callers waiting on a computation get when it
// panicked; the goroutine that ran it panics as usual.
var ErrComputePanicked = errors.New("planner: plan computation panicked")

// PlanCache is a bounded, concurrent plan cache. The zero value is not
// usable; make one with NewPlanCache.
type PlanCache[V any] struct {
	seed   maphash.Seed
	mask   uint64
	shards []cacheShard[V]
}

const (
	roleRaw  uint8 = 1 << iota // found by a lookup of the raw text
	roleNorm                   // found by a lookup of the normalized text
)

type cacheEntry[V any] struct {
	key   CacheKey
	hash  uint64
	role  uint8 // roleRaw, roleNorm or both; changed under the shard's write lock
	nlits int   // literals the normalized text stands for
	val   V
	lits  []Literal // raw entries: the text's literals, pointing into key.Text
	ref   atomic.Bool
	next  *cacheEntry[V] // hash chain
}

type cacheCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

type cacheShard[V any] struct {
	mu    sync.RWMutex
	table map[uint64]*cacheEntry[V]
	ring  []*cacheEntry[V] // CLOCK ring, at most limit entries
	hand  int
	limit int
	calls map[CacheKey]*cacheCall[V] // computations under way

	rawHits, normHits, misses, computes, errors, evictions atomic.Uint64
	_                                                      [64]byte // keep shards off each other's cache lines
}

// NewPlanCache returns an empty cache.
func NewPlanCache[V any](cfg CacheConfig) (*PlanCache[V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.shards()
	c := &PlanCache[V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]cacheShard[V], n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = cfg.Size / n
		if i < cfg.Size%n {
			s.limit++
		}
		s.table = make(map[uint64]*cacheEntry[V])
		s.calls = make(map[CacheKey]*cacheCall[V])
	}
	return c, nil
}

// GetOrCompute returns the value cached for the statement key.Text (raw,
// as the client sent it), or runs compute, caches its value under the
// normalized text and returns it. Concurrent misses on one normalized key
// run compute once; the others wait and get its value or error. Errors
// are not cached.
func (c *PlanCache[V]) GetOrCompute(key CacheKey, compute func() (V, error)) (V, error) {
	v, _, err := c.lookup(key, nil, false, compute)
	return v, err
}

// Lookup is GetOrCompute that also appends the statement's literals to
// lits, in the order of its normalized text's placeholders: the values a
// plan cached for another statement with the same normalized text is
// re-bound to. Their texts point into key.Text or into the cache (treat
// them as read-only). Passing a reused lits slice makes a hit allocation
// free.
func (c *PlanCache[V]) Lookup(key CacheKey, lits []Literal, compute func() (V, error)) (V, []Literal, error) {
	return c.lookup(key, lits, true, compute)
}

func (c *PlanCache[V]) lookup(key CacheKey, lits []Literal, want bool, compute func() (V, error)) (V, []Literal, error) {
	h := c.hash(maphash.String(c.seed, key.Text), &key)
	s := c.shard(h)
	s.mu.RLock()
	if e := s.find(h, &key, key.Text, roleRaw); e != nil {
		v := e.val
		if want {
			lits = append(lits, e.lits...)
		}
		e.touch()
		s.mu.RUnlock()
		s.rawHits.Add(1)
		return v, lits, nil
	}
	s.mu.RUnlock()

	var buf [normStackBytes]byte
	var out []byte
	var mine []Literal // this statement's literals
	if want {
		base := len(lits)
		out, lits = appendNormalized(buf[:0], lits, key.Text, nil)
		mine = lits[base:]
	} else {
		var scratch [normStackLiterals]Literal
		out, mine = appendNormalized(buf[:0], scratch[:0], key.Text, nil)
	}
	n := len(mine)
	same := string(out) == key.Text
	nh := h
	if !same {
		nh = c.hash(maphash.Bytes(c.seed, out), &key)
	}
	ns := c.shard(nh)
	ns.mu.RLock()
	if e := ns.findBytes(nh, &key, out, roleNorm); e != nil && e.nlits == n {
		v := e.val
		e.touch()
		ns.mu.RUnlock()
		ns.normHits.Add(1)
		if n == 0 {
			// The same text will most likely come again: let the raw
			// lookup find it.
			if same {
				ns.addRole(nh, &key, roleRaw)
			} else {
				s.insertAlias(h, key, n, v, nil)
			}
		}
		return v, lits, nil
	}
	ns.mu.RUnlock()

	nk := key
	if same {
		nk.Text = strings.Clone(key.Text)
	} else {
		nk.Text = string(out)
	}
	role := roleNorm
	if same {
		role |= roleRaw
	}
	v, computed, err := ns.compute(nh, nk, role, n, compute)
	if err == nil && computed && !same {
		s.insertAlias(h, key, n, v, mine)
	}
	return v, lits, err
}

func (c *PlanCache[V]) shard(h uint64) *cacheShard[V] { return &c.shards[h&c.mask] }

// hash mixes the text's hash with the rest of the key.
func (c *PlanCache[V]) hash(text uint64, k *CacheKey) uint64 {
	h := text
	if k.Database != "" {
		h ^= maphash.String(c.seed, k.Database) * 0x9e3779b97f4a7c15
	}
	if k.SearchPath != "" {
		h ^= maphash.String(c.seed, k.SearchPath) * 0xc2b2ae3d27d4eb4f
	}
	return h ^ (k.CatalogVersion+1)*0x165667b19e3779f9
}

// Len returns the number of entries, raw-text aliases included.
func (c *PlanCache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.ring)
		s.mu.RUnlock()
	}
	return n
}

// Stats returns the counters, summed over the shards (each read
// atomically; the sum is not a snapshot).
func (c *PlanCache[V]) Stats() CacheStats {
	var st CacheStats
	for i := range c.shards {
		s := &c.shards[i]
		st.RawHits += s.rawHits.Load()
		st.NormalizedHits += s.normHits.Load()
		st.Misses += s.misses.Load()
		st.Computes += s.computes.Load()
		st.Errors += s.errors.Load()
		st.Evictions += s.evictions.Load()
	}
	return st
}

func (e *cacheEntry[V]) touch() {
	if !e.ref.Load() {
		e.ref.Store(true)
	}
}

func (e *cacheEntry[V]) sameKeyBut(h uint64, k *CacheKey, role uint8) bool {
	return e.hash == h && e.role&role != 0 && e.key.CatalogVersion == k.CatalogVersion &&
		e.key.Database == k.Database && e.key.SearchPath == k.SearchPath
}

// find returns the entry with key k (its text replaced by text) that plays
// role. Called with s.mu held.
func (s *cacheShard[V]) find(h uint64, k *CacheKey, text string, role uint8) *cacheEntry[V] {
	for e := s.table[h]; e != nil; e = e.next {
		if e.sameKeyBut(h, k, role) && e.key.Text == text {
			return e
		}
	}
	return nil
}

// findBytes is find for a text still in a buffer.
func (s *cacheShard[V]) findBytes(h uint64, k *CacheKey, text []byte, role uint8) *cacheEntry[V] {
	for e := s.table[h]; e != nil; e = e.next {
		if e.sameKeyBut(h, k, role) && e.key.Text == string(text) {
			return e
		}
	}
	return nil
}

// compute runs fn once for the normalized key k, stores its value unless it
// failed, and returns it; computed is true in the goroutine that ran fn.
func (s *cacheShard[V]) compute(h uint64, k CacheKey, role uint8, nlits int, fn func() (V, error)) (v V, computed bool, err error) {
	s.mu.Lock()
	if e := s.find(h, &k, k.Text, roleNorm); e != nil && e.nlits == nlits {
		// Stored between our read and write locks.
		v := e.val
		s.mu.Unlock()
		s.normHits.Add(1)
		return v, false, nil
	}
	// Counted under the lock: once Misses says n, n callers have each
	// started a computation or joined one.
	s.misses.Add(1)
	if c, ok := s.calls[k]; ok {
		s.mu.Unlock()
		<-c.done
		return c.val, false, c.err
	}
	c := &cacheCall[V]{done: make(chan struct{})}
	s.calls[k] = c
	s.mu.Unlock()
	s.computes.Add(1)

	finished := false
	defer func() {
		if !finished { // fn panicked or called runtime.Goexit
			c.err = ErrComputePanicked
			s.mu.Lock()
			delete(s.calls, k)
			s.mu.Unlock()
			s.errors.Add(1)
			close(c.done)
		}
	}()
	c.val, c.err = fn()
	finished = true

	s.mu.Lock()
	delete(s.calls, k)
	if c.err == nil {
		s.insertLocked(&cacheEntry[V]{key: ownKey(k, false), hash: h, role: role, nlits: nlits, val: c.val})
	} else {
		s.errors.Add(1)
	}
	s.mu.Unlock()
	close(c.done)
	return c.val, true, c.err
}

// insertAlias adds a raw-text entry for k with the statement's literals.
func (s *cacheShard[V]) insertAlias(h uint64, k CacheKey, nlits int, v V, lits []Literal) {
	s.mu.RLock()
	e := s.find(h, &k, k.Text, roleRaw)
	s.mu.RUnlock()
	if e != nil {
		return
	}
	e = &cacheEntry[V]{key: ownKey(k, true), hash: h, role: roleRaw, nlits: nlits, val: v}
	if len(lits) > 0 {
		e.lits = make([]Literal, len(lits))
		for i, l := range lits {
			l.Text = e.key.Text[l.Pos : l.Pos+len(l.Text)]
			e.lits[i] = l
		}
	}
	s.mu.Lock()
	s.insertLocked(e)
	s.mu.Unlock()
}

// addRole lets the entry with key k also play role.
func (s *cacheShard[V]) addRole(h uint64, k *CacheKey, role uint8) {
	s.mu.Lock()
	if e := s.find(h, k, k.Text, roleNorm|roleRaw); e != nil {
		e.role |= role
	}
	s.mu.Unlock()
}

// insertLocked stores e, replacing an entry with its key and role, and
// evicting one when the shard is full. Called with s.mu held for writing.
func (s *cacheShard[V]) insertLocked(e *cacheEntry[V]) {
	for x := s.table[e.hash]; x != nil; x = x.next {
		if x.sameKeyBut(e.hash, &e.key, e.role) && x.key.Text == e.key.Text {
			if x.role == e.role {
				x.val, x.nlits, x.lits = e.val, e.nlits, e.lits
				return
			}
			// Overlapping roles, e.g. a normalized entry arriving where
			// a raw-and-normalized one was: drop the old one.
			s.remove(x)
			break
		}
	}
	if len(s.ring) < s.limit {
		s.ring = append(s.ring, e)
	} else {
		for {
			x := s.ring[s.hand]
			if x.ref.Load() {
				x.ref.Store(false)
				s.hand = (s.hand + 1) % len(s.ring)
				continue
			}
			s.unlink(x)
			s.ring[s.hand] = e
			s.hand = (s.hand + 1) % len(s.ring)
			s.evictions.Add(1)
			break
		}
	}
	e.next = s.table[e.hash]
	s.table[e.hash] = e
}

// remove takes x out of the table and the ring.
func (s *cacheShard[V]) remove(x *cacheEntry[V]) {
	s.unlink(x)
	for i, y := range s.ring {
		if y == x {
			last := len(s.ring) - 1
			s.ring[i] = s.ring[last]
			s.ring[last] = nil
			s.ring = s.ring[:last]
			if s.hand >= len(s.ring) {
				s.hand = 0
			}
			return
		}
	}
}

// unlink takes x out of its hash chain.
func (s *cacheShard[V]) unlink(x *cacheEntry[V]) {
	p := s.table[x.hash]
	if p == x {
		if x.next == nil {
			delete(s.table, x.hash)
		} else {
			s.table[x.hash] = x.next
		}
		return
	}
	for ; p != nil; p = p.next {
		if p.next == x {
			p.next = x.next
			return
		}
	}
}

// ownKey copies the key's strings into one allocation, so the cache never
// keeps a caller's buffer alive or sees it reused. The text is copied only
// when text is set (a normalized text is already the cache's own).
func ownKey(k CacheKey, text bool) CacheKey {
	n := len(k.Database) + len(k.SearchPath)
	if text {
		n += len(k.Text)
	}
	if n == 0 {
		return k
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(k.Database)
	b.WriteString(k.SearchPath)
	if text {
		b.WriteString(k.Text)
	}
	s := b.String()
	d, p := len(k.Database), len(k.Database)+len(k.SearchPath)
	k.Database, k.SearchPath = s[:d], s[d:p]
	if text {
		k.Text = s[p:]
	}
	return k
}
