package distributed_test

// A shard that keeps its connection open but never answers COMMIT
// PREPARED: a relay in front of its PostgreSQL forwards the statement
// (PostgreSQL commits) and holds the answer back, as a server waiting for
// a synchronous standby that is gone would.

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
	"github.com/shardproxy/shardproxy/twopc"
)

// The client's commit returns once twopc's ResolveTimeout has passed, as
// committed (the decision is durable); the connection cut short is never
// used again, and the proxy goes on serving the shard.
func TestCommitPreparedAnswerStalls(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	testenv.ExecOnPrimaries(t, ctx, cluster, "DROP TABLE IF EXISTS stalled; CREATE TABLE stalled (k bigint PRIMARY KEY)")
	relay := startStallRelay(t, cluster.Shards[1].Primary.Addr(), "COMMIT PREPARED", stallMode{once: true})
	cfg := testenv.Config(cluster)
	cfg.Shards[1].Primary = relay.addr()
	cfg.Tables = []config.Table{{Name: "stalled", Key: "k"}}
	const resolve = time.Second
	n := testenv.StartNode(t, cfg, node.Options{TwoPhaseResolveTimeout: resolve})
	conn := testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	k := keysPerShard(2)

	started := time.Now()
	if _, err := conn.Exec(ctx, "INSERT INTO stalled (k) VALUES ($1), ($2)", k[0][0], k[1][0]); err != nil {
		t.Fatalf("the commit failed: %v", err)
	}
	took := time.Since(started)
	if relay.stalls.Load() != 1 {
		t.Fatalf("the relay held %d answers, want 1: the test proves nothing", relay.stalls.Load())
	}
	if took < resolve || took > 15*time.Second {
		t.Fatalf("the commit took %s with ResolveTimeout %s", took, resolve)
	}

	// PostgreSQL ran the COMMIT PREPARED; only its answer was held.
	for i, sh := range cluster.Shards {
		direct := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		var rows, prepared int
		if err := direct.QueryRow(ctx, "SELECT (SELECT count(*) FROM stalled WHERE k = $1), (SELECT count(*) FROM pg_prepared_xacts)", k[i][0]).Scan(&rows, &prepared); err != nil {
			t.Fatal(err)
		}
		direct.Close(ctx)
		if rows != 1 || prepared != 0 {
			t.Fatalf("shard %s: %d rows, %d prepared transactions; want 1 and 0", sh.ID, rows, prepared)
		}
	}

	// The proxy keeps serving the shard, on a connection that is not the
	// one cut short (whose answer may still come), and a second
	// distributed commit is quick.
	started = time.Now()
	if _, err := conn.Exec(ctx, "INSERT INTO stalled (k) VALUES ($1), ($2)", k[0][1], k[1][1]); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(started); took >= resolve {
		t.Fatalf("the next commit took %s", took)
	}
	var count int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM stalled").Scan(&count); err != nil || count != 4 {
		t.Fatalf("count through the proxy = %d, %v; want 4", count, err)
	}
	// The first commit's decision, left for recovery (its Done was not
	// written), is forgotten: no shard holds its gid.
	if _, err := n.RecoverNow(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, ctx, "the stalled commit's decision to be forgotten", func() (bool, error) {
		v, err := metricValue(ctx, n.HTTPAddr(), "shardproxy_twopc_decisions_pending")
		return err == nil && v == 0, err
	})
}

// keysPerShard returns n keys owned by each of the two shards (keys are
// hashed, so they are found, not assumed).
func keysPerShard(n int) [2][]int64 {
	ranges := keyspace.Split(2)
	var out [2][]int64
	for k := int64(1); len(out[0]) < n || len(out[1]) < n; k++ {
		i := 1
		if ranges[0].Contains(keyspace.Int(k)) {
			i = 0
		}
		if len(out[i]) < n {
			out[i] = append(out[i], k)
		}
	}
	return out
}

// stallRelay forwards connections to a PostgreSQL server and holds back
// every answer on a connection that sends a simple query starting with
// trigger, from that query on.
type stallRelay struct {
	ln      net.Listener
	target  string
	trigger string
	mode    stallMode
	armed   atomic.Bool
	stalls  atomic.Int32
	wg      sync.WaitGroup
	closing chan struct{}
}

// stallMode: once stalls only the first connection that sends the
// trigger; swallow does not forward the trigger query either, so the
// server never runs it (a server stuck before it executes), where
// otherwise it runs and only its answer is lost.
type stallMode struct{ once, swallow bool }

func startStallRelay(t *testing.T, target, trigger string, mode stallMode) *stallRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &stallRelay{ln: ln, target: target, trigger: trigger, mode: mode, closing: make(chan struct{})}
	r.armed.Store(true)
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		close(r.closing)
		ln.Close()
		r.wg.Wait()
	})
	return r
}

func (r *stallRelay) addr() string { return r.ln.Addr().String() }

func (r *stallRelay) accept() {
	defer r.wg.Done()
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", r.target)
		if err != nil {
			client.Close()
			continue
		}
		var stalled atomic.Bool
		closeBoth := sync.OnceFunc(func() { client.Close(); server.Close() })
		r.wg.Add(3)
		go func() { // client -> server, watching for the trigger
			defer r.wg.Done()
			defer closeBoth()
			r.forwardFrames(client, server, &stalled)
		}()
		go func() { // server -> client, until stalled
			defer r.wg.Done()
			defer closeBoth()
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 && !stalled.Load() {
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer r.wg.Done()
			<-r.closing
			closeBoth()
		}()
	}
}

// forwardFrames copies the startup packet, then typed frames, from src to
// dst; it sets stalled before forwarding the trigger query.
func (r *stallRelay) forwardFrames(src, dst net.Conn, stalled *atomic.Bool) {
	var hdr [5]byte
	// The startup packet: a length, no type byte.
	if _, err := io.ReadFull(src, hdr[:4]); err != nil {
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-4)
	if _, err := io.ReadFull(src, body); err != nil {
		return
	}
	if _, err := dst.Write(append(hdr[:4:4], body...)); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		if hdr[0] == 'Q' && strings.HasPrefix(string(body), r.trigger) && (!r.mode.once || r.armed.CompareAndSwap(true, false)) {
			stalled.Store(true)
			r.stalls.Add(1)
			if r.mode.swallow {
				continue
			}
		}
		if _, err := dst.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// A shard that never answers ROLLBACK PREPARED costs a recovery pass one
// bounded wait: the other shard's leftovers are settled in the same pass.
func TestRecoveryPastStalledShard(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	cfg := testenv.Config(cluster)
	// Leftovers of an earlier run of this node (made before it starts),
	// without a decision: recovery rolls them back, s1's first.
	gids := [2]string{twopc.NewGID(cfg.NodeID), twopc.NewGID(cfg.NodeID)}
	for i, sh := range cluster.Shards {
		conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		for _, sql := range []string{
			"DROP TABLE IF EXISTS leftovers", "CREATE TABLE leftovers (k int)",
			"BEGIN", "INSERT INTO leftovers VALUES (1)", "PREPARE TRANSACTION '" + gids[i] + "'",
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("shard %s: %s: %v", sh.ID, sql, err)
			}
		}
		conn.Close(ctx)
	}
	// s1 never gets its ROLLBACK PREPARED: its leftover stays, and every
	// pass meets the stall.
	relay := startStallRelay(t, cluster.Shards[0].Primary.Addr(), "ROLLBACK PREPARED", stallMode{swallow: true})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database)); err == nil {
			_, _ = c.Exec(ctx, "ROLLBACK PREPARED '"+gids[0]+"'")
			c.Close(ctx)
		}
	})
	cfg.Shards[0].Primary = relay.addr()
	testenv.StartNode(t, cfg, node.Options{TwoPhaseResolveTimeout: time.Second})

	// The node's first recovery pass runs at start: it stalls on s1 and
	// still settles s2.
	s2 := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[1].Primary, testenv.Database))
	testenv.WaitFor(t, ctx, "recovery to roll back s2's leftover behind a stalled s1", func() (bool, error) {
		var n int
		err := s2.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", gids[1]).Scan(&n)
		return n == 0, err
	})
	if relay.stalls.Load() == 0 {
		t.Fatal("the relay held no answer: the test proves nothing")
	}
}
