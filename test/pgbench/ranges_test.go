package pgbench_test

import (
	"strconv"

	"github.com/shardproxy/shardproxy/keyspace"
)

// rangeBounds returns shard i's range of the initial map as SQL numbers;
// hi is "" for the last range, which runs to the end of the keyspace.
func rangeBounds(i, n int) (lo, hi string) {
	r := keyspace.Split(n)[i]
	lo = strconv.FormatInt(int64(r.Lo), 10)
	if !r.ToEnd {
		hi = strconv.FormatInt(int64(r.Hi), 10)
	}
	return lo, hi
}

func itoa(n int) string { return strconv.Itoa(n) }
