package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/metadata"
)

// fakeRaft records what a doneBatcher proposes and answers as told.
type fakeRaft struct {
	mu       sync.Mutex
	batches  [][]metadata.Command // applyAll calls
	forwards []metadata.Command   // applyOne calls
	anywhere [][]metadata.Command // applyAnywhere calls
	// answer decides applyAll's return; nil: every command applied.
	answer  func(cmds []metadata.Command) ([]error, error)
	applied chan struct{} // signalled after each applyAll
}

// propose records cmds in *into and answers as f is told.
func (f *fakeRaft) propose(into *[][]metadata.Command) func(context.Context, []metadata.Command) ([]error, error) {
	return func(_ context.Context, cmds []metadata.Command) ([]error, error) {
		f.mu.Lock()
		*into = append(*into, slices.Clone(cmds))
		answer := f.answer
		f.mu.Unlock()
		defer func() { f.applied <- struct{}{} }()
		if answer != nil {
			return answer(cmds)
		}
		return make([]error, len(cmds)), nil
	}
}

func newTestBatcher(f *fakeRaft, log *bytes.Buffer) *doneBatcher {
	f.applied = make(chan struct{}, 100)
	return &doneBatcher{
		applyAll: f.propose(&f.batches),
		applyOne: func(_ context.Context, c metadata.Command) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.forwards = append(f.forwards, c)
			return nil
		},
		applyAnywhere: f.propose(&f.anywhere),
		log:           slog.New(slog.NewTextHandler(log, nil)),
		wake:          make(chan struct{}, 1),
	}
}

func done(gids ...string) []metadata.Command {
	var out []metadata.Command
	for _, g := range gids {
		out = append(out, metadata.Command{Type: metadata.CmdDecisionDone, GID: g})
	}
	return out
}

func queuedGIDs(b *doneBatcher) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.queued)
}

func TestCommitDecisionCarriesQueuedDones(t *testing.T) {
	commit := metadata.Command{Type: metadata.CmdDecideCommit, GID: "c"}
	errBroken := errors.New("raft log broken")
	tests := []struct {
		name         string
		answer       func(cmds []metadata.Command) ([]error, error)
		wantErr      error
		wantBatches  [][]metadata.Command
		wantForwards []metadata.Command
		wantQueued   []string
	}{
		{
			name:        "leader: one write with the dones first",
			wantBatches: [][]metadata.Command{append(done("d1", "d2"), commit)},
		},
		{
			name:        "the commit's own rejection is its outcome",
			answer:      func(cmds []metadata.Command) ([]error, error) { return []error{nil, nil, metadata.ErrRejected}, nil },
			wantErr:     metadata.ErrRejected,
			wantBatches: [][]metadata.Command{append(done("d1", "d2"), commit)},
		},
		{
			name: "follower: the commit is forwarded alone, the dones stay queued",
			answer: func(cmds []metadata.Command) ([]error, error) {
				return nil, &metadata.ErrNotLeader{}
			},
			wantBatches:  [][]metadata.Command{append(done("d1", "d2"), commit)},
			wantForwards: []metadata.Command{commit},
			wantQueued:   []string{"d1", "d2"},
		},
		{
			name: "a failure midway: dones without an outcome are queued again",
			answer: func(cmds []metadata.Command) ([]error, error) {
				return []error{nil}, errBroken
			},
			wantErr:     errBroken,
			wantBatches: [][]metadata.Command{append(done("d1", "d2"), commit)},
			wantQueued:  []string{"d2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRaft{answer: tc.answer}
			b := newTestBatcher(f, &bytes.Buffer{})
			b.add("d1", "d2")
			err := b.applyWith(context.Background(), commit)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("applyWith = %v, want %v", err, tc.wantErr)
			}
			if fmt.Sprint(f.batches) != fmt.Sprint(tc.wantBatches) {
				t.Errorf("proposed %v, want %v", f.batches, tc.wantBatches)
			}
			if fmt.Sprint(f.forwards) != fmt.Sprint(tc.wantForwards) {
				t.Errorf("forwarded %v, want %v", f.forwards, tc.wantForwards)
			}
			if got := queuedGIDs(b); !slices.Equal(got, tc.wantQueued) {
				t.Errorf("queued %v, want %v", got, tc.wantQueued)
			}
		})
	}
}

func TestDoneFlush(t *testing.T) {
	many := make([]string, maxDoneBatch+3)
	for i := range many {
		many[i] = fmt.Sprint("g", i)
	}
	tests := []struct {
		name      string
		queue     []string
		answer    func(cmds []metadata.Command) ([]error, error)
		wantSizes []int // of the batches written
		wantLog   string
	}{
		{name: "nothing queued, nothing written", wantSizes: nil},
		{name: "in batches of maxDoneBatch", queue: many, wantSizes: []int{maxDoneBatch, 3}},
		{
			name: "failures are logged, not kept", queue: []string{"a", "b"},
			answer:    func([]metadata.Command) ([]error, error) { return []error{nil, metadata.ErrRejected}, nil },
			wantSizes: []int{2}, wantLog: "forgetting finished decisions failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRaft{answer: tc.answer}
			var log bytes.Buffer
			b := newTestBatcher(f, &log)
			if len(tc.queue) > 0 {
				b.add(tc.queue...)
			}
			b.flush(context.Background())
			var sizes []int
			for _, batch := range f.anywhere {
				sizes = append(sizes, len(batch))
			}
			if !slices.Equal(sizes, tc.wantSizes) || len(f.batches)+len(f.forwards) > 0 {
				t.Errorf("batches of %v (and %d leader-only, %d single), want %v", sizes, len(f.batches), len(f.forwards), tc.wantSizes)
			}
			if len(queuedGIDs(b)) != 0 {
				t.Errorf("still queued: %v", queuedGIDs(b))
			}
			if !strings.Contains(log.String(), tc.wantLog) || (tc.wantLog == "" && log.Len() > 0) {
				t.Errorf("log %q, want %q", log.String(), tc.wantLog)
			}
		})
	}
}

// With no commit to ride with, queued dones are written after doneLinger.
func TestDoneLinger(t *testing.T) {
	f := &fakeRaft{}
	b := newTestBatcher(f, &bytes.Buffer{})
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		b.run(ctx)
	}()
	defer func() {
		cancel()
		<-exited
	}()
	b.add("a")
	select {
	case <-f.applied:
	case <-time.After(10 * time.Second):
		t.Fatal("queued dones were not written")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.anywhere) != fmt.Sprint([][]metadata.Command{done("a")}) {
		t.Errorf("proposed %v", f.anywhere)
	}
}

// A queue that Raft cannot take is bounded; the overflow is dropped and
// said once.
func TestDoneQueueBound(t *testing.T) {
	f := &fakeRaft{}
	var log bytes.Buffer
	b := newTestBatcher(f, &log)
	b.add(make([]string, maxQueuedDone-1)...)
	b.add("x", "y", "z")
	if got := len(queuedGIDs(b)); got != maxQueuedDone {
		t.Fatalf("queued %d, want %d", got, maxQueuedDone)
	}
	b.take()
	if !strings.Contains(log.String(), "dropped=2") {
		t.Errorf("log %q, want the 2 dropped said", log.String())
	}
}

// A follower's batch reaches the leader's internal endpoint as one JSON
// array and comes back with one outcome per command; single commands
// still work beside it. The node forwards to itself here: the endpoint
// does not care who calls.
func TestForwardedBatch(t *testing.T) {
	backend := newFakeBackend(t)
	cfg := reviewConfig(t, t.TempDir(), config.Shard{ID: "s1", Primary: backend.addr()})
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.AdminToken = "batch-token"
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var leader metadata.NodeInfo
	for leader = n.store.Leader(); leader.HTTPAddr == ""; leader = n.store.Leader() {
		if ctx.Err() != nil {
			t.Fatal("the leader's HTTP address never reached the directory")
		}
		time.Sleep(10 * time.Millisecond)
	}
	commit := func(gid string) metadata.Command { return metadata.Command{Type: metadata.CmdDecideCommit, GID: gid} }
	steps := []struct {
		name         string
		cmds         []metadata.Command
		wantRejected []bool
		wantPending  []string
	}{
		{"a batch with a rejection in it", []metadata.Command{commit("g1"), done("")[0], commit("g2")},
			[]bool{false, true, false}, []string{"g1", "g2"}},
		{"dones", done("g1", "g2"), []bool{false, false}, nil},
	}
	for _, st := range steps {
		results, err := n.forwardApplyAll(ctx, leader, st.cmds)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var rejected []bool
		for _, r := range results {
			rejected = append(rejected, errors.Is(r, metadata.ErrRejected))
		}
		if !slices.Equal(rejected, st.wantRejected) {
			t.Errorf("%s: rejected %v, want %v (results %v)", st.name, rejected, st.wantRejected, results)
		}
		if got := n.store.PendingDecisions(); !slices.Equal(got, st.wantPending) {
			t.Errorf("%s: pending %v, want %v", st.name, got, st.wantPending)
		}
	}
	if _, err := n.forwardApply(ctx, leader, commit("g3")); err != nil {
		t.Errorf("a single command: %v", err)
	}
	if _, err := n.forwardApply(ctx, leader, done("")[0]); !errors.Is(err, metadata.ErrRejected) {
		t.Errorf("a single rejected command: %v", err)
	}
	if got := n.store.PendingDecisions(); !slices.Equal(got, []string{"g3"}) {
		t.Errorf("pending %v, want [g3]", got)
	}
	rec := httptest.NewRecorder()
	n.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{"\nshardproxy_twopc_decisions_pending 1\n", "\nshardproxy_twopc_dones_queued 0\n"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
