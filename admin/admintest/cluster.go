// Package admintest provides an in-memory admin.Cluster for tests of the
// admin API and of the code that serves or calls it (the CLI, the node),
// so none of them needs a Raft cluster to check its HTTP behaviour.
package admintest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

// Cluster is one node's view of a cluster. It is the leader while Leader
// names it (the default), and then applies splits to its map; otherwise
// Apply answers *metadata.ErrNotLeader as a Raft follower would. Safe for
// concurrent use.
type Cluster struct {
	mu         sync.Mutex
	id         string
	m          *metadata.Map
	index      uint64
	nodes      []metadata.NodeInfo
	servers    []metadata.ServerInfo
	serversErr error
	leader     metadata.NodeInfo
	applyErr   error
	onApply    func(*metadata.Map)
	commands   []metadata.Command
	// changed is closed, and replaced, whenever the map changes: WaitMap's
	// wake-up.
	changed chan struct{}
}

var (
	_ admin.Cluster   = (*Cluster)(nil)
	_ admin.MapWaiter = (*Cluster)(nil)
)

// New is node id holding m (nil for none yet), leader of a one-node
// cluster.
func New(id string, m *metadata.Map) *Cluster {
	return &Cluster{
		id:      id,
		m:       m,
		leader:  metadata.NodeInfo{ID: id},
		servers: []metadata.ServerInfo{{ID: id, Voter: true, Leader: true}},
		changed: make(chan struct{}),
	}
}

// NodeID implements admin.Cluster.
func (c *Cluster) NodeID() string { return c.id }

// Map implements admin.Cluster.
func (c *Cluster) Map() *metadata.Map {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}

// AppliedIndex implements admin.Cluster.
func (c *Cluster) AppliedIndex() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index
}

// Nodes implements admin.Cluster.
func (c *Cluster) Nodes() []metadata.NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Servers implements admin.Cluster.
func (c *Cluster) Servers() ([]metadata.ServerInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.servers), c.serversErr
}

// Leader implements admin.Cluster.
func (c *Cluster) Leader() metadata.NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Apply implements admin.Cluster: the leader applies CmdSplitRange and
// refuses every other command.
func (c *Cluster) Apply(_ context.Context, cmd metadata.Command) (uint64, error) {
	c.mu.Lock()
	if c.leader.ID != c.id {
		defer c.mu.Unlock()
		return 0, &metadata.ErrNotLeader{Leader: c.leader}
	}
	if c.applyErr != nil {
		defer c.mu.Unlock()
		return 0, c.applyErr
	}
	if cmd.Type != metadata.CmdSplitRange {
		defer c.mu.Unlock()
		return 0, fmt.Errorf("%w: admintest applies only splits, not command type %d", metadata.ErrRejected, cmd.Type)
	}
	if c.m == nil {
		defer c.mu.Unlock()
		return 0, fmt.Errorf("%w: no map to split", metadata.ErrRejected)
	}
	m, err := Split(c.m, cmd.At)
	if err != nil {
		defer c.mu.Unlock()
		return 0, err
	}
	c.index++
	index := c.index
	c.commands = append(c.commands, cmd)
	c.setMapLocked(m)
	hook := c.onApply
	c.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	return index, nil
}

// WaitMap implements admin.MapWaiter.
func (c *Cluster) WaitMap(ctx context.Context, version uint64) error {
	for {
		c.mu.Lock()
		ok, changed := c.m != nil && c.m.Version >= version, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// SetMap replaces the map, as applying a replicated log entry would, and
// advances the applied index.
func (c *Cluster) SetMap(m *metadata.Map) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.setMapLocked(m)
}

func (c *Cluster) setMapLocked(m *metadata.Map) {
	c.m = m
	close(c.changed)
	c.changed = make(chan struct{})
}

// SetNodes replaces the node directory.
func (c *Cluster) SetNodes(nodes ...metadata.NodeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = slices.Clone(nodes)
}

// SetServers replaces the Raft membership, or makes Servers fail with err.
func (c *Cluster) SetServers(servers []metadata.ServerInfo, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers, c.serversErr = slices.Clone(servers), err
}

// SetLeader names the leader; naming another node makes this one a
// follower, the zero NodeInfo leaves the cluster without a leader.
func (c *Cluster) SetLeader(leader metadata.NodeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = leader
}

// FailApply makes the leader's Apply return err (nil to stop).
func (c *Cluster) FailApply(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyErr = err
}

// OnApply calls f with each map the leader's Apply makes, after it is
// installed; a test replicates it to followers from there.
func (c *Cluster) OnApply(f func(*metadata.Map)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onApply = f
}

// Commands are the commands applied so far.
func (c *Cluster) Commands() []metadata.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.commands)
}

// Split is m with the range containing at cut at at (the next version), or
// an error wrapping metadata.ErrRejected when at already starts a range:
// what the Raft state machine does with CmdSplitRange.
func Split(m *metadata.Map, at keyspace.ID) (*metadata.Map, error) {
	out := &metadata.Map{Version: m.Version + 1, Shards: m.Shards, Tables: m.Tables}
	for _, a := range m.Ranges {
		if !a.Range.Contains(at) {
			out.Ranges = append(out.Ranges, a)
			continue
		}
		if a.Range.Lo == at {
			return nil, fmt.Errorf("%w: %d already starts the range %s", metadata.ErrRejected, at, a.Range)
		}
		lower := metadata.Assignment{Range: keyspace.Range{Lo: a.Range.Lo, Hi: at}, Shard: a.Shard}
		upper := metadata.Assignment{Range: keyspace.Range{Lo: at, Hi: a.Range.Hi, ToEnd: a.Range.ToEnd}, Shard: a.Shard}
		out.Ranges = append(out.Ranges, lower, upper)
	}
	return out, out.Validate()
}
