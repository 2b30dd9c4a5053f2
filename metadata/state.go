package metadata

// The replicated state and the pure function that advances it by one
// command. Keeping the transition a function of (state, index, command),
// apart from Raft, is what makes it deterministic and testable: every node
// replays the same log through it and reaches byte-equal state.
//
// A state is immutable once built. A command that changes something builds
// a new state sharing the parts it leaves alone; readers, snapshots and the
// map pointer routers hold never see a state change under them.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/keyspace"
)

// state is everything the Raft log builds. Its JSON form is the snapshot
// format (fsm.go): slices only, kept sorted, so the same state always
// encodes to the same bytes.
type state struct {
	// Map is nil until the cluster is seeded.
	Map *Map `json:"map,omitempty"`
	// Nodes is the node directory, sorted by ID.
	Nodes []NodeInfo `json:"nodes,omitempty"`
	// Decisions are the gids of distributed transactions decided to
	// commit whose participants have not all committed yet, sorted.
	Decisions []string `json:"decisions,omitempty"`
	// Aborts are the gids recovery decided to roll back (on behalf of a
	// coordinator that may be dead), sorted; a commit decision for one is
	// refused. They are few: one per transaction a crash left undecided.
	// They are never forgotten (CmdDecisionDone forgets commits only):
	// forgetting one would let a coordinator that was only slow record a
	// commit for what was rolled back.
	Aborts []string `json:"aborts,omitempty"`
}

// rejectf is a refusal: the command is well-formed but not acceptable in
// this state. Every node refuses it alike, so it is part of the
// deterministic outcome, returned to the proposer and otherwise ignored.
func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRejected}, args...)...)
}

// apply returns the state after c, applied as log entry index. It returns
// s itself when c changes nothing, and an error (s unchanged) when c is
// refused (ErrRejected) or unknown (errUnknownCommand).
func (s *state) apply(index uint64, c Command) (*state, error) {
	switch c.Type {
	case CmdSeed:
		return s.seed(index, c)
	case CmdAddShard:
		return s.changeMap(index, c, addShard)
	case CmdRemoveShard:
		return s.changeMap(index, c, removeShard)
	case CmdSetHosts:
		return s.changeMap(index, c, setHosts)
	case CmdSetPrimary:
		return s.changeMap(index, c, setPrimary)
	case CmdAddTable:
		return s.changeMap(index, c, addTable)
	case CmdRemoveTable:
		return s.changeMap(index, c, removeTable)
	case CmdSplitRange:
		return s.changeMap(index, c, splitRange)
	case CmdAssignRange:
		return s.changeMap(index, c, assignRange)
	case CmdRegisterNode:
		return s.registerNode(c)
	case CmdRemoveNode:
		return s.removeNode(c)
	case CmdDecideCommit:
		return s.decideCommit(c)
	case CmdDecisionDone:
		return s.decisionDone(c)
	case CmdDecideAbort:
		return s.decideAbort(c)
	}
	return s, fmt.Errorf("%w: type %d", errUnknownCommand, uint8(c.Type))
}

// seed installs the first map. A seed arriving when a map exists is not
// an error: every restart of a configured node proposes its seed again,
// and it must lose to whatever the map has become.
func (s *state) seed(index uint64, c Command) (*state, error) {
	if s.Map != nil {
		return s, nil
	}
	if c.Seed == nil {
		return s, rejectf("seed without a map")
	}
	m := c.Seed.clone()
	for _, sh := range m.Shards {
		if err := checkHosts(sh); err != nil {
			return s, err
		}
	}
	if len(m.Ranges) == 0 && len(m.Shards) > 0 {
		// DESIGN.md section 9: with N shards and no ranges, the keyspace
		// starts as N equal ranges in shard order.
		for i, r := range keyspace.Split(len(m.Shards)) {
			m.Ranges = append(m.Ranges, Assignment{Range: r, Shard: m.Shards[i].ID})
		}
	}
	seen := map[string]bool{}
	for i := range m.Tables {
		if err := normalizeTable(&m.Tables[i]); err != nil {
			return s, err
		}
		qn := m.Tables[i].Schema + "." + m.Tables[i].Name
		if seen[qn] {
			return s, rejectf("seed lists table %s twice", qn)
		}
		seen[qn] = true
	}
	m.Version = index
	if err := m.Validate(); err != nil {
		return s, rejectf("seed: %v", err)
	}
	next := *s
	next.Map = m
	return &next, nil
}

// mapChange edits a private copy of the map. It reports whether anything
// changed: a command that asks for what already holds keeps the version.
type mapChange func(m *Map, c Command) (changed bool, err error)

// changeMap applies a change to a copy of the map, stamps the copy with the
// log index as its version and checks the invariants before publishing it.
func (s *state) changeMap(index uint64, c Command, change mapChange) (*state, error) {
	if s.Map == nil {
		return s, rejectf("%s: the cluster has no map yet (not seeded)", c.Type)
	}
	m := s.Map.clone()
	changed, err := change(m, c)
	if err != nil || !changed {
		return s, err
	}
	m.Version = index
	if err := m.Validate(); err != nil {
		// A change function let through a map that breaks an invariant;
		// refusing keeps the published map valid.
		return s, rejectf("%s would break the map: %v", c.Type, err)
	}
	next := *s
	next.Map = m
	return &next, nil
}

func addShard(m *Map, c Command) (bool, error) {
	if c.Shard == nil {
		return false, rejectf("add-shard without a shard")
	}
	if _, ok := m.Shard(c.Shard.ID); ok {
		return false, rejectf("shard %q exists", c.Shard.ID)
	}
	if err := checkHosts(*c.Shard); err != nil {
		return false, err
	}
	m.Shards = append(m.Shards, cloneShard(*c.Shard))
	return true, nil
}

func removeShard(m *Map, c Command) (bool, error) {
	i := m.shardIndex(c.ShardID)
	if i < 0 {
		return false, rejectf("no shard %q", c.ShardID)
	}
	for _, a := range m.Ranges {
		if a.Shard == c.ShardID {
			return false, rejectf("shard %q owns range %s; move its ranges away first", c.ShardID, a.Range)
		}
	}
	if i == 0 {
		// Unsharded tables live on the first shard: removing it would
		// silently make another shard their home.
		return false, rejectf("shard %q is the first shard, the home of unsharded tables", c.ShardID)
	}
	m.Shards = slices.Delete(m.Shards, i, i+1)
	return true, nil
}

func setHosts(m *Map, c Command) (bool, error) {
	if c.Shard == nil {
		return false, rejectf("set-hosts without a shard")
	}
	i := m.shardIndex(c.Shard.ID)
	if i < 0 {
		return false, rejectf("no shard %q", c.Shard.ID)
	}
	if err := checkHosts(*c.Shard); err != nil {
		return false, err
	}
	m.Shards[i] = cloneShard(*c.Shard)
	return true, nil
}

func setPrimary(m *Map, c Command) (bool, error) {
	i := m.shardIndex(c.ShardID)
	if i < 0 {
		return false, rejectf("no shard %q", c.ShardID)
	}
	sh := &m.Shards[i]
	if c.Host == sh.Primary {
		return false, rejectf("%s is already the primary of shard %q", c.Host, c.ShardID)
	}
	r := slices.Index(sh.Replicas, c.Host)
	if r < 0 {
		return false, rejectf("%q is not a replica of shard %q", c.Host, c.ShardID)
	}
	// The old primary is dropped, not demoted: after a failover it is a
	// diverged server until someone rebuilds it as a replica and adds it
	// back with set-hosts (no automatic fail-back).
	sh.Primary = c.Host
	sh.Replicas = slices.Delete(sh.Replicas, r, r+1)
	return true, nil
}

func addTable(m *Map, c Command) (bool, error) {
	if c.Table == nil {
		return false, rejectf("add-table without a table")
	}
	t := *c.Table
	if err := normalizeTable(&t); err != nil {
		return false, err
	}
	if i := m.tableIndex(t.Schema, t.Name); i >= 0 {
		m.Tables[i] = t
	} else {
		m.Tables = append(m.Tables, t)
	}
	return true, nil
}

func removeTable(m *Map, c Command) (bool, error) {
	if c.Table == nil {
		return false, rejectf("remove-table without a table")
	}
	schema := c.Table.Schema
	if schema == "" {
		schema = "public"
	}
	i := m.tableIndex(schema, c.Table.Name)
	if i < 0 {
		return false, rejectf("no table %s.%s", schema, c.Table.Name)
	}
	m.Tables = slices.Delete(m.Tables, i, i+1)
	return true, nil
}

func splitRange(m *Map, c Command) (bool, error) {
	// Every int64 lies in the keyspace, so At is always inside some range;
	// the only split that cannot cut is one at a range's start.
	i := m.rangeIndex(c.At)
	old := m.Ranges[i]
	if old.Range.Lo == c.At {
		return false, rejectf("%d is already a range boundary", c.At)
	}
	lower := Assignment{Range: keyspace.Range{Lo: old.Range.Lo, Hi: c.At}, Shard: old.Shard}
	upper := Assignment{Range: keyspace.Range{Lo: c.At, Hi: old.Range.Hi, ToEnd: old.Range.ToEnd}, Shard: old.Shard}
	m.Ranges = slices.Replace(m.Ranges, i, i+1, lower, upper)
	return true, nil
}

func assignRange(m *Map, c Command) (bool, error) {
	i := m.rangeIndex(c.At)
	if m.Ranges[i].Range.Lo != c.At {
		return false, rejectf("no range starts at %d (it lies inside %s)", c.At, m.Ranges[i].Range)
	}
	if _, ok := m.Shard(c.ShardID); !ok {
		return false, rejectf("no shard %q", c.ShardID)
	}
	if m.Ranges[i].Shard == c.ShardID {
		// Already done: a resumed move's cutover repeats this command.
		return false, nil
	}
	m.Ranges[i].Shard = c.ShardID
	return true, nil
}

func (s *state) registerNode(c Command) (*state, error) {
	if c.Node == nil || c.Node.ID == "" {
		return s, rejectf("register-node without a node id")
	}
	i, found := slices.BinarySearchFunc(s.Nodes, c.Node.ID, func(n NodeInfo, id string) int {
		return strings.Compare(n.ID, id)
	})
	if found && s.Nodes[i] == *c.Node {
		return s, nil
	}
	nodes := slices.Clone(s.Nodes)
	if found {
		nodes[i] = *c.Node
	} else {
		nodes = slices.Insert(nodes, i, *c.Node)
	}
	next := *s
	next.Nodes = nodes
	return &next, nil
}

func (s *state) removeNode(c Command) (*state, error) {
	i, found := slices.BinarySearchFunc(s.Nodes, c.NodeID, func(n NodeInfo, id string) int {
		return strings.Compare(n.ID, id)
	})
	if !found {
		return s, rejectf("no node %q in the directory", c.NodeID)
	}
	next := *s
	next.Nodes = slices.Delete(slices.Clone(s.Nodes), i, i+1)
	return &next, nil
}

// decideCommit records a commit decision. Recording one twice is the
// coordinator retrying after an unclear answer, not a conflict.
func (s *state) decideCommit(c Command) (*state, error) {
	list, err := addDecision(s.Decisions, s.Aborts, c, "decide-commit", "roll back")
	if err != nil || list == nil {
		return s, err
	}
	next := *s
	next.Decisions = list
	return &next, nil
}

// decideAbort records a rollback decision, refused when a commit decision
// came first (the transaction must then be committed).
func (s *state) decideAbort(c Command) (*state, error) {
	list, err := addDecision(s.Aborts, s.Decisions, c, "decide-abort", "commit")
	if err != nil || list == nil {
		return s, err
	}
	next := *s
	next.Aborts = list
	return &next, nil
}

// addDecision returns list with c.GID added (nil when it is there
// already), unless the opposite decision, in other, came first: the first
// decision in the log wins.
func addDecision(list, other []string, c Command, what, otherWay string) ([]string, error) {
	if c.GID == "" {
		return nil, rejectf("%s without a gid", what)
	}
	if _, decided := slices.BinarySearch(other, c.GID); decided {
		return nil, rejectf("transaction %s was already decided to %s", c.GID, otherWay)
	}
	i, found := slices.BinarySearch(list, c.GID)
	if found {
		return nil, nil
	}
	return slices.Insert(slices.Clone(list), i, c.GID), nil
}

// decisionDone forgets a commit decision (not an abort: see state.Aborts).
// Forgetting one that is gone is the recovery loop and the coordinator both
// finishing the same transaction.
func (s *state) decisionDone(c Command) (*state, error) {
	if c.GID == "" {
		return s, rejectf("decision-done without a gid")
	}
	i, found := slices.BinarySearch(s.Decisions, c.GID)
	if !found {
		return s, nil
	}
	next := *s
	next.Decisions = slices.Delete(slices.Clone(s.Decisions), i, i+1)
	return &next, nil
}

// checkHosts refuses a shard the router could not use: no id, no primary,
// or a host listed twice.
func checkHosts(sh Shard) error {
	if sh.ID == "" {
		return rejectf("a shard needs an id")
	}
	if sh.Primary == "" {
		return rejectf("shard %q needs a primary", sh.ID)
	}
	seen := map[string]bool{sh.Primary: true}
	for _, r := range sh.Replicas {
		if r == "" || seen[r] {
			return rejectf("shard %q lists host %q twice or empty", sh.ID, r)
		}
		seen[r] = true
	}
	return nil
}

// normalizeTable fills the default schema (as the configuration does) and
// refuses a table that is neither clearly sharded nor clearly reference.
func normalizeTable(t *Table) error {
	if t.Name == "" {
		return rejectf("a table needs a name")
	}
	if t.Schema == "" {
		t.Schema = "public"
	}
	switch {
	case t.Reference && t.Key != "":
		return rejectf("table %s.%s is either sharded (key) or reference, not both", t.Schema, t.Name)
	case !t.Reference && t.Key == "":
		return rejectf("table %s.%s needs a key column (sharded) or reference", t.Schema, t.Name)
	}
	return nil
}

// clone is a deep copy: the new map shares no slice with m, so editing it
// cannot reach a map someone is routing with.
func (m *Map) clone() *Map {
	c := &Map{
		Version: m.Version,
		Ranges:  slices.Clone(m.Ranges),
		Tables:  slices.Clone(m.Tables),
	}
	for _, sh := range m.Shards {
		c.Shards = append(c.Shards, cloneShard(sh))
	}
	return c
}

func cloneShard(sh Shard) Shard {
	sh.Replicas = slices.Clone(sh.Replicas)
	return sh
}

func (m *Map) shardIndex(id string) int {
	return slices.IndexFunc(m.Shards, func(s Shard) bool { return s.ID == id })
}

func (m *Map) tableIndex(schema, name string) int {
	return slices.IndexFunc(m.Tables, func(t Table) bool { return t.Schema == schema && t.Name == name })
}

// rangeIndex is the index of the range containing id; a valid map's
// ranges cover the keyspace, so there always is one.
func (m *Map) rangeIndex(id keyspace.ID) int {
	i, _ := slices.BinarySearchFunc(m.Ranges, id, func(a Assignment, id keyspace.ID) int {
		if a.Range.Contains(id) {
			return 0
		}
		if a.Range.Lo > id {
			return 1
		}
		return -1
	})
	return i
}
