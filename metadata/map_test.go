package metadata_test

import (
	"math"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

func shards(n int) []metadata.Shard {
	var out []metadata.Shard
	for i := range n {
		out = append(out, metadata.Shard{ID: "s" + string(rune('1'+i)), Primary: "127.0.0.1:1"})
	}
	return out
}

func TestNewMapOwners(t *testing.T) {
	cases := []struct {
		name   string
		shards int
		id     keyspace.ID
		want   string
	}{
		{"one shard owns the lowest", 1, math.MinInt64, "s1"},
		{"one shard owns the highest", 1, math.MaxInt64, "s1"},
		{"two: lowest", 2, math.MinInt64, "s1"},
		{"two: just below the middle", 2, -1, "s1"},
		{"two: the middle", 2, 0, "s2"},
		{"two: highest", 2, math.MaxInt64, "s2"},
		{"three: lowest", 3, math.MinInt64, "s1"},
		{"three: zero", 3, 0, "s2"},
		{"three: highest", 3, math.MaxInt64, "s3"},
		{"four: quarter", 4, keyspace.ID(math.MinInt64 / 2), "s2"},
		{"four: just below a quarter", 4, keyspace.ID(math.MinInt64/2 - 1), "s1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := metadata.NewMap(1, shards(tc.shards))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Owner(tc.id); got != tc.want {
				t.Fatalf("Owner(%d) = %s, want %s", tc.id, got, tc.want)
			}
		})
	}
}

func TestOwnerAgreesWithContains(t *testing.T) {
	for n := 1; n <= 7; n++ {
		m, err := metadata.NewMap(1, shards(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range m.Ranges {
			probes := []keyspace.ID{a.Range.Lo, a.Range.Lo + 1}
			if !a.Range.ToEnd {
				probes = append(probes, a.Range.Hi-1)
			}
			for _, id := range probes {
				if got := m.Owner(id); got != a.Shard || !a.Range.Contains(id) {
					t.Fatalf("n=%d: Owner(%d) = %s, range %s of %s", n, id, got, a.Range, a.Shard)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	good, err := metadata.NewMap(1, shards(2))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(m *metadata.Map)
		want   string
	}{
		{"no ranges", func(m *metadata.Map) { m.Ranges = nil }, "no ranges"},
		{"gap", func(m *metadata.Map) { m.Ranges[1].Range.Lo++ }, "gap or overlap"},
		{"unknown shard", func(m *metadata.Map) { m.Ranges[0].Shard = "s9" }, "unknown shard"},
		{"duplicate shard", func(m *metadata.Map) { m.Shards[1].ID = "s1" }, "appears twice"},
		{"does not start the keyspace", func(m *metadata.Map) { m.Ranges = m.Ranges[1:] }, "does not start"},
		{"last range stops short", func(m *metadata.Map) { m.Ranges = m.Ranges[:1] }, "only the last range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := *good
			m.Shards = append([]metadata.Shard(nil), good.Shards...)
			m.Ranges = append([]metadata.Assignment(nil), good.Ranges...)
			tc.mutate(&m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := metadata.NewMap(1, nil); err == nil {
		t.Fatal("NewMap without shards succeeded")
	}
}
