package metadata

// Shard is one PostgreSQL primary with its streaming replicas.
type Shard struct {
	ID       string
	Primary  string   // host:port
	Replicas []string // host:port
}

// Map is an immutable snapshot of the shard map. Callers never modify a Map
// they did not build: a new version is a new Map.
type Map struct {
	Version uint64
	Shards  []Shard
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
