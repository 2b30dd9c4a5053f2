package keyspace

// Ranges of the keyspace, the unit a shard owns, splits and moves.

import (
	"math"
	"math/bits"
	"strconv"
)

// Range is the half-open interval [Lo, Hi) of positions.
//
// The keyspace is [-2^63, 2^63), and 2^63 is not an int64: a range that
// runs to the end of the keyspace has ToEnd set, and then Hi is 0 and
// means nothing. Any other range has Lo < Hi. (A closed [Lo, Last] would
// need no flag but would make every split, adjacency check and SQL bound
// differ by one from the [lo, hi) of the design and the admin output.)
// In SQL a range is
//
//	h >= Lo and h < Hi    or, with ToEnd,    h >= Lo
//
// where h is the key's hash expression. Ranges are values; compare them
// with ==.
type Range struct {
	Lo    ID   // the first position in the range
	Hi    ID   // the first position after it; 0 when ToEnd
	ToEnd bool // the range ends at 2^63, the end of the keyspace
}

// Full is the whole keyspace, [-2^63, 2^63).
func Full() Range {
	return Range{Lo: math.MinInt64, ToEnd: true}
}

// Contains reports whether id lies in r.
func (r Range) Contains(id ID) bool {
	return id >= r.Lo && (r.ToEnd || id < r.Hi)
}

// Valid reports whether r is a range as this package makes them:
// non-empty, and Hi is 0 when ToEnd.
func (r Range) Valid() bool {
	if r.ToEnd {
		return r.Hi == 0
	}
	return r.Lo < r.Hi
}

// String is "[lo, hi)", with 2^63 written out when the range runs to the
// end of the keyspace.
func (r Range) String() string {
	hi := "9223372036854775808"
	if !r.ToEnd {
		hi = strconv.FormatInt(int64(r.Hi), 10)
	}
	return "[" + strconv.FormatInt(int64(r.Lo), 10) + ", " + hi + ")"
}

// Split divides the keyspace into n ranges in order, without gaps or
// overlaps, whose sizes differ by at most one position: range i starts at
// -2^63 + floor(i * 2^64 / n). It panics if n < 1; callers validate the
// count they are given (a shard count, say) first.
func Split(n int) []Range {
	if n < 1 {
		panic("keyspace: Split of fewer than one range: " + strconv.Itoa(n))
	}
	rs := make([]Range, n)
	for i := range rs {
		rs[i].Lo = start(i, n)
		if i == n-1 {
			rs[i].ToEnd = true
		} else {
			rs[i].Hi = start(i+1, n)
		}
	}
	return rs
}

// start is where range i of n begins: -2^63 + floor(i * 2^64 / n). For
// 0 <= i < n the 128-bit division cannot overflow.
func start(i, n int) ID {
	off, _ := bits.Div64(uint64(i), 0, uint64(n))
	return ID(1<<63 + off) // -2^63 + off, wrapping
}
