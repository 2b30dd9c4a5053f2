package twopc_test

// Distributed commits on two real shards: the happy path, PostgreSQL's own
// failures at PREPARE, a COMMIT PREPARED that does not arrive, recovery
// racing a commit, and two nodes recovering side by side. Crashes are in
// crash_test.go.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/test/testenv"
	"github.com/shardproxy/shardproxy/twopc"
)

// participant adapts a pgx connection inside a transaction.
type participant struct {
	name string
	conn *pgx.Conn
	// failCommitPrepared drops COMMIT PREPARED before it is sent, as a
	// connection lost at that moment would.
	failCommitPrepared bool
}

func (p *participant) Name() string { return p.name }

func (p *participant) Exec(ctx context.Context, sql string) (string, error) {
	if p.failCommitPrepared && len(sql) > 15 && sql[:15] == "COMMIT PREPARED" {
		return "", errors.New("connection lost (simulated)")
	}
	tag, err := p.conn.Exec(ctx, sql)
	return tag.String(), err
}

// begin opens a transaction as app on shard i and runs stmts in it;
// their errors are the test's business (a failed transaction is a case).
func begin(t *testing.T, ctx context.Context, i int, stmts ...string) *participant {
	t.Helper()
	sh := cluster.Shards[i]
	conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		conn.Exec(ctx, s)
	}
	return &participant{name: sh.ID, conn: conn}
}

func insert(id int) string {
	return fmt.Sprintf("INSERT INTO t VALUES (%d, current_setting('cluster_name'))", id)
}

// super returns a superuser connection to database db on shard i.
func super(t *testing.T, ctx context.Context, i int, db string) *pgx.Conn {
	t.Helper()
	return testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[i].Primary, db))
}

// pgConn adapts a pgx connection for recovery.
type pgConn struct{ conn *pgx.Conn }

func (c pgConn) Exec(ctx context.Context, sql string) (string, error) {
	tag, err := c.conn.Exec(ctx, sql)
	return tag.String(), err
}

func (c pgConn) Close(ctx context.Context) error { return c.conn.Close(ctx) }

// connections records what recovery asked to connect to.
type connections struct {
	mu  sync.Mutex
	got []string // "shard/database/owner"
}

// access returns recovery's view of every shard: listing and resolving as
// the superuser, in the prepared transaction's database.
func (cs *connections) access() []twopc.ShardAccess {
	var out []twopc.ShardAccess
	for _, sh := range cluster.Shards {
		out = append(out, twopc.ShardAccess{
			ID: sh.ID,
			List: func(ctx context.Context) ([]twopc.Prepared, error) {
				conn, err := pgx.Connect(ctx, cluster.SuperConnString(sh.Primary, "postgres"))
				if err != nil {
					return nil, err
				}
				defer conn.Close(ctx)
				rows, err := conn.Query(ctx, twopc.ListPreparedSQL)
				if err != nil {
					return nil, err
				}
				return pgx.CollectRows(rows, func(r pgx.CollectableRow) (twopc.Prepared, error) {
					var p twopc.Prepared
					err := r.Scan(&p.GID, &p.Database, &p.Owner)
					return p, err
				})
			},
			Connect: func(ctx context.Context, shardID, database, owner string) (twopc.Conn, error) {
				cs.mu.Lock()
				cs.got = append(cs.got, shardID+"/"+database+"/"+owner)
				cs.mu.Unlock()
				conn, err := pgx.Connect(ctx, cluster.SuperConnString(sh.Primary, database))
				return pgConn{conn}, err
			},
		})
	}
	return out
}

// prepared lists the gids in pg_prepared_xacts on every shard.
func prepared(t *testing.T, ctx context.Context) [][]string {
	t.Helper()
	out := make([][]string, len(cluster.Shards))
	for i := range cluster.Shards {
		rows, _ := super(t, ctx, i, "postgres").Query(ctx, `SELECT gid FROM pg_prepared_xacts ORDER BY gid`)
		gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = gids
	}
	return out
}

// noneLeft fails the test if any shard holds a prepared transaction, and
// rolls them back so that the next test starts clean.
func noneLeft(t *testing.T, ctx context.Context) {
	t.Helper()
	for i, gids := range prepared(t, ctx) {
		for _, g := range gids {
			t.Errorf("shard %s still holds prepared transaction %s", cluster.Shards[i].ID, g)
			super(t, ctx, i, "app").Exec(ctx, "ROLLBACK PREPARED '"+g+"'")
		}
	}
}

// has reports on which shards row id exists.
func has(t *testing.T, ctx context.Context, id int) []bool {
	t.Helper()
	out := make([]bool, len(cluster.Shards))
	for i := range cluster.Shards {
		if err := super(t, ctx, i, "app").QueryRow(ctx, `SELECT EXISTS (SELECT FROM t WHERE id = $1)`, id).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func coordinator(t *testing.T, node string, hooks twopc.Hooks) (*twopc.Coordinator, *twopc.FileLog) {
	t.Helper()
	return coordinatorIn(t, t.TempDir(), node, hooks)
}

// coordinatorIn opens the decision log in dir, as a node does in
// <data_dir>/twopc.
func coordinatorIn(t *testing.T, dir, node string, hooks twopc.Hooks) (*twopc.Coordinator, *twopc.FileLog) {
	t.Helper()
	log, err := twopc.OpenFileLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	c, err := twopc.NewCoordinator(twopc.Config{NodeID: node, Log: log, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	return c, log
}

func TestCommit(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	c, log := coordinator(t, "n1", twopc.Hooks{})
	a, b := begin(t, ctx, 0, insert(1)), begin(t, ctx, 1, insert(1))
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := has(t, ctx, 1); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("row on shards: %v", got)
	}
	if p, _ := log.Pending(); len(p) != 0 {
		t.Fatalf("decisions left pending: %q", p)
	}
	// The sessions are idle and usable again.
	for _, p := range []*participant{a, b} {
		if _, err := p.conn.Exec(ctx, "SELECT 1"); err != nil || p.conn.PgConn().TxStatus() != 'I' {
			t.Fatalf("%s after commit: %v, status %c", p.name, err, p.conn.PgConn().TxStatus())
		}
	}
}

// A deferred unique constraint is checked at PREPARE: PostgreSQL's error
// comes back untouched and the shard already prepared is rolled back.
func TestPrepareFails(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	c, _ := coordinator(t, "n1", twopc.Hooks{})
	a := begin(t, ctx, 0, insert(2))
	b := begin(t, ctx, 1, insert(2), "INSERT INTO d VALUES (1), (1)")
	err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a, b})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		t.Fatalf("Commit = %v, want PostgreSQL's 23505", err)
	}
	if got := has(t, ctx, 2); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("row on shards: %v", got)
	}
	for _, p := range []*participant{a, b} {
		if st := p.conn.PgConn().TxStatus(); st != 'I' {
			t.Fatalf("%s left in transaction status %c", p.name, st)
		}
	}
}

// A transaction that failed on a shard rolls back everywhere, and PREPARE's
// ROLLBACK tag is reported as such.
func TestFailedTransaction(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	c, _ := coordinator(t, "n1", twopc.Hooks{})
	a := begin(t, ctx, 0, insert(3))
	b := begin(t, ctx, 1, insert(3), "SELECT 1/0")
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a, b}); !errors.Is(err, twopc.ErrRolledBack) {
		t.Fatalf("Commit = %v, want ErrRolledBack", err)
	}
	if got := has(t, ctx, 3); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("row on shards: %v", got)
	}
}

// COMMIT PREPARED lost on one shard after the decision: the client hears
// success, the row is there on the other shard, and recovery finishes the
// job and forgets the decision.
func TestCommitPreparedLost(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	c, log := coordinator(t, "n1", twopc.Hooks{})
	a, b := begin(t, ctx, 0, insert(4)), begin(t, ctx, 1, insert(4))
	b.failCommitPrepared = true
	gid := c.NewGID()
	if err := c.Commit(ctx, gid, []twopc.Participant{a, b}); err != nil {
		t.Fatalf("Commit = %v; a lost COMMIT PREPARED must not fail the commit", err)
	}
	if got := has(t, ctx, 4); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("row on shards before recovery: %v", got)
	}
	if got := prepared(t, ctx); len(got[0]) != 0 || !slices.Equal(got[1], []string{gid}) {
		t.Fatalf("prepared before recovery: %q", got)
	}
	var cs connections
	res, err := c.Recover(ctx, cs.access())
	if err != nil {
		t.Fatal(err)
	}
	if want := []twopc.Resolution{{Shard: "s2", GID: gid, Commit: true}}; !slices.Equal(res.Resolved, want) {
		t.Fatalf("Resolved = %+v", res.Resolved)
	}
	if !slices.Equal(res.Forgotten, []string{gid}) {
		t.Fatalf("Forgotten = %q", res.Forgotten)
	}
	if got := has(t, ctx, 4); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("row on shards after recovery: %v", got)
	}
	if p, _ := log.Pending(); len(p) != 0 {
		t.Fatalf("decisions left: %q", p)
	}
	if !slices.Equal(cs.got, []string{"s2/app/app"}) {
		t.Fatalf("recovery connected to %q", cs.got)
	}
}

// Recovery that runs while the coordinator sits between PREPARE and the
// decision leaves the transaction alone; the commit then completes.
func TestRecoveryDuringCommit(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	var cs connections
	var r *twopc.Recoverer
	var during twopc.Result
	var duringErr error
	c, _ := coordinator(t, "n1", twopc.Hooks{AfterPrepare: func(string) {
		during, duringErr = r.RunOnce(ctx)
	}})
	r, err := twopc.NewRecoverer(twopc.RecovererConfig{Coordinator: c, Shards: cs.access})
	if err != nil {
		t.Fatal(err)
	}
	a, b := begin(t, ctx, 0, insert(5)), begin(t, ctx, 1, insert(5))
	if err := c.Commit(ctx, c.NewGID(), []twopc.Participant{a, b}); err != nil {
		t.Fatal(err)
	}
	if duringErr != nil || during.InFlight != 2 || len(during.Resolved) != 0 {
		t.Fatalf("recovery during the commit: %+v, %v", during, duringErr)
	}
	if got := has(t, ctx, 5); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("row on shards: %v", got)
	}
}

// Two nodes in one process, each with its own log: a node recovers only
// its own transactions, each in the database it was prepared in.
func TestTwoNodes(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	defer noneLeft(t, ctx)
	// The coordinators die (runtime.Goexit) right after PREPARE: no
	// decision, so recovery must roll back.
	die := twopc.Hooks{AfterPrepare: func(string) { runtime.Goexit() }}
	n1, _ := coordinator(t, "n1", die)
	dir2 := t.TempDir()
	n2, log2 := coordinatorIn(t, dir2, "n2", die)
	commitAndDie := func(c *twopc.Coordinator, ps ...twopc.Participant) string {
		gid := c.NewGID()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Commit(ctx, gid, ps)
			t.Error("Commit returned past its fatal hook")
		}()
		<-done
		return gid
	}
	// n1's transaction writes to database postgres on s1 as the
	// superuser, and to app on s2 as app.
	s1 := super(t, ctx, 0, "postgres")
	s1.Exec(ctx, "CREATE TABLE IF NOT EXISTS elsewhere (id int)")
	s1.Exec(ctx, "BEGIN")
	s1.Exec(ctx, "INSERT INTO elsewhere VALUES (6)")
	g1 := commitAndDie(n1, &participant{name: "s1", conn: s1}, begin(t, ctx, 1, insert(6)))
	g2 := commitAndDie(n2, begin(t, ctx, 0, insert(7)), begin(t, ctx, 1, insert(7)))
	if got := prepared(t, ctx); !slices.Equal(got[0], sortedPair(g1, g2)) || !slices.Equal(got[1], sortedPair(g1, g2)) {
		t.Fatalf("prepared = %q", got)
	}

	var cs connections
	res, err := n1.Recover(ctx, cs.access())
	if err != nil {
		t.Fatal(err)
	}
	if res.Foreign != 2 || len(res.Resolved) != 2 {
		t.Fatalf("n1's recovery: %+v", res)
	}
	if !slices.Equal(cs.got, []string{"s1/postgres/postgres", "s2/app/app"}) {
		t.Fatalf("n1's recovery connected to %q", cs.got)
	}
	if got := prepared(t, ctx); !slices.Equal(got[0], []string{g2}) || !slices.Equal(got[1], []string{g2}) {
		t.Fatalf("after n1's recovery: %q", got)
	}
	// A node restarted on its data directory: same node id, new log handle.
	log2.Close()
	log2, err = twopc.OpenFileLog(dir2)
	if err != nil {
		t.Fatal(err)
	}
	defer log2.Close()
	res, err = twopc.Recover(ctx, log2, "n2", cs.access(), nil)
	if err != nil || len(res.Resolved) != 2 || res.Resolved[0].Commit {
		t.Fatalf("n2's recovery: %+v, %v", res, err)
	}
	for _, id := range []int{6, 7} {
		if got := has(t, ctx, id); !slices.Equal(got, []bool{false, false}) {
			t.Fatalf("row %d on shards: %v", id, got)
		}
	}
}

func sortedPair(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}
