package clients_test

// Cancel requests through the proxy: a long statement is cancelled by a
// CancelRequest (pgx sends one when the query's context is cancelled, with
// CancelRequestContextWatcherHandler) and fails with 57014 promptly, in
// both pool modes; the connection stays usable.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/shardproxy/shardproxy/config"
)

func TestCancel(t *testing.T) {
	for _, mode := range []string{config.PoolTransaction, config.PoolSession} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Pool.Mode = mode; c.Pool.Size = 2 })
			ctx := testenv.TestCtx(t, 30*time.Second)
			super := testenv.Connect(t, ctx, superURL())
			cfg, err := pgx.ParseConfig(proxyURL(n))
			if err != nil {
				t.Fatal(err)
			}
			// A cancelled context sends a CancelRequest; the deadline is a
			// fallback far beyond what the test accepts.
			cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
			}
			conn := testenv.ConnectConfig(t, ctx, cfg)

			t.Run("context", func(t *testing.T) {
				qctx, cancel := context.WithCancel(ctx)
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := conn.Exec(qctx, "select pg_sleep(10) /* ctx */")
					done <- err
				}()
				testenv.WaitActive(t, ctx, super, "pg_sleep(10) /* ctx */")
				start := time.Now()
				cancel()
				err := testenv.WaitErr(t, ctx, done)
				elapsed := time.Since(start)
				testenv.RequireCode(t, err, "57014")
				if elapsed >= time.Second {
					t.Errorf("the cancelled statement ended %s after the cancel, want < 1s", elapsed)
				}
				checkUsable(t, ctx, conn)
			})

			t.Run("CancelRequest", func(t *testing.T) {
				done := make(chan error, 1)
				go func() {
					_, err := conn.Exec(ctx, "select pg_sleep(10) /* explicit */")
					done <- err
				}()
				testenv.WaitActive(t, ctx, super, "pg_sleep(10) /* explicit */")
				start := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := conn.PgConn().CancelRequest(cctx); err != nil {
					t.Fatalf("CancelRequest: %v", err)
				}
				err := testenv.WaitErr(t, ctx, done)
				elapsed := time.Since(start)
				testenv.RequireCode(t, err, "57014")
				if elapsed >= time.Second {
					t.Errorf("the cancelled statement ended %s after the cancel, want < 1s", elapsed)
				}
				checkUsable(t, ctx, conn)
			})
		})
	}
}

// checkUsable runs a statement on conn and checks its answer.
func checkUsable(t *testing.T, ctx context.Context, conn *pgx.Conn) {
	t.Helper()
	var x int
	if err := conn.QueryRow(ctx, "select $1::int * 2", 21).Scan(&x); err != nil || x != 42 {
		t.Fatalf("connection after the cancel: got %d, %v", x, err)
	}
}
