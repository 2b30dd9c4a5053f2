package pooling_test

// Cancel requests and connection hand-over on ONE server connection. A
// cancel that arrives while its client is running a statement is
// forwarded; a cancel that is delayed (by the BeforeCancelLookup hook)
// until the client's statement has ended and the server connection serves
// another client must not be forwarded, or it would cancel the other
// client's statement. Statements block on advisory locks held by a direct
// connection, so the test decides when each one ends.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/router"
)

// cancelHooks records the router's cancel handling and can hold a cancel
// before its lookup.
type cancelHooks struct {
	block   atomic.Bool
	entered chan struct{} // a blocked cancel reached the hook
	release chan struct{} // closed to let it go on
	after   chan bool     // AfterCancel's forwarded
}

func newCancelHooks() *cancelHooks {
	return &cancelHooks{entered: make(chan struct{}, 1), release: make(chan struct{}), after: make(chan bool, 4)}
}

func (h *cancelHooks) hooks() router.Hooks {
	return router.Hooks{
		BeforeCancelLookup: func() {
			if h.block.Load() {
				h.entered <- struct{}{}
				<-h.release
			}
		},
		AfterCancel: func(forwarded bool) { h.after <- forwarded },
	}
}

// lockHolder takes advisory lock key in a transaction on a direct
// connection; release commits.
func lockHolder(t *testing.T, ctx context.Context, key int) (release func()) {
	t.Helper()
	c := testenv.Connect(t, ctx, superURL())
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock($1)", key); err != nil {
		t.Fatal(err)
	}
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			if err := tx.Commit(ctx); err != nil {
				t.Errorf("releasing lock %d: %v", key, err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// runAsync runs sql on conn in a goroutine.
func runAsync(ctx context.Context, conn *pgx.Conn, sql string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, sql)
		done <- err
	}()
	return done
}

func waitForwarded(t *testing.T, ctx context.Context, h *cancelHooks) bool {
	t.Helper()
	select {
	case f := <-h.after:
		return f
	case <-ctx.Done():
		t.Fatal("AfterCancel was not called")
		return false
	}
}

func TestCancelForwarded(t *testing.T) {
	h := newCancelHooks()
	n := startNode(t, txPool(1), node.Options{Hooks: h.hooks()})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	a := testenv.Connect(t, ctx, proxyURL(n))

	release := lockHolder(t, ctx, 4201)
	done := runAsync(ctx, a, "select pg_advisory_xact_lock(4201) /* A forwarded */")
	testenv.WaitActive(t, ctx, super, "/* A forwarded */")
	if err := a.PgConn().CancelRequest(ctx); err != nil {
		t.Fatalf("CancelRequest: %v", err)
	}
	if !waitForwarded(t, ctx, h) {
		t.Error("a cancel for a running statement was not forwarded")
	}
	testenv.RequireCode(t, testenv.WaitErr(t, ctx, done), "57014")
	release()
	// The connection goes on, and the pool's connection is clean.
	var x int
	if err := a.QueryRow(ctx, "select 1").Scan(&x); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDelayedPastHandOver(t *testing.T) {
	h := newCancelHooks()
	n := startNode(t, txPool(1), node.Options{Hooks: h.hooks()})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())
	a := testenv.Connect(t, ctx, proxyURL(n))
	b := testenv.Connect(t, ctx, proxyURL(n))

	// A's statement runs (blocked on lock 4202).
	releaseA := lockHolder(t, ctx, 4202)
	doneA := runAsync(ctx, a, "select pg_advisory_xact_lock(4202) /* A */")
	testenv.WaitActive(t, ctx, super, "/* A */")

	// A's cancel arrives and is held before the proxy looks A up.
	h.block.Store(true)
	cancelDone := make(chan error, 1)
	go func() { cancelDone <- a.PgConn().CancelRequest(ctx) }()
	select {
	case <-h.entered:
	case <-ctx.Done():
		t.Fatal("the cancel request did not reach the hook")
	}

	// A's statement ends normally; the single server connection goes to B,
	// whose statement blocks on lock 4203.
	releaseA()
	if err := testenv.WaitErr(t, ctx, doneA); err != nil {
		t.Fatalf("A's statement: %v", err)
	}
	releaseB := lockHolder(t, ctx, 4203)
	doneB := runAsync(ctx, b, "select pg_advisory_xact_lock(4203) /* B */")
	testenv.WaitActive(t, ctx, super, "/* B */")

	// Now the late cancel goes on: A is idle, so nothing is forwarded.
	close(h.release)
	if waitForwarded(t, ctx, h) {
		t.Error("a cancel for a finished statement was forwarded while another client used the connection")
	}
	if err := testenv.WaitErr(t, ctx, cancelDone); err != nil {
		t.Errorf("CancelRequest: %v", err)
	}
	// B is still running (not cancelled); its statement completes once
	// its lock is free.
	select {
	case err := <-doneB:
		t.Fatalf("B's statement ended before its lock was released: %v", err)
	default:
	}
	releaseB()
	if err := testenv.WaitErr(t, ctx, doneB); err != nil {
		t.Fatalf("B's statement: %v (want success, not 57014)", err)
	}
	var x int
	if err := a.QueryRow(ctx, "select 2").Scan(&x); err != nil || x != 2 {
		t.Fatalf("A afterwards: %d, %v", x, err)
	}
}
