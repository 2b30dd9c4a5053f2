package sharded_test

// Where the proxy put the rows, read straight from s1..s3. With three
// shards the map starts as keyspace.Split(3) in shard order, so a row with
// key k belongs on the shard whose range holds hashint8extended(k, 0)
// (hashtextextended for a text key). Every row must be there, the shards
// together must hold exactly direct's rows (none lost, none duplicated),
// every shard must hold the whole reference table, and the first shard the
// whole unsharded one. The hash is taken from the server and checked
// against package keyspace as well, so a disagreement between the two is
// named as such rather than as a misplaced row.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
)

func TestPlacement(t *testing.T) {
	if selfCheck {
		t.Skip("the self-check has no proxy, so nothing is placed")
	}
	direct := newSide("direct", directURL)
	defer direct.close()
	shards := make([]*side, len(proxyShards))
	for i, id := range proxyShards {
		shards[i] = newSide(id, shardURL(id))
		defer shards[i].close()
	}
	ranges := keyspace.Split(len(proxyShards))

	for _, st := range shardedTables {
		t.Run(st.name, func(t *testing.T) {
			hash := fmt.Sprintf("hashint8extended(%s::int8, 0)", st.key)
			if st.text {
				hash = fmt.Sprintf("hashtextextended(%s, 0)", st.key)
			}
			q := set("placement", fmt.Sprintf("SELECT %s::text AS shard_key, %s AS shard_hash, * FROM %s", st.key, hash, st.name))
			var union result
			var misplaced []string // examples, one per key
			nMisplaced, seen := 0, map[string]bool{}
			for i, sh := range shards {
				r := sh.run(extended, q)
				if r.err != nil {
					t.Errorf("%s: %v", sh.name, r.err)
					continue
				}
				union.cols = r.cols
				union.rows = append(union.rows, r.rows...)
				for _, row := range r.rows {
					key := string(row[0].raw)
					h, ok := row[1].val.(int64)
					if !ok {
						t.Fatalf("%s: hash of %q decoded as %T", sh.name, key, row[1].val)
					}
					if g := goHash(t, key, st.text); g != keyspace.ID(h) {
						t.Fatalf("package keyspace hashes %q to %d, the server to %d", key, g, h)
					}
					if !ranges[i].Contains(keyspace.ID(h)) {
						nMisplaced++
						if !seen[key] && len(misplaced) < 5 {
							seen[key] = true
							misplaced = append(misplaced, fmt.Sprintf("%s=%s on %s, owned by %s",
								st.key, abbrev(key, 30), sh.name, proxyShards[owner(ranges, h)]))
						}
					}
				}
			}
			if nMisplaced > 0 {
				t.Errorf("%d of %d rows on the wrong shard; first: %s", nMisplaced, len(union.rows),
					strings.Join(misplaced, "; "))
			}
			if union.cols == nil {
				return
			}
			union.tag = fmt.Sprintf("SELECT %d", len(union.rows))
			if diff := compareAs(q, direct.run(extended, q), union, "s1..s3"); diff != "" {
				t.Errorf("the shards together differ from direct: %s", diff)
			}
		})
	}

	for _, name := range referenceTables {
		q := set("placement", "SELECT * FROM "+name)
		d := direct.run(extended, q)
		for _, sh := range shards {
			if diff := compareAs(q, d, sh.run(extended, q), sh.name); diff != "" {
				t.Errorf("reference table %s on %s differs from direct: %s", name, sh.name, diff)
			}
		}
	}
	for _, name := range unshardedTables {
		q := set("placement", "SELECT * FROM "+name)
		if diff := compareAs(q, direct.run(extended, q), shards[0].run(extended, q), shards[0].name); diff != "" {
			t.Errorf("unsharded table %s on %s differs from direct: %s", name, shards[0].name, diff)
		}
	}
}

func goHash(t *testing.T, key string, text bool) keyspace.ID {
	if text {
		return keyspace.Text(key)
	}
	v, err := strconv.ParseInt(key, 10, 64)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return keyspace.Int(v)
}

func owner(ranges []keyspace.Range, h int64) int {
	for i, r := range ranges {
		if r.Contains(keyspace.ID(h)) {
			return i
		}
	}
	return -1
}
