package keyspace_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
)

// size is the number of positions in r, which for the full keyspace (2^64)
// does not fit in a uint64.
func size(r keyspace.Range) *big.Int {
	hi := big.NewInt(int64(r.Hi))
	if r.ToEnd {
		hi = new(big.Int).Lsh(big.NewInt(1), 63)
	}
	return hi.Sub(hi, big.NewInt(int64(r.Lo)))
}

func TestSplit(t *testing.T) {
	keyspaceSize := new(big.Int).Lsh(big.NewInt(1), 64)
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 16, 100, 1000} {
		rs := keyspace.Split(n)
		if len(rs) != n {
			t.Fatalf("Split(%d): %d ranges", n, len(rs))
		}
		if rs[0].Lo != math.MinInt64 {
			t.Errorf("Split(%d): first range starts at %d, not -2^63", n, rs[0].Lo)
		}
		if !rs[n-1].ToEnd {
			t.Errorf("Split(%d): last range %v does not run to the end", n, rs[n-1])
		}
		total := new(big.Int)
		minSize, maxSize := size(rs[0]), size(rs[0])
		for i, r := range rs {
			if !r.Valid() {
				t.Errorf("Split(%d)[%d] = %v is not valid", n, i, r)
			}
			if i < n-1 && (r.ToEnd || r.Hi != rs[i+1].Lo) {
				t.Errorf("Split(%d): %v is not followed by %v without gap or overlap", n, r, rs[i+1])
			}
			sz := size(r)
			total.Add(total, sz)
			if sz.Cmp(minSize) < 0 {
				minSize = sz
			}
			if sz.Cmp(maxSize) > 0 {
				maxSize = sz
			}
		}
		if total.Cmp(keyspaceSize) != 0 {
			t.Errorf("Split(%d) covers %v positions, want 2^64", n, total)
		}
		if d := new(big.Int).Sub(maxSize, minSize); d.Cmp(big.NewInt(1)) > 0 {
			t.Errorf("Split(%d): sizes from %v to %v", n, minSize, maxSize)
		}
	}
	if got, want := keyspace.Split(1)[0], keyspace.Full(); got != want {
		t.Errorf("Split(1) = %v, want Full() = %v", got, want)
	}
}

func TestSplitExact(t *testing.T) {
	got := keyspace.Split(4)
	want := []keyspace.Range{
		{Lo: math.MinInt64, Hi: -1 << 62},
		{Lo: -1 << 62, Hi: 0},
		{Lo: 0, Hi: 1 << 62},
		{Lo: 1 << 62, ToEnd: true},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Split(4)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// 2^64/3 = 6148914691236517205.33: the first two ranges have that
	// many positions, the last one more.
	got = keyspace.Split(3)
	want = []keyspace.Range{
		{Lo: math.MinInt64, Hi: -3074457345618258603},
		{Lo: -3074457345618258603, Hi: 3074457345618258602},
		{Lo: 3074457345618258602, ToEnd: true},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Split(3)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSplitPanics(t *testing.T) {
	for _, n := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%d) did not panic", n)
				}
			}()
			keyspace.Split(n)
		}()
	}
}

func TestContains(t *testing.T) {
	r := keyspace.Range{Lo: -10, Hi: 20}
	end := keyspace.Range{Lo: 100, ToEnd: true}
	tests := []struct {
		r    keyspace.Range
		id   keyspace.ID
		want bool
	}{
		{r, -11, false},
		{r, -10, true},
		{r, 0, true},
		{r, 19, true},
		{r, 20, false},
		{r, math.MinInt64, false},
		{r, math.MaxInt64, false},
		{end, 99, false},
		{end, 100, true},
		{end, math.MaxInt64, true},
		{end, math.MinInt64, false},
		{keyspace.Full(), math.MinInt64, true},
		{keyspace.Full(), 0, true},
		{keyspace.Full(), math.MaxInt64, true},
		{keyspace.Range{Lo: math.MinInt64, Hi: math.MinInt64 + 1}, math.MinInt64, true},
		{keyspace.Range{Lo: math.MinInt64, Hi: math.MinInt64 + 1}, math.MinInt64 + 1, false},
		{keyspace.Range{Lo: math.MaxInt64, ToEnd: true}, math.MaxInt64, true},
		{keyspace.Range{Lo: math.MaxInt64, ToEnd: true}, math.MaxInt64 - 1, false},
	}
	for _, tt := range tests {
		if got := tt.r.Contains(tt.id); got != tt.want {
			t.Errorf("%v.Contains(%d) = %v, want %v", tt.r, tt.id, got, tt.want)
		}
	}
}

// TestContainsExactlyOne checks that every position lies in exactly one
// range of a split: the boundaries, their neighbours and random positions.
func TestContainsExactlyOne(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 7; n++ {
		rs := keyspace.Split(n)
		ids := []keyspace.ID{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}
		for _, rg := range rs {
			ids = append(ids, rg.Lo-1, rg.Lo, rg.Lo+1)
			if !rg.ToEnd {
				ids = append(ids, rg.Hi-1, rg.Hi, rg.Hi+1)
			}
		}
		for range 1000 {
			ids = append(ids, keyspace.ID(r.Int64()-r.Int64()))
		}
		for _, id := range ids {
			in := 0
			for _, rg := range rs {
				if rg.Contains(id) {
					in++
				}
			}
			if in != 1 {
				t.Errorf("Split(%d): %d is in %d ranges", n, id, in)
			}
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		r    keyspace.Range
		want bool
	}{
		{keyspace.Full(), true},
		{keyspace.Range{Lo: 0, Hi: 1}, true},
		{keyspace.Range{Lo: math.MaxInt64, ToEnd: true}, true},
		{keyspace.Range{}, false},                          // empty
		{keyspace.Range{Lo: 5, Hi: 3}, false},              // backwards
		{keyspace.Range{Lo: 0, Hi: 5, ToEnd: true}, false}, // two ends
		{keyspace.Range{Lo: 0, Hi: math.MinInt64}, false},  // not a wrap-around end
	}
	for _, tt := range tests {
		if got := tt.r.Valid(); got != tt.want {
			t.Errorf("%#v.Valid() = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		r    keyspace.Range
		want string
	}{
		{keyspace.Full(), "[-9223372036854775808, 9223372036854775808)"},
		{keyspace.Split(2)[0], "[-9223372036854775808, 0)"},
		{keyspace.Split(2)[1], "[0, 9223372036854775808)"},
		{keyspace.Range{Lo: -5, Hi: 7}, "[-5, 7)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
