package twopc_test

// Recovery with a log shared by the nodes (Raft): other nodes' prepared
// transactions are settled once old enough, an abort recorded first.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/twopc"
)

// sharedLog is a memLog that records aborts too: a commit after an abort
// is refused, an abort after a commit reports the commit.
type sharedLog struct {
	*memLog
	amu     sync.Mutex
	aborted map[string]bool
}

func (l *sharedLog) Abort(ctx context.Context, gid string) (bool, error) {
	if ok, _ := l.Decided(gid); ok {
		return true, nil
	}
	l.amu.Lock()
	defer l.amu.Unlock()
	l.aborted[gid] = true
	return false, nil
}

func TestRecoverSharedLogSettlesOtherNodes(t *testing.T) {
	ctx := context.Background()
	committed, rolledBack, mine := twopc.NewGID("n2"), twopc.NewGID("n2"), twopc.NewGID("n1")
	log := &sharedLog{memLog: newMemLog(), aborted: map[string]bool{}}
	log.decide(committed)
	sh := newShard("s1")
	for _, g := range []string{committed, rolledBack, mine} {
		sh.prepare(g)
	}
	co, err := twopc.NewCoordinator(twopc.Config{NodeID: "n1", Log: log, ForeignAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	res, err := co.Recover(ctx, []twopc.ShardAccess{sh.access()})
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.gids()) != 0 {
		t.Fatalf("left prepared: %v (result %+v)", sh.gids(), res)
	}
	if !log.aborted[rolledBack] || log.aborted[committed] {
		t.Fatalf("aborts recorded: %v", log.aborted)
	}

	// Without ForeignAfter, other nodes' transactions are left alone.
	sh2 := newShard("s1")
	sh2.prepare(twopc.NewGID("n2"))
	co2, err := twopc.NewCoordinator(twopc.Config{NodeID: "n1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	res, err = co2.Recover(ctx, []twopc.ShardAccess{sh2.access()})
	if err != nil || res.Foreign != 1 || len(sh2.gids()) != 1 {
		t.Fatalf("foreign left alone: %+v, %v, %v", res, err, sh2.gids())
	}
}
