package twopc_test

// The coordinator against fake shards: every way a commit can go, and what
// each participant was told and holds afterwards.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/twopc"
)

// commitWant is what TestCommit expects of one case.
type commitWant struct {
	err         error  // errors.Is target; nil: success
	code        string // SQLSTATE found by errors.As, if any
	resolved    [3][]string
	preparedAll [3]int // prepared transactions left per shard
	decided     bool   // decision still recorded after Commit
	// pipelined is resolved when the phases are pipelined and it
	// differs: every participant then got PREPARE, also those after
	// the one that failed.
	pipelined *[3][]string
}

func TestCommit(t *testing.T) {
	serverErr := &pgErr{"23505", "duplicate key value violates unique constraint"}
	cases := []struct {
		name  string
		fail  [3][]failure
		setup func(*memLog, [3]*session)
		want  commitWant
	}{
		{
			name: "all commit",
			want: commitWant{resolved: [3][]string{{"commit G"}, {"commit G"}, {"commit G"}}},
		},
		{
			name: "second PREPARE fails with a server error",
			fail: [3][]failure{1: {{prefix: "PREPARE", err: serverErr}}},
			want: commitWant{err: serverErr, code: "23505", resolved: [3][]string{{"rollback G"}, nil, nil},
				pipelined: &[3][]string{{"rollback G"}, nil, {"rollback G"}}},
		},
		{
			name: "first PREPARE fails",
			fail: [3][]failure{0: {{prefix: "PREPARE", err: serverErr}}},
			want: commitWant{err: serverErr, code: "23505",
				pipelined: &[3][]string{nil, {"rollback G"}, {"rollback G"}}},
		},
		{
			name:  "transaction had failed on the last shard",
			setup: func(_ *memLog, s [3]*session) { s[2].txFailed = true },
			want:  commitWant{err: twopc.ErrRolledBack, resolved: [3][]string{{"rollback G"}, {"rollback G"}, nil}},
		},
		{
			name: "connection breaks after the second PREPARE took effect",
			fail: [3][]failure{1: {{prefix: "PREPARE", err: errBroken, lost: true}}},
			// The second stays prepared without a decision: recovery's job.
			want: commitWant{err: errBroken, resolved: [3][]string{{"rollback G"}, nil, nil}, preparedAll: [3]int{0, 1, 0},
				pipelined: &[3][]string{{"rollback G"}, nil, {"rollback G"}}},
		},
		{
			name:  "decision certainly not recorded",
			setup: func(l *memLog, _ [3]*session) { l.commitErr = twopc.ErrNotRecorded },
			want:  commitWant{err: twopc.ErrNotRecorded, resolved: [3][]string{{"rollback G"}, {"rollback G"}, {"rollback G"}}},
		},
		{
			name: "decision in doubt",
			setup: func(l *memLog, _ [3]*session) {
				l.commitErr = errors.New("fsync: input/output error")
				l.recordAnyway = true
			},
			want: commitWant{err: twopc.ErrInDoubt, code: "08007", preparedAll: [3]int{1, 1, 1}, decided: true},
		},
		{
			name: "COMMIT PREPARED fails after the decision",
			fail: [3][]failure{1: {{prefix: "COMMIT PREPARED", err: errBroken}}},
			// Committed as far as the client knows; the decision stays for
			// recovery.
			want: commitWant{resolved: [3][]string{{"commit G"}, nil, {"commit G"}}, preparedAll: [3]int{0, 1, 0}, decided: true},
		},
	}
	for _, pipelined := range []bool{false, true} {
		for _, tc := range cases {
			if pipelined && tc.want.pipelined != nil {
				tc.want.resolved = *tc.want.pipelined
			}
			name := tc.name
			if pipelined {
				name += " (pipelined)"
			}
			t.Run(name, func(t *testing.T) { testCommitCase(t, tc.fail, tc.setup, tc.want, pipelined) })
		}
	}
}

func testCommitCase(t *testing.T, fail [3][]failure, setup func(*memLog, [3]*session), want commitWant, pipelined bool) {
	ctx := context.Background()
	log := newMemLog()
	c := newCoordinator(t, log, twopc.Hooks{})
	gid := c.NewGID()
	var shards [3]*fakeShard
	var sessions [3]*session
	var ps []twopc.Participant
	for i := range shards {
		shards[i] = newShard([]string{"s1", "s2", "s3"}[i])
		sessions[i] = shards[i].begin(fail[i]...)
		if pipelined {
			ps = append(ps, &pipelinedSession{session: sessions[i]})
		} else {
			ps = append(ps, sessions[i])
		}
	}
	if setup != nil {
		setup(log, sessions)
	}
	err := c.Commit(ctx, gid, ps)
	switch {
	case want.err == nil && err != nil:
		t.Fatalf("Commit: %v", err)
	case want.err != nil && !errors.Is(err, want.err):
		t.Fatalf("Commit error = %v, want one wrapping %v", err, want.err)
	}
	if want.code != "" {
		var s interface{ SQLState() string }
		if !errors.As(err, &s) || s.SQLState() != want.code {
			t.Fatalf("Commit error %v: want SQLSTATE %s", err, want.code)
		}
	}
	if want.code == "08007" {
		if pe := pgerror.From(err); pe.Code != "08007" {
			t.Fatalf("pgerror.From(%v).Code = %s", err, pe.Code)
		}
	}
	for i, sh := range shards {
		var resolved []string
		for _, r := range want.resolved[i] {
			resolved = append(resolved, strings.Replace(r, "G", gid, 1))
		}
		if got := sh.log(); !slices.Equal(got, resolved) {
			t.Errorf("shard %s resolved %q, want %q", sh.id, got, resolved)
		}
		if got := len(sh.gids()); got != want.preparedAll[i] {
			t.Errorf("shard %s holds %d prepared transactions, want %d", sh.id, got, want.preparedAll[i])
		}
		if sessions[i].inTx {
			t.Errorf("shard %s: session left inside a transaction; calls %q", sh.id, sessions[i].calls)
		}
	}
	if got, _ := log.Decided(gid); got != want.decided {
		t.Errorf("Decided = %v, want %v", got, want.decided)
	}
	if c.InFlight(gid) {
		t.Error("gid still in flight after Commit returned")
	}

	// Whatever was left behind, recovery settles it consistently.
	var access []twopc.ShardAccess
	for _, sh := range shards {
		access = append(access, sh.access())
	}
	if _, err := c.Recover(ctx, access); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	committed := want.err == nil || errors.Is(err, twopc.ErrInDoubt) && want.decided
	for _, sh := range shards {
		if g := sh.gids(); len(g) != 0 {
			t.Errorf("after recovery shard %s still holds %q", sh.id, g)
		}
		for _, r := range sh.log() {
			if strings.HasPrefix(r, "commit") != committed {
				t.Errorf("shard %s: %q, but the transaction committed=%v", sh.id, r, committed)
			}
		}
	}
	if p, _ := log.Pending(); len(p) != 0 {
		t.Errorf("decisions still pending after recovery: %q", p)
	}
}

// Pipelined, a PREPARE that cannot be sent to one shard (its connection
// broke) still leaves the others prepared: they are rolled back, the
// broken one is left to the server (its transaction ends with the
// connection), and the send's error is returned.
func TestCommitPipelinedSendFails(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	c := newCoordinator(t, log, twopc.Hooks{})
	gid := c.NewGID()
	var shards [3]*fakeShard
	var ps []twopc.Participant
	for i := range shards {
		shards[i] = newShard([]string{"s1", "s2", "s3"}[i])
		p := &pipelinedSession{session: shards[i].begin()}
		if i == 1 {
			p.sendErr = errBroken
		}
		ps = append(ps, p)
	}
	if err := c.Commit(ctx, gid, ps); !errors.Is(err, errBroken) {
		t.Fatalf("Commit = %v, want the broken connection's error", err)
	}
	for i, want := range [][]string{{"rollback " + gid}, nil, {"rollback " + gid}} {
		if got := shards[i].log(); !slices.Equal(got, want) {
			t.Errorf("shard %s resolved %q, want %q", shards[i].id, got, want)
		}
		if g := shards[i].gids(); len(g) != 0 {
			t.Errorf("shard %s still holds %q", shards[i].id, g)
		}
	}
	if calls := ps[1].(*pipelinedSession).calls; len(calls) != 1 {
		t.Errorf("the broken shard got %q, want only the PREPARE it could not send", calls)
	}
}

func TestCommitOneParticipant(t *testing.T) {
	ctx := context.Background()
	c := newCoordinator(t, newMemLog(), twopc.Hooks{
		AfterPrepare: func(string) { t.Error("one participant must not be prepared") },
	})
	sh := newShard("s1")
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{sh.begin()}); err != nil {
		t.Fatal(err)
	}
	if got := sh.log(); !slices.Equal(got, []string{"commit (one phase)"}) {
		t.Fatalf("resolved %q", got)
	}
	failed := sh.begin()
	failed.txFailed = true
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{failed}); !errors.Is(err, twopc.ErrRolledBack) {
		t.Fatalf("Commit of a failed transaction = %v, want ErrRolledBack", err)
	}
	if err := c.Commit(ctx, c.NewGID(), nil); err != nil {
		t.Fatalf("Commit without participants = %v", err)
	}
}

func TestCommitRefusesForeignGID(t *testing.T) {
	c := newCoordinator(t, newMemLog(), twopc.Hooks{})
	for _, gid := range []string{twopc.NewGID("n2"), "my-own-gid", ""} {
		sh := newShard("s1")
		if err := c.Commit(context.Background(), gid, []twopc.Participant{sh.begin(), newShard("s2").begin()}); err == nil {
			t.Errorf("Commit accepted gid %q", gid)
		}
	}
}

func TestCommitCancelled(t *testing.T) {
	t.Run("before the decision: rolled back", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		log := newMemLog()
		c := newCoordinator(t, log, twopc.Hooks{AfterPrepare: func(string) { cancel() }})
		a, b := newShard("s1"), newShard("s2")
		err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a.begin(), b.begin()})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Commit = %v, want context.Canceled", err)
		}
		for _, sh := range []*fakeShard{a, b} {
			if len(sh.gids()) != 0 || len(sh.log()) != 1 || !strings.HasPrefix(sh.log()[0], "rollback") {
				t.Errorf("shard %s: prepared %q, resolved %q", sh.id, sh.gids(), sh.log())
			}
		}
	})
	t.Run("after the decision: committed all the same", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := newCoordinator(t, newMemLog(), twopc.Hooks{AfterDecision: func(string) { cancel() }})
		a, b := newShard("s1"), newShard("s2")
		if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a.begin(), b.begin()}); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		for _, sh := range []*fakeShard{a, b} {
			if len(sh.log()) != 1 || !strings.HasPrefix(sh.log()[0], "commit") {
				t.Errorf("shard %s resolved %q", sh.id, sh.log())
			}
		}
	})
}

// Recovery running while a transaction sits between PREPARE and its
// decision must leave it alone, or the commit that follows would be
// partial.
func TestRecoverSkipsInFlight(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	a, b := newShard("s1"), newShard("s2")
	access := []twopc.ShardAccess{a.access(), b.access()}
	var c *twopc.Coordinator
	var during twopc.Result
	c = newCoordinator(t, log, twopc.Hooks{AfterPrepare: func(gid string) {
		var err error
		if during, err = c.Recover(ctx, access); err != nil {
			t.Errorf("Recover: %v", err)
		}
	}})
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a.begin(), b.begin()}); err != nil {
		t.Fatal(err)
	}
	if during.InFlight != 2 || len(during.Resolved) != 0 {
		t.Fatalf("recovery during the commit: %+v", during)
	}
	for _, sh := range []*fakeShard{a, b} {
		if len(sh.log()) != 1 || !strings.HasPrefix(sh.log()[0], "commit") {
			t.Errorf("shard %s resolved %q", sh.id, sh.log())
		}
	}
}

// Two processes with one node_id (a misconfiguration): the twin's
// recovery runs while the first one commits. A twin started before the
// transaction leaves its prepared transactions alone (its gids carry
// another incarnation and are younger than the twin). A twin started
// after the PREPAREs takes them for leftovers of an earlier run and rolls
// them back; the first then tells its client 08007, not COMMIT.
func TestCommitWithTwinNode(t *testing.T) {
	for _, c := range []struct {
		name           string
		twinFirst      bool
		wantTwin       int
		wantRolledBack int
		wantCode       pgerror.Code // "" : committed
	}{
		{"twin started before the transaction", true, 2, 0, ""},
		{"twin started after its PREPAREs", false, 0, 2, "08007"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := newShard("s1"), newShard("s2")
			access := []twopc.ShardAccess{a.access(), b.access()}
			var twin *twopc.Coordinator
			if c.twinFirst {
				twin = newCoordinator(t, newMemLog(), twopc.Hooks{}) // same node id, its own log
			}
			var during twopc.Result
			coord := newCoordinator(t, newMemLog(), twopc.Hooks{AfterPrepare: func(string) {
				if twin == nil {
					twin = newCoordinator(t, newMemLog(), twopc.Hooks{})
				}
				var err error
				if during, err = twin.Recover(ctx, access); err != nil {
					t.Errorf("the twin's Recover: %v", err)
				}
			}})
			err := coord.Commit(ctx, coord.NewGID(), []twopc.Participant{a.begin(), b.begin()})
			rolledBack := 0
			for _, r := range during.Resolved {
				if !r.Commit {
					rolledBack++
				}
			}
			if during.Twin != c.wantTwin || rolledBack != c.wantRolledBack {
				t.Fatalf("the twin's recovery: %+v, want %d left alone and %d rolled back", during, c.wantTwin, c.wantRolledBack)
			}
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("Commit = %v", err)
				}
				for _, sh := range []*fakeShard{a, b} {
					if len(sh.log()) != 1 || !strings.HasPrefix(sh.log()[0], "commit") {
						t.Errorf("shard %s resolved %q", sh.id, sh.log())
					}
				}
				return
			}
			var pe *pgerror.Error
			if !errors.Is(err, twopc.ErrInDoubt) || !errors.As(err, &pe) || pe.Code != c.wantCode || !strings.Contains(pe.Hint, `node_id "n1"`) {
				t.Fatalf("Commit = %v (%+v), want %s naming node_id n1", err, pe, c.wantCode)
			}
		})
	}
}

func TestCommitDuplicateInFlight(t *testing.T) {
	ctx := context.Background()
	var c *twopc.Coordinator
	var inner error
	c = newCoordinator(t, newMemLog(), twopc.Hooks{AfterPrepare: func(gid string) {
		inner = c.Commit(ctx, gid, []twopc.Participant{newShard("x").begin(), newShard("y").begin()})
	}})
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{newShard("s1").begin(), newShard("s2").begin()}); err != nil {
		t.Fatal(err)
	}
	if inner == nil {
		t.Fatal("a second Commit of an in-flight gid was accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []twopc.Config{
		{NodeID: "", Log: newMemLog()},
		{NodeID: "n1"},
		{NodeID: "n1", Log: newMemLog(), ResolveTimeout: -1},
		{NodeID: "bad\nid", Log: newMemLog()},
	} {
		if _, err := twopc.NewCoordinator(cfg); err == nil {
			t.Errorf("NewCoordinator(%+v) accepted", cfg)
		}
	}
}
