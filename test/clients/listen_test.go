package clients_test

// LISTEN/NOTIFY: in session pooling an idle listening client receives a
// notification without sending anything; in transaction pooling LISTEN is
// refused with 0A000 and a hint, since the client has no server session
// to listen on.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
)

func TestListenNotifySession(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Pool.Mode = config.PoolSession; c.Pool.Size = 4 })
	ctx := testenv.TestCtx(t, 30*time.Second)
	a := testenv.Connect(t, ctx, proxyURL(n))
	if _, err := a.Exec(ctx, "listen ch"); err != nil {
		t.Fatalf("LISTEN: %v", err)
	}
	// WaitForNotification only reads: A sends nothing while it waits, so
	// the proxy must deliver the notification to an idle client.
	for _, via := range []struct {
		name, url, sql, payload string
	}{
		{"direct", directURL(), "notify ch, 'hi'", "hi"},
		{"proxy", proxyURL(n), "select pg_notify('ch', 'hi through the proxy')", "hi through the proxy"},
		{"large payload", directURL(), "select pg_notify('ch', repeat('x', 7000))", strings.Repeat("x", 7000)},
	} {
		t.Run(via.name, func(t *testing.T) {
			b := testenv.Connect(t, ctx, via.url)
			got := make(chan *pgconn.Notification, 1)
			errc := make(chan error, 1)
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			go func() {
				n, err := a.WaitForNotification(wctx)
				if err != nil {
					errc <- err
					return
				}
				got <- n
			}()
			if _, err := b.Exec(ctx, via.sql); err != nil {
				t.Fatalf("NOTIFY: %v", err)
			}
			select {
			case n := <-got:
				if n.Channel != "ch" || n.Payload != via.payload {
					t.Fatalf("got notification %q %.40q, want ch %.40q", n.Channel, n.Payload, via.payload)
				}
			case err := <-errc:
				t.Fatalf("WaitForNotification: %v", err)
			}
			// A still answers queries afterwards.
			checkUsable(t, ctx, a)
		})
	}
}

func TestListenRefusedInTransactionPooling(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Pool.Mode = config.PoolTransaction })
	ctx := testenv.TestCtx(t, 10*time.Second)
	conn := testenv.Connect(t, ctx, proxyURL(n))
	for _, sql := range []string{"listen ch", "LISTEN \"Other\"", "select 1; listen ch"} {
		_, err := conn.Exec(ctx, sql)
		pe := testenv.RequireCode(t, err, "0A000")
		if !strings.Contains(pe.Message, "LISTEN") || pe.Hint == "" {
			t.Errorf("%s: message %q, hint %q; want LISTEN named and a hint", sql, pe.Message, pe.Hint)
		}
		checkUsable(t, ctx, conn)
	}
}
