package twopc_test

// Recovery against fake shards: which prepared transactions it settles,
// which way, which it leaves alone, and when it forgets a decision.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/twopc"
)

func TestRecover(t *testing.T) {
	mine := []string{twopc.NewGID("n1"), twopc.NewGID("n1"), twopc.NewGID("n1"), twopc.NewGID("n1")}
	other := twopc.NewGID("n2")
	const notOurs = "shardproxy:made-by-hand"
	cases := []struct {
		name       string
		prepared   [2][]string // per shard
		decided    []string
		inFlight   []string
		listErr    [2]error
		connErr    [2]error
		wantRes    []twopc.Resolution
		wantLeft   [2][]string
		wantForgot []string
		wantErr    bool
		foreign    int
	}{
		{
			name:     "decision commits, none rolls back",
			prepared: [2][]string{{mine[0], mine[1]}, {mine[0], mine[1]}},
			decided:  []string{mine[0]},
			wantRes: []twopc.Resolution{
				{Shard: "s1", GID: mine[0], Commit: true}, {Shard: "s1", GID: mine[1]},
				{Shard: "s2", GID: mine[0], Commit: true}, {Shard: "s2", GID: mine[1]},
			},
			wantForgot: []string{mine[0]},
		},
		{
			name:     "other nodes' and foreign gids are left alone",
			prepared: [2][]string{{other, notOurs}, {mine[2]}},
			wantRes:  []twopc.Resolution{{Shard: "s2", GID: mine[2]}},
			wantLeft: [2][]string{{other, notOurs}, nil},
			foreign:  2,
		},
		{
			name:     "in-flight gids are left to their coordinator",
			prepared: [2][]string{{mine[0]}, {mine[0]}},
			inFlight: []string{mine[0]},
			wantLeft: [2][]string{{mine[0]}, {mine[0]}},
		},
		{
			name:       "a decision nobody holds any more is forgotten",
			decided:    []string{mine[3]},
			wantForgot: []string{mine[3]},
		},
		{
			name:     "an unlisted shard keeps decisions from being forgotten",
			prepared: [2][]string{{mine[0]}, {mine[0]}},
			decided:  []string{mine[0], mine[3]},
			listErr:  [2]error{1: errBroken},
			wantRes:  []twopc.Resolution{{Shard: "s1", GID: mine[0], Commit: true}},
			wantLeft: [2][]string{nil, {mine[0]}},
			wantErr:  true,
		},
		{
			name:     "a shard that refuses connections keeps its gid held",
			prepared: [2][]string{{mine[0]}, {mine[0]}},
			decided:  []string{mine[0]},
			connErr:  [2]error{0: errBroken},
			wantRes:  []twopc.Resolution{{Shard: "s2", GID: mine[0], Commit: true}},
			wantLeft: [2][]string{{mine[0]}, nil},
			wantErr:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			log := newMemLog()
			for _, g := range tc.decided {
				log.decide(g)
			}
			var shards []*fakeShard
			var access []twopc.ShardAccess
			for i, id := range []string{"s1", "s2"} {
				sh := newShard(id)
				for _, g := range tc.prepared[i] {
					sh.prepare(g)
				}
				sh.listErr, sh.connErr = tc.listErr[i], tc.connErr[i]
				shards = append(shards, sh)
				access = append(access, sh.access())
			}
			res, err := twopc.Recover(ctx, log, "n1", access, func(gid string) bool { return slices.Contains(tc.inFlight, gid) })
			if (err != nil) != tc.wantErr {
				t.Fatalf("Recover error = %v, want error: %v", err, tc.wantErr)
			}
			if !slices.Equal(res.Resolved, tc.wantRes) {
				t.Errorf("Resolved = %+v\nwant       %+v", res.Resolved, tc.wantRes)
			}
			if !slices.Equal(res.Forgotten, tc.wantForgot) {
				t.Errorf("Forgotten = %q, want %q", res.Forgotten, tc.wantForgot)
			}
			if res.Foreign != tc.foreign || res.InFlight != 2*len(tc.inFlight) {
				t.Errorf("Foreign = %d, InFlight = %d", res.Foreign, res.InFlight)
			}
			for i, sh := range shards {
				want := slices.Clone(tc.wantLeft[i])
				slices.Sort(want)
				if got := sh.gids(); !slices.Equal(got, want) {
					t.Errorf("shard %s holds %q, want %q", sh.id, got, want)
				}
			}
		})
	}
}

// A transaction settled by someone else between the listing and the
// COMMIT/ROLLBACK PREPARED (SQLSTATE 42704) is not an error.
func TestRecoverAlreadyGone(t *testing.T) {
	sh := newShard("s1")
	gid := twopc.NewGID("n1")
	sh.prepare(gid)
	access := sh.access()
	list := access.List
	access.List = func(ctx context.Context) ([]twopc.Prepared, error) {
		out, err := list(ctx)
		sh.mu.Lock()
		delete(sh.prepared, gid) // resolved behind recovery's back
		sh.mu.Unlock()
		return out, err
	}
	res, err := twopc.Recover(context.Background(), newMemLog(), "n1", []twopc.ShardAccess{access}, nil)
	if err != nil || len(res.Resolved) != 0 {
		t.Fatalf("Recover = %+v, %v", res, err)
	}
}

func TestRecoverer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := newMemLog()
	c := newCoordinator(t, log, twopc.Hooks{})
	sh := newShard("s1")
	r, err := twopc.NewRecoverer(twopc.RecovererConfig{
		Coordinator: c,
		Shards:      func() []twopc.ShardAccess { return []twopc.ShardAccess{sh.access()} },
		Interval:    5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	// RunOnce settles what is there now.
	gid := c.NewGID()
	sh.prepare(gid)
	res, err := r.RunOnce(ctx)
	if err != nil || len(res.Resolved) != 1 || res.Resolved[0].Commit {
		t.Fatalf("RunOnce = %+v, %v", res, err)
	}

	// The loop settles what turns up later.
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	later := c.NewGID()
	sh.prepare(later)
	log.decide(later)
	deadline := time.After(10 * time.Second)
	for len(sh.gids()) != 0 {
		select {
		case <-deadline:
			t.Fatalf("the loop did not settle %s", later)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if got := sh.log(); !slices.Equal(got, []string{"rollback " + gid, "commit " + later}) {
		t.Fatalf("resolved %q", got)
	}
	if _, err := r.RunOnce(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce after cancel = %v", err)
	}
}

// A shard that hangs holds back only its own prepared transactions, for
// one bounded operation per pass; the other shard is settled in the same
// pass, and decisions the hung shard may still need are kept.
func TestRecoverHungShard(t *testing.T) {
	cases := []struct {
		name    string
		hang    func(s *fakeShard)
		wantErr string
	}{
		{name: "listing hangs", hang: func(s *fakeShard) { s.hangList = true }, wantErr: "listing prepared transactions on shard s1"},
		{name: "COMMIT PREPARED hangs", hang: func(s *fakeShard) { s.hangResolve = true }, wantErr: "shard s1 did not answer within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := newMemLog()
			c, err := twopc.NewCoordinator(twopc.Config{NodeID: "n1", Log: log, ResolveTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			s1, s2 := newShard("s1"), newShard("s2")
			a, b, d := c.NewGID(), c.NewGID(), c.NewGID()
			for _, g := range []string{a, b} {
				s1.prepare(g)
				s2.prepare(g)
				log.decide(g)
			}
			s2.prepare(d) // undecided: rolled back
			tc.hang(s1)

			started := time.Now()
			res, err := c.Recover(context.Background(), []twopc.ShardAccess{s1.access(), s2.access()})
			if took := time.Since(started); took > 5*time.Second {
				t.Fatalf("the pass took %s with a 200ms bound per operation", took)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Recover error %v, want one containing %q", err, tc.wantErr)
			}
			want := []twopc.Resolution{{Shard: "s2", GID: a, Commit: true}, {Shard: "s2", GID: b, Commit: true}, {Shard: "s2", GID: d}}
			slices.SortFunc(want, func(x, y twopc.Resolution) int { return strings.Compare(x.GID, y.GID) })
			if !slices.Equal(res.Resolved, want) {
				t.Fatalf("Resolved %+v, want %+v", res.Resolved, want)
			}
			if len(res.Forgotten) != 0 {
				t.Fatalf("forgot %q while s1 still holds them", res.Forgotten)
			}
			if got := s1.gids(); !slices.Equal(got, sortedGIDs(a, b)) {
				t.Fatalf("s1 holds %q", got)
			}
			// Once it answers again, the next pass finishes.
			s1.mu.Lock()
			s1.hangList, s1.hangResolve = false, false
			s1.mu.Unlock()
			res, err = c.Recover(context.Background(), []twopc.ShardAccess{s1.access(), s2.access()})
			if err != nil || len(s1.gids()) != 0 || len(res.Forgotten) != 2 {
				t.Fatalf("second pass: %+v, %v; s1 holds %q", res, err, s1.gids())
			}
		})
	}
}

func sortedGIDs(gids ...string) []string {
	slices.Sort(gids)
	return gids
}

func TestRecovererConfig(t *testing.T) {
	c := newCoordinator(t, newMemLog(), twopc.Hooks{})
	shards := func() []twopc.ShardAccess { return nil }
	for _, cfg := range []twopc.RecovererConfig{
		{Shards: shards},
		{Coordinator: c},
		{Coordinator: c, Shards: shards, Interval: -time.Second},
	} {
		if _, err := twopc.NewRecoverer(cfg); err == nil {
			t.Errorf("NewRecoverer(%+v) accepted", cfg)
		}
	}
}
