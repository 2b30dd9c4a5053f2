package keyspace_test

// A range selects in SQL exactly the keys it contains in Go: the bounds
// compare as signed int8 on the server as ID does here, and the last range
// of a split, which has no upper bound, has none in SQL either. This is
// how moves, verification and cleanup will select a range's rows.

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
)

// rangeQuery selects the ordinals of the keys in $1 whose position lies
// in r.
func rangeQuery(r keyspace.Range) (string, []any) {
	q := `select i from unnest($1::int8[]) with ordinality as t(x, i)
		where hashint8extended(x, 0) >= $2`
	args := []any{int64(r.Lo)}
	if !r.ToEnd {
		q += ` and hashint8extended(x, 0) < $3`
		args = append(args, int64(r.Hi))
	}
	return q + ` order by i`, args
}

func TestRangeInSQL(t *testing.T) {
	ctx, conn := connect(t)
	rnd := rand.New(rand.NewPCG(20240501, 4))
	keys := edgeInts()
	for range 20000 {
		keys = append(keys, rnd.Int64())
	}
	for _, n := range []int{1, 2, 3, 7} {
		total := 0
		for _, r := range keyspace.Split(n) {
			q, args := rangeQuery(r)
			rows, err := conn.Query(ctx, q, append([]any{keys}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for rows.Next() {
				var i int64
				if err := rows.Scan(&i); err != nil {
					t.Fatal(err)
				}
				got = append(got, i-1) // ordinality counts from 1
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			var want []int64
			for i, k := range keys {
				if r.Contains(keyspace.Int(k)) {
					want = append(want, int64(i))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Split(%d) range %v: SQL selects %d keys, Go %d", n, r, len(got), len(want))
			}
			total += len(got)
			// A range holds about its share of uniformly hashed keys.
			if share, expect := float64(len(got)), float64(len(keys))/float64(n); math.Abs(share-expect) > 0.05*expect {
				t.Errorf("Split(%d) range %v holds %d of %d keys, expected about %.0f", n, r, len(got), len(keys), expect)
			}
		}
		if total != len(keys) {
			t.Errorf("Split(%d): the ranges select %d keys in all, want %d", n, total, len(keys))
		}
	}
}
