package sharded_test

// Review tests: each demonstrates one bug of transaction state across
// shard connections (see the review report). They fail while the bug is
// there.

import (
	"context"
	"fmt"
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

// A pipeline whose first statement fails on s1, then a write on s2 and s3
// (keys on two shards, not s1). The UPDATE's Bind upgrades the batch
// (BEGIN written to s1, which is skipping to Sync); at its Execute,
// runPortal relays s1's error (skipping = true) and runs the UPDATE on s2
// and s3 anyway, and sends its CommandComplete after the ErrorResponse.
// At the Sync, s1 is a parked "reader" still skipping to a Sync it never
// gets: finishDistributedQuiet's execSimple(s1, "COMMIT") is ignored by
// PostgreSQL and the session waits forever, holding the UPDATE's row
// locks on s2 and s3.
func TestReviewFailedPipelineThenMultiShardWrite(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-fail-then-update"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	keys := []int64{reviewKey(8_200_000, 0), reviewKey(8_200_000, 1), reviewKey(8_200_000, 2)}
	conn := testenv.Connect(t, ctx, proxyURL)
	for _, k := range keys {
		if _, err := conn.Exec(ctx, "INSERT INTO wallets (id, owner) VALUES ($1, $2)", k, owner); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	pc, fe := rawConn(t, ctx)
	defer pc.Conn().Close()
	insert := fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, 'dup')", keys[0])
	sendExtended(fe, insert) // duplicate key on s1
	sendExtended(fe, fmt.Sprintf("UPDATE wallets SET version = version + 1 WHERE id IN (%d, %d)", keys[1], keys[2]))
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	sawError, ready := false, false
	for !ready {
		m, err := fe.Receive()
		if err != nil {
			t.Errorf("no ReadyForQuery within 5 s: %v", err)
			break
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			sawError = true
		case *pgproto3.ReadyForQuery:
			ready = true
		default:
			if sawError {
				t.Errorf("%T %+v after the ErrorResponse; PostgreSQL skips to Sync", m, m)
			}
		}
	}
	if !ready {
		// Unblock the proxy's session (it waits on s1) so that it lets go
		// of the UPDATE's row locks on s2 and s3.
		direct := testenv.Connect(t, ctx, shardURL("s1"))
		_, _ = direct.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid() AND query = $1", insert)
		direct.Close(ctx)
		time.Sleep(500 * time.Millisecond)
	}
	if n := reviewCount(t, ctx, "owner = '"+owner+"' AND version <> 0"); n != 0 {
		t.Fatalf("the UPDATE after the failed INSERT of the same pipeline committed on %d rows; want none", n)
	}
}

// A pipeline whose first statement fails on one shard, then a statement
// for another shard: useShard relays the first shard's answers, finds
// s.skipping and returns errSkipped, which handleBatchError turns into a
// FATAL: the client's session ends instead of getting the error and
// ReadyForQuery.
func TestReviewFailedPipelineThenOtherShard(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-fail-then-switch"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	a, b := reviewKey(8_300_000, 0), reviewKey(8_300_000, 1)
	conn := testenv.Connect(t, ctx, proxyURL)
	if _, err := conn.Exec(ctx, "INSERT INTO wallets (id, owner) VALUES ($1, $2)", a, owner); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	pc, fe := rawConn(t, ctx)
	defer pc.Conn().Close()
	sendExtended(fe, fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, 'dup')", a))
	sendExtended(fe, fmt.Sprintf("SELECT count(*) FROM wallets WHERE id = %d", b))
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("no ReadyForQuery: %v", err)
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok && e.Severity == "FATAL" {
			t.Fatalf("the session was ended: FATAL %s %s", e.Code, e.Message)
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			break
		}
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

// A client that read on two shards in a pipeline and leaves before its
// Sync: the connection it left on s1 (parked, its implicit transaction
// open, its txStatus still 'I' from its last ReadyForQuery) is given back
// to the pool by session.end (releaseParked(false)) instead of closed.
// It stays in that transaction, holding the gone client's locks (DDL on
// the table waits), until some later client's message ends it.
func TestReviewDisconnectWithUnsyncedPipelineOnTwoShards(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	a, b := reviewKey(8_500_000, 0), reviewKey(8_500_000, 1)
	pc, fe := rawConn(t, ctx)
	sendExtended(fe, fmt.Sprintf("SELECT count(*) FROM wallets WHERE id = %d", a))
	sendExtended(fe, fmt.Sprintf("SELECT count(*) FROM wallets WHERE id = %d", b))
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	// ParseComplete, BindComplete, DataRow, CommandComplete for each.
	receiveN(t, pc, fe, 8)
	_ = pc.Conn().Close() // gone without Sync
	time.Sleep(500 * time.Millisecond)

	// Nothing of the gone client may hold a lock on s1 now.
	direct := testenv.Connect(t, ctx, shardURL("s1"))
	defer direct.Close(ctx)
	tx, err := direct.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE wallets IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Errorf("a pooled server connection still holds the gone client's lock on wallets: %v", err)
	}
}

// A client with a session setting the joining shard's connection lacks:
// ensureServer applies it with an internal query whose ReadyForQuery
// ('I') overwrites s.txStatus (relay.go: swallowed 'Q' entries set it), so
// useShard sees no transaction and does not replay BEGIN on the new
// shard. The statement there autocommits; ROLLBACK does not undo it.
func TestReviewSettingsReplayDropsTransactionOnJoiningShard(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	const owner = "rv-settings-join"
	reviewClean(t, ctx, owner)
	defer reviewClean(t, ctx, owner)
	conn := testenv.Connect(t, ctx, proxyURL)
	defer conn.Close(ctx)
	a, b := reviewKey(8_700_000, 0), reviewKey(8_700_000, 1)
	for _, q := range []string{
		"SET statement_timeout = '61234ms'", // a value no pooled connection has
		"BEGIN",
		fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, '%s')", a, owner),
		fmt.Sprintf("INSERT INTO wallets (id, owner) VALUES (%d, '%s')", b, owner),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if st := conn.PgConn().TxStatus(); st != 'T' {
		t.Errorf("inside BEGIN after a write on a second shard the status is %q", st)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := reviewCount(t, ctx, "owner = '"+owner+"'"); n != 0 {
		t.Fatalf("%d rows of a rolled-back transaction are committed", n)
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

// A pipeline that reads on s1, then s2 (s1's connection X is parked and
// put in s.unsynced), then runs a scatter read: runDistributed syncs every
// connection and releaseServer gives X back to the pool, but X stays in
// s.unsynced. At the client's Sync, syncParked writes a Sync to X and
// reads from it, while X already serves another client.
func TestReviewUnsyncedConnectionSyncedAfterPooling(t *testing.T) {
	reviewSkip(t)
	ctx := testenv.TestCtx(t, time.Minute)
	a, b := reviewKey(8_800_000, 0), reviewKey(8_800_000, 1)
	pc, fe := rawConn(t, ctx)
	defer pc.Conn().Close()
	sendExtended(fe, fmt.Sprintf("SELECT count(*) FROM wallets WHERE id = %d", a))
	sendExtended(fe, fmt.Sprintf("SELECT count(*) FROM wallets WHERE id = %d", b))
	sendExtended(fe, "SELECT count(*) FROM wallets")
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	receiveN(t, pc, fe, 12)

	// Another client takes X (the most recently pooled connection of s1).
	other := testenv.Connect(t, ctx, proxyURL)
	defer other.Close(ctx)
	type answer struct {
		n   int64
		err error
	}
	done := make(chan answer, 1)
	go func() {
		var x answer
		x.err = other.QueryRow(ctx, fmt.Sprintf("SELECT 42 + count(*) * 0 FROM (SELECT pg_sleep(1.5)) s, wallets WHERE id = %d", a), pgx.QueryExecModeSimpleProtocol).Scan(&x.n)
		done <- x
	}()
	time.Sleep(500 * time.Millisecond)
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pc.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Errorf("first client: no ReadyForQuery: %v", err)
			break
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	select {
	case x := <-done:
		if x.err != nil || x.n != 42 {
			t.Errorf("the other client got %d, %v; want 42", x.n, x.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the other client got no answer")
	}
}
