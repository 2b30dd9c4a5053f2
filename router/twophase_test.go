package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/backend"
)

// A shard that keeps its connection open without answering holds a phase
// of a distributed commit only until the coordinator's context ends; the
// connection is then never pooled again, while one that answered in time
// is left as it was.
func TestParticipantHonoursContext(t *testing.T) {
	f := startFakeBackend(t, withStall(func(q string) bool { return strings.HasPrefix(q, "COMMIT PREPARED") }))
	cases := []struct {
		name            string
		sql             string
		cancelled       bool // ctx ends before the call
		wantErr         bool
		wantInterrupted bool
	}{
		{name: "answered", sql: "SELECT 1"},
		{name: "stalled", sql: "COMMIT PREPARED 'sp_n1_1'", wantErr: true, wantInterrupted: true},
		// Nothing is sent, so the connection stays usable.
		{name: "context already over", sql: "SELECT 1", cancelled: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bc, err := backend.Dial(context.Background(), backend.DialConfig{Addr: f.Addr(), User: "app", Database: "app"})
			if err != nil {
				t.Fatal(err)
			}
			sc := newServerConn(bc, nil)
			defer sc.Close()
			p := participant{id: "s1", sc: sc}

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			done := make(chan error, 1)
			go func() {
				_, err := p.Exec(ctx, tc.sql)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Exec still waiting 10 s after its context ended")
			}
			if !tc.wantErr {
				if err != nil || sc.interrupted {
					t.Fatalf("Exec = %v, interrupted %v; want success on a usable connection", err, sc.interrupted)
				}
				// The context's end after the exchange leaves no deadline.
				cancel()
				if _, err := p.Exec(context.Background(), "SELECT 2"); err != nil {
					t.Fatalf("the next exchange failed: %v", err)
				}
				return
			}
			if !errors.Is(err, ctx.Err()) || ctx.Err() == nil {
				t.Fatalf("Exec = %v, want the context's end (%v) in the chain", err, ctx.Err())
			}
			if sc.interrupted != tc.wantInterrupted {
				t.Fatalf("interrupted = %v, want %v (a connection with an answer possibly in flight must not be pooled)", sc.interrupted, tc.wantInterrupted)
			}
		})
	}
}
