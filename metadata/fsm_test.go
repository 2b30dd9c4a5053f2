package metadata_test

// The state machine on its own, without Raft: every command's effect and
// refusals, version stamping, snapshot/restore, and determinism (the same
// log gives byte-equal state on every node).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

// fsmLog feeds commands to an FSM as consecutive log entries.
type fsmLog struct {
	t     *testing.T
	fsm   *metadata.FSM
	index uint64
}

func newFSMLog(t *testing.T) *fsmLog {
	return &fsmLog{t: t, fsm: metadata.NewFSM()}
}

// apply appends c and returns what Apply answered.
func (l *fsmLog) apply(c metadata.Command) error {
	l.t.Helper()
	data, err := metadata.EncodeCommand(c)
	if err != nil {
		l.t.Fatalf("EncodeCommand(%v): %v", c.Type, err)
	}
	l.index++
	resp := l.fsm.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data})
	if resp == nil {
		return nil
	}
	err, ok := resp.(error)
	if !ok {
		l.t.Fatalf("Apply returned %T, want error or nil", resp)
	}
	return err
}

func (l *fsmLog) mustApply(c metadata.Command) {
	l.t.Helper()
	if err := l.apply(c); err != nil {
		l.t.Fatalf("apply %v: %v", c.Type, err)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	canceled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.canceled = true; return nil }
func (s *memSink) Close() error  { return nil }

func snapshotBytes(t *testing.T, f *metadata.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// stateBytes is the snapshot without the applied index, which every entry
// advances, rejected or not.
func stateBytes(t *testing.T, f *metadata.FSM) []byte {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(snapshotBytes(t, f), &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["applied_index"]; !ok {
		t.Fatal("the snapshot has no applied_index")
	}
	delete(fields, "applied_index")
	out, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	hostS1  = "10.0.0.1:5432"
	hostS1r = "10.0.0.2:5432"
	hostS2  = "10.0.1.1:5432"
)

// seededLog is the state most cases start from: s1 (with a replica) and s2
// own half the keyspace each, s3 owns nothing, two tables, one node, one
// pending decision.
func seededLog(t *testing.T) *fsmLog {
	l := newFSMLog(t)
	l.mustApply(metadata.Command{Type: metadata.CmdSeed, Seed: &metadata.Map{
		Shards: []metadata.Shard{
			{ID: "s1", Primary: hostS1, Replicas: []string{hostS1r}},
			{ID: "s2", Primary: hostS2},
		},
		Tables: []metadata.Table{
			{Name: "accounts", Key: "id"},
			{Schema: "public", Name: "countries", Reference: true},
		},
	}})
	l.mustApply(metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: "s3", Primary: "10.0.2.1:5432"}})
	l.mustApply(metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{ID: "n1", RaftAddr: "n1:7001"}})
	l.mustApply(metadata.Command{Type: metadata.CmdDecideCommit, GID: "g1"})
	return l
}

func owners(m *metadata.Map) string {
	var parts []string
	for _, a := range m.Ranges {
		parts = append(parts, fmt.Sprintf("%d:%s", a.Range.Lo, a.Shard))
	}
	return strings.Join(parts, " ")
}

func TestApply(t *testing.T) {
	type check func(t *testing.T, f *metadata.FSM)
	cases := []struct {
		name string
		cmd  metadata.Command
		// wantRejected: Apply returns ErrRejected and the state is
		// byte-equal to before.
		wantRejected string
		// mapChanges: the map is a new one stamped with the entry's index;
		// otherwise it is the very same map.
		mapChanges bool
		check      check
	}{
		{
			name: "seed over an existing map is ignored",
			cmd:  metadata.Command{Type: metadata.CmdSeed, Seed: &metadata.Map{Shards: []metadata.Shard{{ID: "x", Primary: "h:1"}}}},
		},
		{
			name:       "add shard",
			cmd:        metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: "s4", Primary: "h4:1", Replicas: []string{"h4:2"}}},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if s, ok := f.Map().Shard("s4"); !ok || s.Primary != "h4:1" || len(s.Replicas) != 1 {
					t.Fatalf("s4 = %+v, %v", s, ok)
				}
			},
		},
		{name: "add shard without a shard", cmd: metadata.Command{Type: metadata.CmdAddShard}, wantRejected: "without a shard"},
		{name: "add existing shard", cmd: metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: "s1", Primary: "h:1"}}, wantRejected: "exists"},
		{name: "add shard without primary", cmd: metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: "s4"}}, wantRejected: "needs a primary"},
		{name: "add shard with a host twice", cmd: metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: "s4", Primary: "h:1", Replicas: []string{"h:1"}}}, wantRejected: "twice"},
		{
			name:       "remove shard without ranges",
			cmd:        metadata.Command{Type: metadata.CmdRemoveShard, ShardID: "s3"},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if _, ok := f.Map().Shard("s3"); ok {
					t.Fatal("s3 still there")
				}
			},
		},
		{name: "remove shard owning a range", cmd: metadata.Command{Type: metadata.CmdRemoveShard, ShardID: "s2"}, wantRejected: "owns range"},
		{name: "remove unknown shard", cmd: metadata.Command{Type: metadata.CmdRemoveShard, ShardID: "s9"}, wantRejected: "no shard"},
		{
			name:       "set hosts",
			cmd:        metadata.Command{Type: metadata.CmdSetHosts, Shard: &metadata.Shard{ID: "s2", Primary: "new:1", Replicas: []string{"new:2"}}},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if s, _ := f.Map().Shard("s2"); s.Primary != "new:1" || !slices.Equal(s.Replicas, []string{"new:2"}) {
					t.Fatalf("s2 = %+v", s)
				}
			},
		},
		{name: "set hosts of unknown shard", cmd: metadata.Command{Type: metadata.CmdSetHosts, Shard: &metadata.Shard{ID: "s9", Primary: "h:1"}}, wantRejected: "no shard"},
		{name: "set hosts without primary", cmd: metadata.Command{Type: metadata.CmdSetHosts, Shard: &metadata.Shard{ID: "s2"}}, wantRejected: "needs a primary"},
		{
			name:       "set primary to a replica drops the old primary",
			cmd:        metadata.Command{Type: metadata.CmdSetPrimary, ShardID: "s1", Host: hostS1r},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if s, _ := f.Map().Shard("s1"); s.Primary != hostS1r || len(s.Replicas) != 0 {
					t.Fatalf("s1 = %+v", s)
				}
			},
		},
		{name: "set primary to a stranger", cmd: metadata.Command{Type: metadata.CmdSetPrimary, ShardID: "s1", Host: "x:1"}, wantRejected: "not a replica"},
		{name: "set primary to the primary", cmd: metadata.Command{Type: metadata.CmdSetPrimary, ShardID: "s1", Host: hostS1}, wantRejected: "already the primary"},
		{name: "set primary of unknown shard", cmd: metadata.Command{Type: metadata.CmdSetPrimary, ShardID: "s9", Host: hostS1r}, wantRejected: "no shard"},
		{
			name:       "add table defaults the schema",
			cmd:        metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Name: "orders", Key: "account_id"}},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if got := f.Map().Tables[len(f.Map().Tables)-1]; got != (metadata.Table{Schema: "public", Name: "orders", Key: "account_id"}) {
					t.Fatalf("added %+v", got)
				}
			},
		},
		{
			name:       "add table replaces one of the same name",
			cmd:        metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Schema: "public", Name: "accounts", Key: "tenant"}},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if ts := f.Map().Tables; len(ts) != 2 || ts[0].Key != "tenant" {
					t.Fatalf("tables %+v", ts)
				}
			},
		},
		{name: "add table both sharded and reference", cmd: metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Name: "t", Key: "k", Reference: true}}, wantRejected: "not both"},
		{name: "add table neither sharded nor reference", cmd: metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Name: "t"}}, wantRejected: "needs a key"},
		{name: "add table without a name", cmd: metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Key: "k"}}, wantRejected: "needs a name"},
		{
			name:       "remove table",
			cmd:        metadata.Command{Type: metadata.CmdRemoveTable, Table: &metadata.Table{Name: "countries"}},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if ts := f.Map().Tables; len(ts) != 1 || ts[0].Name != "accounts" {
					t.Fatalf("tables %+v", ts)
				}
			},
		},
		{name: "remove unknown table", cmd: metadata.Command{Type: metadata.CmdRemoveTable, Table: &metadata.Table{Schema: "other", Name: "accounts"}}, wantRejected: "no table"},
		{
			name:       "split the lower range",
			cmd:        metadata.Command{Type: metadata.CmdSplitRange, At: -100},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				want := fmt.Sprintf("%d:s1 -100:s1 0:s2", int64(math.MinInt64))
				if got := owners(f.Map()); got != want {
					t.Fatalf("ranges %s, want %s", got, want)
				}
			},
		},
		{
			name:       "split the range running to the end",
			cmd:        metadata.Command{Type: metadata.CmdSplitRange, At: math.MaxInt64},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				rs := f.Map().Ranges
				if len(rs) != 3 || rs[1].Range.Hi != math.MaxInt64 || !rs[2].Range.ToEnd || rs[2].Shard != "s2" {
					t.Fatalf("ranges %+v", rs)
				}
			},
		},
		{name: "split at a boundary", cmd: metadata.Command{Type: metadata.CmdSplitRange, At: 0}, wantRejected: "already a range boundary"},
		{name: "split at the start of the keyspace", cmd: metadata.Command{Type: metadata.CmdSplitRange, At: math.MinInt64}, wantRejected: "already a range boundary"},
		{
			name:       "assign range",
			cmd:        metadata.Command{Type: metadata.CmdAssignRange, At: 0, ShardID: "s3"},
			mapChanges: true,
			check: func(t *testing.T, f *metadata.FSM) {
				if got := f.Map().Owner(42); got != "s3" {
					t.Fatalf("owner of 42 is %s", got)
				}
			},
		},
		{name: "assign range to its owner changes nothing", cmd: metadata.Command{Type: metadata.CmdAssignRange, At: 0, ShardID: "s2"}},
		{name: "assign a range that does not start there", cmd: metadata.Command{Type: metadata.CmdAssignRange, At: 5, ShardID: "s3"}, wantRejected: "no range starts"},
		{name: "assign range to unknown shard", cmd: metadata.Command{Type: metadata.CmdAssignRange, At: 0, ShardID: "s9"}, wantRejected: "no shard"},
		{
			name: "register node",
			cmd:  metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{ID: "n0", RaftAddr: "n0:7001", PGAddr: "n0:6432"}},
			check: func(t *testing.T, f *metadata.FSM) {
				if ns := f.Nodes(); len(ns) != 2 || ns[0].ID != "n0" || ns[0].PGAddr != "n0:6432" {
					t.Fatalf("nodes %+v", ns)
				}
			},
		},
		{
			name: "register node again updates it",
			cmd:  metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{ID: "n1", RaftAddr: "n1:7001", HTTPAddr: "n1:9187"}},
			check: func(t *testing.T, f *metadata.FSM) {
				if n, _ := f.Node("n1"); n.HTTPAddr != "n1:9187" || len(f.Nodes()) != 1 {
					t.Fatalf("nodes %+v", f.Nodes())
				}
			},
		},
		{name: "register node without id", cmd: metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{RaftAddr: "x:1"}}, wantRejected: "without a node id"},
		{
			name: "remove node",
			cmd:  metadata.Command{Type: metadata.CmdRemoveNode, NodeID: "n1"},
			check: func(t *testing.T, f *metadata.FSM) {
				if len(f.Nodes()) != 0 {
					t.Fatalf("nodes %+v", f.Nodes())
				}
			},
		},
		{name: "remove unknown node", cmd: metadata.Command{Type: metadata.CmdRemoveNode, NodeID: "n9"}, wantRejected: "no node"},
		{
			name: "decide commit",
			cmd:  metadata.Command{Type: metadata.CmdDecideCommit, GID: "g0"},
			check: func(t *testing.T, f *metadata.FSM) {
				if !f.Decided("g0") || !slices.Equal(f.PendingDecisions(), []string{"g0", "g1"}) {
					t.Fatalf("decisions %v", f.PendingDecisions())
				}
			},
		},
		{name: "decide commit again changes nothing", cmd: metadata.Command{Type: metadata.CmdDecideCommit, GID: "g1"}},
		{name: "decide commit without gid", cmd: metadata.Command{Type: metadata.CmdDecideCommit}, wantRejected: "without a gid"},
		{
			name: "decision done",
			cmd:  metadata.Command{Type: metadata.CmdDecisionDone, GID: "g1"},
			check: func(t *testing.T, f *metadata.FSM) {
				if f.Decided("g1") || len(f.PendingDecisions()) != 0 {
					t.Fatalf("decisions %v", f.PendingDecisions())
				}
			},
		},
		{name: "decision done twice changes nothing", cmd: metadata.Command{Type: metadata.CmdDecisionDone, GID: "g9"}},
		{name: "decision done without gid", cmd: metadata.Command{Type: metadata.CmdDecisionDone}, wantRejected: "without a gid"},
		{
			name: "decide abort",
			cmd:  metadata.Command{Type: metadata.CmdDecideAbort, GID: "g2"},
			check: func(t *testing.T, f *metadata.FSM) {
				if !f.Aborted("g2") || f.Decided("g2") || f.Aborted("g1") {
					t.Fatal("abort not recorded as such")
				}
			},
		},
		{name: "decide abort after commit", cmd: metadata.Command{Type: metadata.CmdDecideAbort, GID: "g1"}, wantRejected: "decided to commit"},
		{name: "decide abort without gid", cmd: metadata.Command{Type: metadata.CmdDecideAbort}, wantRejected: "without a gid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := seededLog(t)
			before := l.fsm.Map()
			beforeBytes := stateBytes(t, l.fsm)
			err := l.apply(tc.cmd)
			after := l.fsm.Map()
			if tc.wantRejected != "" {
				if !errors.Is(err, metadata.ErrRejected) || !strings.Contains(err.Error(), tc.wantRejected) {
					t.Fatalf("Apply = %v, want ErrRejected containing %q", err, tc.wantRejected)
				}
				if after != before || !bytes.Equal(stateBytes(t, l.fsm), beforeBytes) {
					t.Fatal("a rejected command changed the state")
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply = %v", err)
			}
			switch {
			case tc.mapChanges && (after == before || after.Version != l.index):
				t.Fatalf("map version %d, want a new map at index %d", after.Version, l.index)
			case !tc.mapChanges && after != before:
				t.Fatalf("map changed (version %d -> %d)", before.Version, after.Version)
			}
			if err := after.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, l.fsm)
			}
		})
	}
}

// TestCommitAbortRace: whichever decision reaches the log first wins, for
// good: done forgets a commit, never an abort.
func TestCommitAbortRace(t *testing.T) {
	l := newFSMLog(t)
	decide := func(typ metadata.CommandType, gid string) error {
		return l.apply(metadata.Command{Type: typ, GID: gid})
	}
	steps := []struct {
		typ          metadata.CommandType
		gid          string
		wantRejected bool
	}{
		{metadata.CmdDecideAbort, "a", false},
		{metadata.CmdDecideAbort, "a", false}, // a second recovery pass
		{metadata.CmdDecideCommit, "a", true}, // the slow coordinator
		{metadata.CmdDecisionDone, "a", false},
		{metadata.CmdDecideCommit, "a", true}, // still refused after done
		{metadata.CmdDecideCommit, "c", false},
		{metadata.CmdDecideAbort, "c", true},
	}
	for i, st := range steps {
		err := decide(st.typ, st.gid)
		if got := errors.Is(err, metadata.ErrRejected); got != st.wantRejected {
			t.Fatalf("step %d (%v %s): %v, want rejected=%v", i, st.typ, st.gid, err, st.wantRejected)
		}
	}
	if !l.fsm.Aborted("a") || l.fsm.Decided("a") || !l.fsm.Decided("c") || l.fsm.Aborted("c") {
		t.Fatal("final decisions wrong")
	}
}

func TestApplyBeforeSeed(t *testing.T) {
	cases := []struct {
		name         string
		cmd          metadata.Command
		wantRejected string
	}{
		{"map change without a map", metadata.Command{Type: metadata.CmdSplitRange, At: 1}, "not seeded"},
		{"seed without a map", metadata.Command{Type: metadata.CmdSeed}, "seed without a map"},
		{"seed without shards", metadata.Command{Type: metadata.CmdSeed, Seed: &metadata.Map{}}, "no ranges"},
		{"seed with a table twice", metadata.Command{Type: metadata.CmdSeed, Seed: &metadata.Map{
			Shards: []metadata.Shard{{ID: "s1", Primary: "h:1"}},
			Tables: []metadata.Table{{Name: "t", Key: "k"}, {Schema: "public", Name: "t", Key: "k"}},
		}}, "twice"},
		{"seed whose ranges leave a gap", metadata.Command{Type: metadata.CmdSeed, Seed: &metadata.Map{
			Shards: []metadata.Shard{{ID: "s1", Primary: "h:1"}},
			Ranges: []metadata.Assignment{{Range: keyspace.Range{Lo: math.MinInt64, Hi: 0}, Shard: "s1"}},
		}}, "only the last range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newFSMLog(t)
			if err := l.apply(tc.cmd); !errors.Is(err, metadata.ErrRejected) || !strings.Contains(err.Error(), tc.wantRejected) {
				t.Fatalf("Apply = %v, want ErrRejected containing %q", err, tc.wantRejected)
			}
			if l.fsm.Map() != nil {
				t.Fatal("a rejected seed installed a map")
			}
		})
	}

	t.Run("seed stamps the index and owns the input", func(t *testing.T) {
		l := newFSMLog(t)
		l.mustApply(metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{ID: "n1"}})
		seed, err := metadata.NewMap(77, []metadata.Shard{{ID: "s1", Primary: "h:1"}, {ID: "s2", Primary: "h:2"}})
		if err != nil {
			t.Fatal(err)
		}
		l.mustApply(metadata.Command{Type: metadata.CmdSeed, Seed: seed})
		m := l.fsm.Map()
		if m.Version != 2 || m == seed || len(m.Ranges) != 2 {
			t.Fatalf("map %+v", m)
		}
	})
}

func TestApplyUnknownEntriesPanic(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"unknown type", append([]byte{1}, `{"type":200}`...)},
		{"unknown format", append([]byte{9}, `{"type":1}`...)},
		{"empty entry", nil},
		{"not json", []byte{1, '{'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Apply did not panic")
				}
			}()
			metadata.NewFSM().Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: tc.data})
		})
	}
	if _, err := metadata.EncodeCommand(metadata.Command{Type: 200}); err == nil {
		t.Fatal("EncodeCommand accepted an unknown type")
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for typ := metadata.CmdSeed; typ.Known(); typ++ {
		c := metadata.Command{Type: typ, ShardID: "s1", At: math.MinInt64, GID: "g", Table: &metadata.Table{Name: "t"}}
		data, err := metadata.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := metadata.DecodeCommand(data)
		if err != nil || got.Type != typ || got.At != c.At || got.Table.Name != "t" {
			t.Fatalf("%v: round trip gave %+v, %v", typ, got, err)
		}
	}
}

// randomLog is a long, varied log: splits, moves, shard and node changes,
// decisions, and some commands that are rejected.
func randomLog(seed uint64, n int) []metadata.Command {
	rng := rand.New(rand.NewPCG(seed, seed))
	first, _ := metadata.NewMap(0, []metadata.Shard{{ID: "s1", Primary: "h:1"}, {ID: "s2", Primary: "h:2"}})
	log := []metadata.Command{{Type: metadata.CmdSeed, Seed: first}}
	shardIDs := []string{"s1", "s2", "s3", "s4"}
	for range n {
		var c metadata.Command
		switch rng.IntN(8) {
		case 0, 1:
			c = metadata.Command{Type: metadata.CmdSplitRange, At: keyspace.ID(rng.Int64())}
		case 2:
			c = metadata.Command{Type: metadata.CmdAssignRange, At: keyspace.ID(rng.Int64N(4)), ShardID: shardIDs[rng.IntN(4)]}
		case 3:
			id := shardIDs[rng.IntN(4)]
			c = metadata.Command{Type: metadata.CmdAddShard, Shard: &metadata.Shard{ID: id, Primary: id + ":1", Replicas: []string{id + ":2"}}}
		case 4:
			c = metadata.Command{Type: metadata.CmdRegisterNode, Node: &metadata.NodeInfo{ID: fmt.Sprint("n", rng.IntN(5)), PGAddr: fmt.Sprint("p", rng.IntN(3))}}
		case 5:
			c = metadata.Command{Type: metadata.CmdDecideCommit, GID: fmt.Sprint("g", rng.IntN(20))}
		case 6:
			typ := metadata.CmdDecisionDone
			if rng.IntN(3) == 0 {
				typ = metadata.CmdDecideAbort
			}
			c = metadata.Command{Type: typ, GID: fmt.Sprint("g", rng.IntN(20))}
		case 7:
			c = metadata.Command{Type: metadata.CmdAddTable, Table: &metadata.Table{Name: fmt.Sprint("t", rng.IntN(5)), Key: "k"}}
		}
		log = append(log, c)
	}
	return log
}

func TestApplyIsDeterministic(t *testing.T) {
	log := randomLog(1, 500)
	rejected := 0
	replay := func(restoreAt int) []byte {
		rejected = 0
		l := newFSMLog(t)
		for i, c := range log {
			if i == restoreAt {
				// A node that joins late starts from a snapshot.
				restored := metadata.NewFSM()
				if err := restored.Restore(readCloser{bytes.NewReader(snapshotBytes(t, l.fsm))}); err != nil {
					t.Fatal(err)
				}
				l.fsm = restored
			}
			if err := l.apply(c); err != nil { // rejections are part of the outcome
				rejected++
			}
			if m := l.fsm.Map(); m != nil {
				if err := m.Validate(); err != nil {
					t.Fatalf("entry %d: %v", i+1, err)
				}
			}
		}
		return snapshotBytes(t, l.fsm)
	}
	want := replay(-1)
	for _, restoreAt := range []int{-1, 1, 250, len(log) - 1} {
		if got := replay(restoreAt); !bytes.Equal(got, want) {
			t.Fatalf("replay restored at %d differs:\n%s\nwant\n%s", restoreAt, got, want)
		}
	}
	if rejected < 20 || rejected > len(log)/2 || !bytes.Contains(want, []byte(`"decisions"`)) {
		t.Fatalf("the log exercised too little: %d of %d rejected, state %s", rejected, len(log), want)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	cases := []struct {
		name, snapshot string
	}{
		{"not json", "{"},
		{"other format", `{"format":2}`},
		{"invalid map", `{"format":1,"map":{"Version":3,"Shards":[{"ID":"s1"}]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := seededLog(t)
			before := l.fsm.Map()
			if err := l.fsm.Restore(readCloser{bytes.NewReader([]byte(tc.snapshot))}); err == nil {
				t.Fatal("Restore accepted it")
			}
			if l.fsm.Map() != before {
				t.Fatal("a failed Restore changed the state")
			}
		})
	}
}
