package pooling_test

// A backend that goes down and comes back: while it is down each query
// gets 57P03 at once (the pool backs off instead of waiting for connect
// timeouts), the proxy and its clients carry on, and once it is back the
// same clients' queries succeed on fresh server connections, none of them
// handed a dead idle one.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
)

func TestBackendRestart(t *testing.T) {
	n := startNode(t, txPool(2), node.Options{})
	ctx := testenv.TestCtx(t, 90*time.Second)
	clients := []*pgx.Conn{testenv.Connect(t, ctx, proxyURL(n)), testenv.Connect(t, ctx, proxyURL(n)), testenv.Connect(t, ctx, proxyURL(n))}
	for _, c := range clients {
		var one int
		if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil {
			t.Fatalf("before the restart: %v", err)
		}
	}
	primary := cluster.Shards[0].Primary
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := primary.Stop(stopCtx); err != nil {
		t.Fatalf("stopping the primary: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = primary.Start(context.Background())
		}
	})
	for i, c := range clients {
		start := time.Now()
		_, err := c.Exec(ctx, "select 1")
		testenv.RequireCode(t, err, "57P03")
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("client %d waited %s for its error", i, d)
		}
	}
	if err := primary.Start(ctx); err != nil {
		t.Fatalf("starting the primary again: %v", err)
	}
	restarted = true
	// The pool retries after its backoff (at most a few seconds).
	for i, c := range clients {
		testenv.WaitFor(t, ctx, "queries to work again", func() (bool, error) {
			var one int
			err := c.QueryRow(ctx, "select 1").Scan(&one)
			if err != nil && testenv.PGCode(err) != "57P03" {
				t.Fatalf("client %d after the restart: %v", i, err)
			}
			return err == nil, nil
		})
	}
}
