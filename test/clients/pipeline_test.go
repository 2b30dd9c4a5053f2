package clients_test

// A pipeline far larger than the socket buffers, sent before its one Sync
// (pgx's SendBatch writes all of it while reading answers): the proxy must
// pump answers while the client is still writing, or the server, the proxy
// and the client all end up blocked on full sockets.

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestLargePipeline(t *testing.T) {
	const queries = 30000
	payload := strings.Repeat("p", 1000)
	for _, mode := range []string{config.PoolTransaction, config.PoolSession} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Pool.Mode = mode; c.Pool.Size = 2 })
			ctx := testenv.TestCtx(t, 60*time.Second)
			conn := testenv.Connect(t, ctx, proxyURL(n))
			batch := &pgx.Batch{}
			for i := range queries {
				batch.Queue("select $1::int, $2::text", i, payload)
			}
			results := conn.SendBatch(ctx, batch)
			for i := range queries {
				var got int
				var text string
				if err := results.QueryRow().Scan(&got, &text); err != nil {
					t.Fatalf("query %d of the batch: %v", i, err)
				}
				if got != i || text != payload {
					t.Fatalf("query %d answered %d %q", i, got, text[:min(len(text), 10)])
				}
			}
			if err := results.Close(); err != nil {
				t.Fatal(err)
			}
			// The session is usable afterwards.
			var s string
			if err := conn.QueryRow(ctx, "select 'after'").Scan(&s); err != nil || s != "after" {
				t.Fatalf("after the batch: %q, %v", s, err)
			}
		})
	}
}
