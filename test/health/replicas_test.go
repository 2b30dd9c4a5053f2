package health_test

// One scenario, in order, because each step leaves the replica in the
// state the next one starts from, and the last (promotion) cannot be
// undone: so the test starts a cluster of its own (one shard, one
// replica) rather than sharing one from TestMain, and runs again under
// -count. Each transition is asserted after exactly one PollNow begun
// after the change ("within one poll"); catching up, which takes the
// server an unknown time, is waited for with a deadline.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const maxLag = 64 << 10

func TestReplicaLifecycle(t *testing.T) {
	cluster, err := testenv.StartCluster(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := cluster.Shards[0]
	primary, replica := sh.Primary, sh.Replicas[0]
	mp, err := metadata.NewMap(1, []metadata.Shard{{ID: sh.ID, Primary: primary.Addr(), Replicas: []string{replica.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		promoted []string
	)
	m, err := health.New(health.Config{
		MaxLagBytes: maxLag,
		// As the node does: an unprivileged user, database postgres.
		Connect: func(ctx context.Context, addr string) (health.Querier, error) {
			conn, err := pgconn.Connect(ctx, cluster.ConnString(serverAt(t, cluster, addr), testenv.AppUser, testenv.AppPassword, "postgres"))
			if err != nil {
				return nil, err
			}
			return health.PgConn(conn), nil
		},
		Map: func() *metadata.Map { return mp },
		OnPromoted: func(shard, addr string, timeline uint32) {
			mu.Lock()
			defer mu.Unlock()
			promoted = append(promoted, fmt.Sprintf("%s %s %d", shard, addr, timeline))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The loop runs as in the node; the assertions poll on their own so
	// that "one poll" is exact.
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	defer func() {
		stopRun()
		<-done
	}()

	replicaStatus := func() health.BackendStatus {
		for _, st := range m.Backends() {
			if st.Addr == replica.Addr() {
				return st
			}
		}
		t.Fatalf("no status for the replica: %+v", m.Backends())
		return health.BackendStatus{}
	}
	pick := func(minLSN health.LSN) bool {
		addr, ok := m.PickReplica(sh.ID, minLSN)
		if ok && addr != replica.Addr() {
			t.Fatalf("picked %s, not the replica %s", addr, replica.Addr())
		}
		return ok
	}
	superReplica := connect(ctx, t, cluster.SuperConnString(replica, "postgres"))
	app := connect(ctx, t, testenv.DirectURL(cluster, primary, testenv.AppUser, testenv.AppPassword))

	t.Run("eligible", func(t *testing.T) {
		m.PollNow(ctx)
		if !pick(0) {
			t.Fatalf("replica not eligible: %+v", m.Backends())
		}
		st := replicaStatus()
		if st.State != health.StateUp || st.Role != health.RoleReplica || st.Timeline != 1 || st.ReplayLSN == 0 || st.LagBytes > maxLag {
			t.Errorf("replica status: %+v", st)
		}
	})

	var written health.LSN
	t.Run("paused replica lags", func(t *testing.T) {
		exec(ctx, t, superReplica, "SELECT pg_wal_replay_pause()")
		waitFor(ctx, t, "replay paused", func() bool {
			return query(ctx, t, superReplica, "SELECT pg_get_wal_replay_pause_state()") == "paused"
		})
		// About 1 MB of WAL, far over the bound.
		exec(ctx, t, app, "CREATE TABLE health_filler (id int, pad text)")
		exec(ctx, t, app, "INSERT INTO health_filler SELECT g, repeat('x', 1000) FROM generate_series(1, 1000) g")
		written = parseLSN(t, query(ctx, t, app, "SELECT pg_current_wal_insert_lsn()::text"))
		m.PollNow(ctx)
		st := replicaStatus()
		if st.State != health.StateLagging || st.LagBytes <= maxLag || pick(0) {
			t.Fatalf("paused replica after ~1 MB of writes: %+v", st)
		}
		if got := m.PrimaryLSN(sh.ID); got < written {
			t.Errorf("PrimaryLSN %s is before the write's end %s", got, written)
		}
		t.Logf("paused: lag %d bytes (replay %s, primary %s)", st.LagBytes, st.ReplayLSN, st.CurrentLSN)
	})

	t.Run("resumed replica catches up", func(t *testing.T) {
		exec(ctx, t, superReplica, "SELECT pg_wal_replay_resume()")
		// Read-your-writes: eligible for a session that wrote only once
		// the write is replayed.
		waitFor(ctx, t, "the replica eligible past the write", func() bool {
			m.PollNow(ctx)
			return pick(written)
		})
		if st := replicaStatus(); st.State != health.StateUp || st.ReplayLSN < written {
			t.Errorf("resumed replica: %+v", st)
		}
		if n := query(ctx, t, superReplica, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND datname = 'postgres'"); n != "1" {
			t.Errorf("%s monitor connections on the replica, want 1 kept across rounds", n)
		}
	})

	t.Run("killed replica is down", func(t *testing.T) {
		superReplica.Close(ctx)
		if err := replica.Kill(); err != nil {
			t.Fatal(err)
		}
		m.PollNow(ctx)
		if st := replicaStatus(); st.State != health.StateDown || st.LastError == "" || pick(0) {
			t.Fatalf("killed replica: %+v", st)
		}
		if err := replica.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sh.WaitStreaming(ctx); err != nil {
			t.Fatal(err)
		}
		m.PollNow(ctx)
		if st := replicaStatus(); st.State != health.StateUp || !pick(0) {
			t.Fatalf("restarted replica: %+v", st)
		}
	})

	t.Run("promoted replica is reported", func(t *testing.T) {
		superReplica = connect(ctx, t, cluster.SuperConnString(replica, "postgres"))
		// pg_promote waits until the promotion is complete.
		if got := query(ctx, t, superReplica, "SELECT pg_promote()"); got != "t" {
			t.Fatalf("pg_promote() = %s", got)
		}
		m.PollNow(ctx)
		want := fmt.Sprintf("%s %s 2", sh.ID, replica.Addr())
		mu.Lock()
		got := append([]string(nil), promoted...)
		mu.Unlock()
		if len(got) != 1 || got[0] != want {
			t.Fatalf("OnPromoted calls %q, want [%q]", got, want)
		}
		st := replicaStatus()
		if st.State != health.StatePromoted || st.Timeline != 2 || pick(0) {
			t.Errorf("promoted replica: %+v", st)
		}
		// The server's own word, once a checkpoint has recorded it.
		exec(ctx, t, superReplica, "CHECKPOINT")
		if tl := query(ctx, t, superReplica, "SELECT timeline_id FROM pg_control_checkpoint()"); tl != strconv.Itoa(int(st.Timeline)) {
			t.Errorf("the promoted server's checkpoint is on timeline %s, the monitor reported %d", tl, st.Timeline)
		}
		m.PollNow(ctx)
		mu.Lock()
		defer mu.Unlock()
		if len(promoted) != 1 {
			t.Errorf("OnPromoted called again for the same promotion: %q", promoted)
		}
	})
}

func serverAt(t *testing.T, cluster *localpg.Cluster, addr string) *localpg.Server {
	for _, s := range cluster.Servers() {
		if s.Addr() == addr {
			return s
		}
	}
	t.Errorf("no server at %s", addr)
	return cluster.Shards[0].Primary
}

func connect(ctx context.Context, t *testing.T, url string) *pgconn.PgConn {
	t.Helper()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(ctx context.Context, t *testing.T, conn *pgconn.PgConn, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func query(ctx context.Context, t *testing.T, conn *pgconn.PgConn, sql string) string {
	t.Helper()
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("%s: %v", sql, res.Err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		t.Fatalf("%s: %d rows", sql, len(res.Rows))
	}
	return string(res.Rows[0][0])
}

func parseLSN(t *testing.T, s string) health.LSN {
	t.Helper()
	l, err := health.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitFor checks cond until it holds, failing at ctx's deadline or after
// 30s, whichever is first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
