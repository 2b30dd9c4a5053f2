package node

// Two-phase-commit decisions in the Raft log. A COMMIT decision is applied
// while the client waits: it must be durable before any COMMIT PREPARED.
// Forgetting one (Done) need not be: a lost Done costs recovery a look at
// the shards. So Done only queues the gid, and the queue is written with
// the next COMMIT decision, in the same Raft write (and fsync), or after
// doneLinger when no commit comes. Applied one by one, each Done was a log
// write of its own inside the client's commit: two log writes per
// distributed transaction instead of about one (fdatasync per 2-shard
// TPC-B transaction 2.02 -> 1.25).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/twopc"
)

// raftDecisions keeps two-phase-commit decisions in the Raft log, so any
// node can settle another's transactions after it died.
type raftDecisions struct{ n *Node }

// Commit records gid's COMMIT decision, together with the queued Dones.
func (d raftDecisions) Commit(ctx context.Context, gid string) error {
	commit := metadata.Command{Type: metadata.CmdDecideCommit, GID: gid}
	err := d.n.decisionsDone.applyWith(ctx, commit)
	if errors.Is(err, metadata.ErrRejected) {
		// Recovery elsewhere recorded an abort first.
		return fmt.Errorf("%w: %v", twopc.ErrNotRecorded, err)
	}
	return err
}

// Done queues gid to be forgotten and returns at once.
func (d raftDecisions) Done(_ context.Context, gid string) error {
	d.n.decisionsDone.add(gid)
	return nil
}

func (d raftDecisions) Decided(gid string) (bool, error) { return d.n.store.Decided(gid), nil }

func (d raftDecisions) Pending() ([]string, error) { return d.n.store.PendingDecisions(), nil }

func (d raftDecisions) Abort(ctx context.Context, gid string) (bool, error) {
	_, err := d.n.applyCommand(ctx, metadata.Command{Type: metadata.CmdDecideAbort, GID: gid})
	if errors.Is(err, metadata.ErrRejected) && d.n.store.Decided(gid) {
		return true, nil
	}
	return false, err
}

const (
	// maxQueuedDone bounds the gids waiting to be forgotten while Raft
	// cannot take them (no leader). Past it a Done is dropped: recovery
	// forgets the decision later, when it finds the gid on no shard.
	maxQueuedDone = 100_000
	// maxDoneBatch bounds the Dones proposed in one batch, so that a long
	// queue does not hold the Raft leader loop in one write.
	maxDoneBatch = 512
	// doneLinger is how long queued Dones wait for a COMMIT decision to
	// ride with before they are written on their own.
	doneLinger = 50 * time.Millisecond
)

// doneBatcher holds the gids whose decisions are to be forgotten.
type doneBatcher struct {
	// applyAll proposes cmds together where this node is the leader
	// (Store.ApplyAll); applyOne proposes one and applyAnywhere several
	// together wherever the leader is (a follower forwards them).
	applyAll      func(ctx context.Context, cmds []metadata.Command) ([]error, error)
	applyOne      func(ctx context.Context, c metadata.Command) error
	applyAnywhere func(ctx context.Context, cmds []metadata.Command) ([]error, error)
	log           *slog.Logger

	mu      sync.Mutex
	queued  []string
	dropped int
	wake    chan struct{} // capacity 1: "the queue is not empty"
}

func newDoneBatcher(n *Node) *doneBatcher {
	return &doneBatcher{
		applyAll: func(ctx context.Context, cmds []metadata.Command) ([]error, error) {
			return n.store.ApplyAll(ctx, cmds)
		},
		applyOne: func(ctx context.Context, c metadata.Command) error {
			_, err := n.applyCommand(ctx, c)
			return err
		},
		applyAnywhere: n.applyCommands,
		log:           n.log,
		wake:          make(chan struct{}, 1),
	}
}

func (b *doneBatcher) add(gids ...string) {
	b.mu.Lock()
	room := max(0, maxQueuedDone-len(b.queued))
	b.dropped += max(0, len(gids)-room)
	b.queued = append(b.queued, gids[:min(len(gids), room)]...)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *doneBatcher) queuedLen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queued)
}

// take removes up to maxDoneBatch queued gids, as CmdDecisionDone commands
// with room for one more.
func (b *doneBatcher) take() []metadata.Command {
	b.mu.Lock()
	n := min(len(b.queued), maxDoneBatch)
	gids := b.queued[:n:n]
	b.queued = b.queued[n:]
	if len(b.queued) == 0 {
		b.queued = nil
	}
	dropped := b.dropped
	b.dropped = 0
	b.mu.Unlock()
	if dropped > 0 {
		b.log.Warn("twopc: too many decisions waiting to be forgotten; recovery will forget the rest", "dropped", dropped)
	}
	if n == 0 {
		return nil
	}
	cmds := make([]metadata.Command, n, n+1)
	for i, gid := range gids {
		cmds[i] = metadata.Command{Type: metadata.CmdDecisionDone, GID: gid}
	}
	return cmds
}

// applyWith applies c, preceded in the same Raft write by queued Dones,
// and returns c's outcome alone. A follower forwards c by itself and keeps
// the Dones queued.
func (b *doneBatcher) applyWith(ctx context.Context, c metadata.Command) error {
	dones := b.take()
	results, err := b.applyAll(ctx, append(dones, c))
	var notLeader *metadata.ErrNotLeader
	switch {
	case errors.As(err, &notLeader):
		// Proposing again is what Apply's callers do on a lost
		// leadership; a Done or a decision applied twice changes nothing.
		b.requeue(dones)
		return b.applyOne(ctx, c)
	case err != nil:
		if len(results) < len(dones) {
			b.requeue(dones[len(results):])
		}
		return err
	}
	for i, r := range results[:len(dones)] {
		if r != nil {
			b.log.Warn("twopc: forgetting a finished decision was refused", "gid", dones[i].GID, "err", r)
		}
	}
	return results[len(dones)]
}

func (b *doneBatcher) requeue(cmds []metadata.Command) {
	gids := make([]string, len(cmds))
	for i, c := range cmds {
		gids[i] = c.GID
	}
	b.add(gids...)
}

// run writes the Dones no COMMIT decision took along, doneLinger after they
// were queued, until ctx ends; flush writes what is left then.
func (b *doneBatcher) run(ctx context.Context) {
	linger := time.NewTimer(doneLinger)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		linger.Reset(doneLinger)
		select {
		case <-ctx.Done():
			return
		case <-linger.C:
		}
		b.flush(ctx)
	}
}

// flush writes every queued Done. Failures are logged, not kept: recovery
// forgets what is left once it finds those gids on no shard.
func (b *doneBatcher) flush(ctx context.Context) {
	for ctx.Err() == nil {
		cmds := b.take()
		if len(cmds) == 0 {
			return
		}
		results, err := b.applyAnywhere(ctx, cmds)
		err = errors.Join(append(results, err)...)
		if err != nil && ctx.Err() == nil {
			b.log.Warn("twopc: forgetting finished decisions failed; recovery will retry", "count", len(cmds), "err", err)
		}
	}
}
