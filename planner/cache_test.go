package planner_test

// The plan cache: one computation for many concurrent misses, errors not
// cached, a bounded size, the raw-text and normalized-text paths, and what
// each costs (benchmarks at the end, parallel ones for lock contention).

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/shardproxy/shardproxy/planner"
)

func newCache[V any](t testing.TB, size, shards int) *planner.PlanCache[V] {
	t.Helper()
	c, err := planner.NewPlanCache[V](planner.CacheConfig{Size: size, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func key(text string) planner.CacheKey {
	return planner.CacheKey{Database: "app", SearchPath: `"$user", public`, CatalogVersion: 1, Text: text}
}

// waitMisses spins (no sleeping) until n lookups have missed: then every
// one of them is either computing or waiting for the computation.
func waitMisses[V any](c *planner.PlanCache[V], n uint64) {
	for c.Stats().Misses < n {
		runtime.Gosched()
	}
}

func TestPlanCacheComputesOncePerKey(t *testing.T) {
	c := newCache[string](t, 100, 0)
	const clients = 50
	gate := make(chan struct{})
	var computes atomic.Int32
	compute := func() (string, error) {
		computes.Add(1)
		<-gate
		return "plan", nil
	}
	var wg sync.WaitGroup
	results := make([]string, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Different values, one normalized text: one computation.
			results[i], errs[i] = c.GetOrCompute(key(fmt.Sprintf("SELECT * FROM t WHERE id = %d", i)), compute)
		}()
	}
	waitMisses(c, clients)
	close(gate)
	wg.Wait()
	if n := computes.Load(); n != 1 {
		t.Fatalf("compute ran %d times for one key", n)
	}
	for i := range clients {
		if results[i] != "plan" || errs[i] != nil {
			t.Fatalf("client %d got %q, %v", i, results[i], errs[i])
		}
	}
	st := c.Stats()
	if st.Computes != 1 || st.Misses != clients {
		t.Fatalf("stats %+v", st)
	}
	// The computing client's text is now a raw entry, the others hit the
	// normalized one.
	if _, err := c.GetOrCompute(key("SELECT * FROM t WHERE id = 77"), compute); err != nil || computes.Load() != 1 {
		t.Fatalf("normalized lookup computed again: %v", err)
	}
	if st := c.Stats(); st.NormalizedHits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlanCacheErrorsAreShared(t *testing.T) {
	c := newCache[int](t, 100, 0)
	errBad := errors.New("bad statement")
	gate := make(chan struct{})
	var computes atomic.Int32
	failing := func() (int, error) {
		computes.Add(1)
		<-gate
		return 0, errBad
	}
	const clients = 10
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.GetOrCompute(key("SELECT broken"), failing)
		}()
	}
	waitMisses(c, clients)
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errBad) {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	if computes.Load() != 1 {
		t.Fatalf("compute ran %d times", computes.Load())
	}
	// Not cached: the next lookup computes again, and can succeed.
	v, err := c.GetOrCompute(key("SELECT broken"), func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("after an error: %d, %v", v, err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len %d after one success, want 2 (normalized text and raw alias)", c.Len())
	}
	if st := c.Stats(); st.Errors != 1 || st.Computes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlanCachePanicReleasesWaiters(t *testing.T) {
	c := newCache[int](t, 10, 0)
	started, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		defer func() { done <- fmt.Errorf("panicked: %v", recover()) }()
		c.GetOrCompute(key("SELECT 1"), func() (int, error) {
			close(started)
			<-gate
			panic("boom")
		})
	}()
	<-started
	go func() {
		_, err := c.GetOrCompute(key("SELECT 2"), func() (int, error) { return 1, nil })
		done <- err
	}()
	waitMisses(c, 2)
	close(gate)
	for range 2 {
		err := <-done
		if !errors.Is(err, planner.ErrComputePanicked) && err.Error() != "panicked: boom" {
			t.Fatalf("unexpected: %v", err)
		}
	}
	if v, err := c.GetOrCompute(key("SELECT 3"), func() (int, error) { return 3, nil }); v != 3 || err != nil {
		t.Fatalf("after a panic: %d, %v", v, err)
	}
}

func TestPlanCacheBounded(t *testing.T) {
	for _, shards := range []int{0, 1, 4} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			const size = 64
			c := newCache[int](t, size, shards)
			hot := key("SELECT hot FROM t WHERE id = 1")
			for i := range 2000 {
				v, err := c.GetOrCompute(key(fmt.Sprintf("SELECT c%d FROM t WHERE id = 1", i)), func() (int, error) { return i, nil })
				if v != i || err != nil {
					t.Fatalf("%d: %d, %v", i, v, err)
				}
				if n := c.Len(); n > size {
					t.Fatalf("Len %d over the size %d", n, size)
				}
				// A statement found again and again outlives one-off ones.
				if _, err := c.GetOrCompute(hot, func() (int, error) { return -1, nil }); err != nil {
					t.Fatal(err)
				}
			}
			st := c.Stats()
			if st.Evictions == 0 || c.Len() != size {
				t.Fatalf("Len %d, stats %+v", c.Len(), st)
			}
			if st.Computes > 2000+5 {
				t.Fatalf("the hot statement was evicted %d times", st.Computes-2000-1)
			}
		})
	}
}

func TestPlanCacheLookupPaths(t *testing.T) {
	c := newCache[string](t, 100, 0)
	computes := 0
	compute := func() (string, error) { computes++; return fmt.Sprint("plan", computes), nil }
	lookup := func(text string) (string, []planner.Literal) {
		t.Helper()
		v, ls, err := c.Lookup(key(text), nil, compute)
		if err != nil {
			t.Fatal(err)
		}
		return v, ls
	}
	stats := func(raw, norm, misses uint64) {
		t.Helper()
		if st := c.Stats(); st.RawHits != raw || st.NormalizedHits != norm || st.Misses != misses {
			t.Fatalf("got %+v, want raw %d normalized %d misses %d", st, raw, norm, misses)
		}
	}

	v, ls := lookup("SELECT * FROM t WHERE id = 1 AND s = 'a'")
	if v != "plan1" || lits(ls) != "integer:1 | string:'a'" {
		t.Fatalf("miss: %q %s", v, lits(ls))
	}
	stats(0, 0, 1)
	// The same text: found without normalizing, with its literals.
	v, ls = lookup("SELECT * FROM t WHERE id = 1 AND s = 'a'")
	if v != "plan1" || lits(ls) != "integer:1 | string:'a'" || ls[1].Pos != 37 {
		t.Fatalf("raw hit: %q %s %+v", v, lits(ls), ls)
	}
	stats(1, 0, 1)
	// Other values: found by the normalized text, with these values.
	v, ls = lookup("SELECT * FROM t WHERE id = 22 AND s = 'b'")
	if v != "plan1" || lits(ls) != "integer:22 | string:'b'" {
		t.Fatalf("normalized hit: %q %s", v, lits(ls))
	}
	stats(1, 1, 1)
	// A text with literals found by its normalized form gets no raw entry
	// (its values most likely change next time)...
	lookup("SELECT * FROM t WHERE id = 22 AND s = 'b'")
	stats(1, 2, 1)
	// ...one without literals does.
	lookup("SELECT now()")
	stats(1, 2, 2)
	lookup("select   NOW()")
	stats(1, 3, 2)
	lookup("select   NOW()")
	stats(2, 3, 2)
	// A text that is its own normalized form has one entry for both.
	lookup("select b from t")
	lookup("select b from t")
	stats(3, 3, 3)
	if computes != 3 {
		t.Fatalf("%d computations", computes)
	}
	// Each part of the key counts.
	for _, k := range []planner.CacheKey{
		{Database: "other", SearchPath: `"$user", public`, CatalogVersion: 1, Text: "select b from t"},
		{Database: "app", SearchPath: "s2", CatalogVersion: 1, Text: "select b from t"},
		{Database: "app", SearchPath: `"$user", public`, CatalogVersion: 2, Text: "select b from t"},
	} {
		if _, _, err := c.Lookup(k, nil, compute); err != nil {
			t.Fatal(err)
		}
	}
	if computes != 6 {
		t.Fatalf("%d computations, want a new one for each key", computes)
	}
}

// The cache copies what it keeps: a caller may hand it a string over a
// buffer it reuses (as a zero-copy protocol reader might).
func TestPlanCacheOwnsItsKeys(t *testing.T) {
	c := newCache[int](t, 10, 0)
	buf := []byte("SELECT * FROM t WHERE id = 1")
	text := unsafe.String(&buf[0], len(buf))
	if _, err := c.GetOrCompute(key(text), func() (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	copy(buf, "SELECT * FROM u WHERE id = 2")
	_, ls, err := c.Lookup(key("SELECT * FROM t WHERE id = 1"), nil, func() (int, error) { return 2, nil })
	if err != nil || lits(ls) != "integer:1" {
		t.Fatalf("raw entry changed with the caller's buffer: %s, %v", lits(ls), err)
	}
	if st := c.Stats(); st.RawHits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheConfigValidate(t *testing.T) {
	for _, cfg := range []planner.CacheConfig{{Size: 0}, {Size: 10, Shards: 3}, {Size: 2, Shards: 4}, {Size: 10, Shards: -1}} {
		if _, err := planner.NewPlanCache[int](cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// Benchmarks. A hit is what most statements cost; run with -cpu 1,2,4,8
// to see the parallel ones contend (or not) on locks and counters.

const benchPoint = "SELECT id, name, email FROM accounts WHERE id = 42"

func benchTexts(n int) []string {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT id, name, email FROM accounts WHERE id = %d", i)
	}
	return texts
}

func computePlan() (int, error) { return 1, nil }

func BenchmarkCacheHitRaw(b *testing.B) {
	c := newCache[int](b, 10000, 0)
	k := key(benchPoint)
	c.GetOrCompute(k, computePlan)
	b.ReportAllocs()
	for b.Loop() {
		c.GetOrCompute(k, computePlan)
	}
}

func BenchmarkCacheHitRawLiterals(b *testing.B) {
	c := newCache[int](b, 10000, 0)
	k := key(benchPoint)
	c.GetOrCompute(k, computePlan)
	ls := make([]planner.Literal, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		_, ls, _ = c.Lookup(k, ls[:0], computePlan)
	}
}

// BenchmarkCacheHitNormalized: a different literal every time, as with
// the simple protocol and inlined values.
func BenchmarkCacheHitNormalized(b *testing.B) {
	c := newCache[int](b, 10000, 0)
	texts := benchTexts(4096)
	c.GetOrCompute(key(texts[0]), computePlan)
	b.Run("GetOrCompute", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.GetOrCompute(key(texts[i&4095]), computePlan)
			i++
		}
	})
	b.Run("Lookup-reused-literals", func(b *testing.B) {
		ls := make([]planner.Literal, 0, 16)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, ls, _ = c.Lookup(key(texts[i&4095]), ls[:0], computePlan)
			i++
		}
	})
}

// BenchmarkCacheParallel: raw-text hits from all Ps at once, on one hot
// statement or spread over 1024 (distinct shapes, so each has its own
// raw entry), with one lock or the default shards.
func BenchmarkCacheParallel(b *testing.B) {
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT c%d FROM accounts WHERE id = 42", i)
	}
	for _, shards := range []int{1, 0} {
		for _, keys := range []int{1, 1024} {
			b.Run(fmt.Sprintf("raw/shards=%d/keys=%d", shards, keys), func(b *testing.B) {
				c := newCache[int](b, 10000, shards)
				for _, t := range texts[:keys] {
					c.GetOrCompute(key(t), computePlan)
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						c.GetOrCompute(key(texts[i%keys]), computePlan)
						i++
					}
				})
			})
		}
	}
}
