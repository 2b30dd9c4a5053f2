package metadata

import (
	"errors"
	"fmt"
	"sort"

	"github.com/shardproxy/shardproxy/keyspace"
)

// Shard is one PostgreSQL primary with its streaming replicas.
type Shard struct {
	ID       string
	Primary  string   // host:port
	Replicas []string // host:port
}

// Assignment says which shard owns a range of the keyspace.
type Assignment struct {
	Range keyspace.Range
	Shard string
}

// Table is a configured table: sharded by the hash of Key, or (Reference)
// copied on every shard. Tables not in the map are unsharded: they live on
// the first shard.
type Table struct {
	Schema, Name string
	Key          string
	Reference    bool
}

// Map is an immutable snapshot of the shard map: shards and the ranges
// they own, with the version that produced it. Callers never modify a Map
// they did not build: a new version is a new Map.
type Map struct {
	Version uint64
	Shards  []Shard
	// Ranges cover the keyspace in order, without gaps or overlaps.
	Ranges []Assignment
	// Tables are the sharded and reference tables.
	Tables []Table
}

// NewMap builds a map whose keyspace is split into equal ranges, one per
// shard in shard order (the first shard owns the lowest range): the map a
// fresh cluster starts with.
func NewMap(version uint64, shards []Shard) (*Map, error) {
	if len(shards) == 0 {
		return nil, errors.New("metadata: a map needs at least one shard")
	}
	m := &Map{Version: version, Shards: shards}
	for i, r := range keyspace.Split(len(shards)) {
		m.Ranges = append(m.Ranges, Assignment{Range: r, Shard: shards[i].ID})
	}
	return m, m.Validate()
}

// Validate checks the invariants every published map keeps.
func (m *Map) Validate() error {
	ids := map[string]bool{}
	for _, s := range m.Shards {
		if s.ID == "" {
			return errors.New("metadata: a shard has no id")
		}
		if ids[s.ID] {
			return fmt.Errorf("metadata: shard %q appears twice", s.ID)
		}
		ids[s.ID] = true
	}
	if len(m.Ranges) == 0 {
		return errors.New("metadata: no ranges cover the keyspace")
	}
	if first := m.Ranges[0].Range; first.Lo != keyspace.Full().Lo {
		return fmt.Errorf("metadata: the first range %s does not start the keyspace", first)
	}
	for i, a := range m.Ranges {
		if !a.Range.Valid() {
			return fmt.Errorf("metadata: range %s is empty or malformed", a.Range)
		}
		if !ids[a.Shard] {
			return fmt.Errorf("metadata: range %s belongs to unknown shard %q", a.Range, a.Shard)
		}
		last := i == len(m.Ranges)-1
		if a.Range.ToEnd != last {
			return fmt.Errorf("metadata: range %s: only the last range may run to the end of the keyspace", a.Range)
		}
		if !last && m.Ranges[i+1].Range.Lo != a.Range.Hi {
			return fmt.Errorf("metadata: ranges %s and %s leave a gap or overlap", a.Range, m.Ranges[i+1].Range)
		}
	}
	return nil
}

// Owner returns the shard that owns a keyspace position.
func (m *Map) Owner(id keyspace.ID) string {
	// The first range whose end lies beyond id; ranges are contiguous, so
	// it contains id.
	i := sort.Search(len(m.Ranges), func(i int) bool {
		r := m.Ranges[i].Range
		return r.ToEnd || id < r.Hi
	})
	return m.Ranges[i].Shard
}

// Shard returns the shard with the given id.
func (m *Map) Shard(id string) (Shard, bool) {
	for _, s := range m.Shards {
		if s.ID == id {
			return s, true
		}
	}
	return Shard{}, false
}
