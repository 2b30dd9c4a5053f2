package sharded_test

// Review tests: each demonstrates one bug of transaction state across
// shard connections (see the review report). They fail while the bug is
// there.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/test/testenv"
)

// reviewKey is the first key from start up on proxyShards[shard].
func reviewKey(start int64, shard int) int64 {
	for k := start; ; k++ {
		if shardOf(k) == shard {
			return k
		}
	}
}

// reviewCount counts wallets rows with this owner on every shard,
// straight from the shards' primaries (no proxy in between).
func reviewCount(t *testing.T, ctx context.Context, where string) int {
	t.Helper()
	total := 0
	for _, id := range proxyShards {
		c := testenv.Connect(t, ctx, shardURL(id))
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM wallets WHERE "+where).Scan(&n); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.Close(ctx)
		total += n
	}
	return total
}

func reviewClean(t *testing.T, ctx context.Context, owner string) {
	t.Helper()
	for _, id := range proxyShards {
		c := testenv.Connect(t, ctx, shardURL(id))
		if _, err := c.Exec(ctx, "DELETE FROM wallets WHERE owner = $1", owner); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.Close(ctx)
	}
}

func reviewSkip(t *testing.T) {
	if selfCheck {
		t.Skip("needs the proxy")
	}
}

// JDBC (autocommit off) and pgx batches send the client's BEGIN in the
// same Sync batch as the first statement. BEGIN goes to s1; a write on
// another shard in the same batch "upgrades" the batch (s.txStatus is
// still 'I' until the ReadyForQuery), and the Sync commits everything and
// answers 'I': the client's transaction is gone and its ROLLBACK undoes
// nothing.
func TestReviewBeginInPipelineThenWriteOnOtherShard(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-begin-pipe"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	b := reviewKey(8_100_000, 1) // not on s1
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, $2)", b, owner)
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Errorf("after [BEGIN, INSERT] the transaction status is %q, want 'T'", st)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := reviewCount(t, ctx, "owner = '"+owner+"'"); n != 0 {
		t.Fatalf("the row of a rolled-back transaction is committed (%d rows)", n)
	}
}

// Same root cause, read-only: [BEGIN, SELECT on s2] does not replay BEGIN
// on s2 and the client gets 'I' after its BEGIN.
func TestReviewBeginInPipelineThenReadOnOtherShard(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	b := reviewKey(8_150_000, 1)
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SELECT count(*) FROM wallets WHERE id = $1", b)
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Errorf("after [BEGIN, SELECT] the transaction status is %q, want 'T'", st)
	}
	_, _ = conn.Exec(ctx, "ROLLBACK")
}

// A pipeline whose first statement fails, then a write on every shard:
// PostgreSQL skips everything after the error. The proxy upgrades the
// batch, runs the UPDATE on the other shards anyway (the failed shard
// skips it and its Sync leaves it idle, so nobody sees a failed
// participant) and commits it at the Sync: a partial write the client
// was told failed.
func TestReviewFailedPipelineThenMultiShardWrite(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-fail-then-update"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	keys := []int64{reviewKey(8_200_000, 0), reviewKey(8_200_000, 1), reviewKey(8_200_000, 2)}
	for _, k := range keys {
		if _, err := conn.Exec(ctx, "INSERT INTO wallets (id, owner) VALUES ($1, $2)", k, owner); err != nil {
			t.Fatal(err)
		}
	}
	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, $2)", keys[0], owner) // duplicate key
	batch.Queue("UPDATE wallets SET version = version + 1 WHERE owner = $1", owner)
	err := conn.SendBatch(ctx, batch).Close()
	testenv.RequireCode(t, err, "23505")
	if n := reviewCount(t, ctx, "owner = '"+owner+"' AND version <> 0"); n != 0 {
		t.Fatalf("the UPDATE after the failed INSERT of the same pipeline committed on %d rows; want none", n)
	}
}

// A pipeline whose first statement fails on one shard, then a statement
// for another shard: the proxy ends the client's session with a FATAL
// ("skipped after an earlier error") instead of reporting the error and
// going on.
func TestReviewFailedPipelineThenOtherShard(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-fail-then-switch"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	a, b := reviewKey(8_300_000, 0), reviewKey(8_300_000, 1)
	if _, err := conn.Exec(ctx, "INSERT INTO wallets (id, owner) VALUES ($1, $2)", a, owner); err != nil {
		t.Fatal(err)
	}
	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, $2)", a, owner) // duplicate key
	batch.Queue("SELECT count(*) FROM wallets WHERE id = $1", b)
	err := conn.SendBatch(ctx, batch).Close()
	testenv.RequireCode(t, err, "23505")
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the session did not survive an error in a pipeline: %v", err)
	}
}

// An implicit transaction (pipeline) that wrote on one shard and then
// runs a scatter read: the scatter's Sync on that shard's connection
// commits the write mid-batch; a later error in the batch no longer
// rolls it back.
func TestReviewWriteThenScatterReadInPipeline(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-write-scatter"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	a := reviewKey(8_400_000, 0)
	batch := &pgx.Batch{}
	batch.Queue("INSERT INTO wallets (id, owner) VALUES ($1, $2)", a, owner)
	batch.Queue("SELECT count(*) FROM wallets")
	batch.Queue("SELECT 1/0")
	err := conn.SendBatch(ctx, batch).Close()
	testenv.RequireCode(t, err, "22012")
	if n := reviewCount(t, ctx, "owner = '"+owner+"'"); n != 0 {
		t.Fatalf("the INSERT of a failed pipeline is committed (%d rows)", n)
	}
}

// rawConn is a client speaking the protocol by hand.
func rawConn(t *testing.T, ctx context.Context) (*pgconn.PgConn, *pgproto3.Frontend) {
	t.Helper()
	pc, err := pgconn.Connect(ctx, proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	return pc, pc.Frontend()
}

func sendExtended(fe *pgproto3.Frontend, sql string) {
	fe.Send(&pgproto3.Parse{Query: sql})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
}

// receiveN reads n answers, failing on an error.
func receiveN(t *testing.T, pc *pgconn.PgConn, fe *pgproto3.Frontend, n int) {
	t.Helper()
	_ = pc.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("answer %d: %s %s", i, e.Code, e.Message)
		}
	}
}

// A client that wrote on two shards in a pipeline and leaves before its
// Sync: the connection it left on the first shard (parked, inside the
// proxy's BEGIN, its txStatus still 'I' from its last ReadyForQuery) is
// given back to the pool by session.end (releaseParked(false)) instead of
// closed. The next client served by it runs inside that transaction and
// loses its own autocommit write when it leaves.
func TestReviewDisconnectWithUnsyncedPipelineOnTwoShards(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-unsynced-leave"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	a, b := reviewKey(8_500_000, 0), reviewKey(8_500_000, 1)
	c := reviewKey(a+1, 0)
	pc, fe := rawConn(t, ctx)
	sendExtended(fe, fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, '%s')", a, owner))
	sendExtended(fe, fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, '%s')", b, owner))
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	// ParseComplete, BindComplete, CommandComplete for each.
	receiveN(t, pc, fe, 6)
	_ = pc.Conn().Close() // gone without Sync
	time.Sleep(300 * time.Millisecond)

	// Is any server connection of s1 idle in a transaction now?
	super := testenv.Connect(t, ctx, shardURL("s1"))
	defer super.Close(ctx)
	var idleInTx int
	if err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()").Scan(&idleInTx); err != nil {
		t.Fatal(err)
	}
	if idleInTx > 0 {
		t.Errorf("%d server connection(s) of s1 idle in a transaction after the client left", idleInTx)
	}
	// The next client: an autocommit INSERT on s1 must stay.
	next := testenv.Connect(t, ctx, proxyURL)
	if _, err := next.Exec(ctx, fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, '%s')", c, owner)); err != nil {
		t.Fatal(err)
	}
	st := next.PgConn().TxStatus()
	next.Close(ctx)
	time.Sleep(300 * time.Millisecond)
	if n := reviewCount(t, ctx, fmt.Sprintf("id = %d", c)); n != 1 {
		t.Errorf("the next client's autocommit INSERT is lost (status after it %q)", st)
	}
	if n := reviewCount(t, ctx, fmt.Sprintf("id IN (%d, %d)", a, b)); n != 0 {
		t.Errorf("%d rows of the unsynced pipeline are committed", n)
	}
}

// A client that leaves in the middle of a COPY FROM STDIN into a sharded
// table: session.end pools the current shard's connection (resetForPool
// -> releaseServer, which looks at no txStatus) while it is in COPY IN
// mode inside the proxy's BEGIN. The next client's query on that shard
// is eaten by the COPY.
func TestReviewDisconnectMidCopy(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-copy-leave"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	pc, fe := rawConn(t, ctx)
	fe.Send(&pgproto3.Query{String: "COPY wallets (id, owner) FROM STDIN"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*pgproto3.CopyInResponse); !ok {
		t.Fatalf("COPY answered %T", m)
	}
	fe.Send(&pgproto3.CopyData{Data: []byte(fmt.Sprintf("%d\t%s\n", reviewKey(8_600_000, 2), owner))})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_ = pc.Conn().Close() // gone mid-COPY
	time.Sleep(300 * time.Millisecond)

	for _, id := range proxyShards {
		super := testenv.Connect(t, ctx, shardURL(id))
		var n int
		if err := super.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY wallets%' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		super.Close(ctx)
		if n > 0 {
			t.Errorf("%s: %d server connection(s) still in the COPY after the client left", id, n)
		}
	}
	// Every shard answers the next client.
	next := testenv.Connect(t, ctx, proxyURL)
	defer next.Close(ctx)
	for i := range proxyShards {
		var n int
		k := reviewKey(8_600_100, i)
		if err := next.QueryRow(ctx, "SELECT count(*) FROM wallets WHERE id = $1", k).Scan(&n); err != nil {
			t.Errorf("next client on %s: %v", proxyShards[i], err)
			_, _ = next.Exec(ctx, "ROLLBACK")
		}
	}
}

var _ = strings.Contains
