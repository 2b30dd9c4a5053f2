package router

// Benchmarks of the proxy's hot path: one client session through
// Router.Serve, over loopback TCP, to a fake PostgreSQL server
// (fakebackend_test.go), in transaction pooling. Each iteration is one
// round trip that waits for ReadyForQuery.
//
//	go test ./router -run '^$' -bench RoundTrip -benchmem

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/wire"
)

const benchQuery = "SELECT 1"

// benchSession is a client logged into a Router that serves it.
type benchSession struct {
	backends []*fakeBackend // one per shard
	nc       net.Conn
	r        *bufio.Reader
	header   [5]byte
	body     []byte
}

// newBenchSession starts a fake backend, a router with one shard on it and
// a client session; the session has logged in (the startup answer up to
// ReadyForQuery has been read). Everything ends when tb does.
func newBenchSession(tb testing.TB) *benchSession { return newBenchSessionSharded(tb, 0) }

// newBenchSessionSharded is newBenchSession with sharded routing on when
// shards > 0: that many fake backends, pgbench_accounts sharded by aid
// (int4) in the map and in the catalog, so every statement is planned and
// routed by its key.
func newBenchSessionSharded(tb testing.TB, shards int) *benchSession {
	tb.Helper()
	var list []metadata.Shard
	var backends []*fakeBackend
	for i := range max(shards, 1) {
		fb := startFakeBackend(tb)
		backends = append(backends, fb)
		list = append(list, metadata.Shard{ID: fmt.Sprintf("s%d", i), Primary: fb.Addr()})
	}
	m, err := metadata.NewMap(1, list)
	if err != nil {
		tb.Fatal(err)
	}
	if shards > 0 {
		m.Tables = []metadata.Table{{Schema: "public", Name: "pgbench_accounts", Key: "aid"}}
	}
	rt, err := New(Config{
		Mode:              PoolTransaction,
		PoolSize:          4,
		PreparedPerServer: 100,
		ConnectTimeout:    5 * time.Second,
		Backend:           func(string) (Credentials, bool) { return Credentials{User: "bench"}, true },
		Map:               m,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if shards > 0 {
		// The catalog the router would read from the first shard.
		snap, err := catalog.NewSnapshot(1, []*catalog.Table{{
			Schema: "public", Name: "pgbench_accounts", Kind: catalog.KindTable,
			Columns: []catalog.Column{
				{Name: "aid", TypeOID: 23, BaseTypeOID: 23, TypeName: "integer", NotNull: true},
				{Name: "bid", TypeOID: 23, BaseTypeOID: 23, TypeName: "integer"},
				{Name: "abalance", TypeOID: 23, BaseTypeOID: 23, TypeName: "integer"},
				{Name: "filler", TypeOID: 1042, BaseTypeOID: 1042, TypeName: "character(84)"},
			},
		}}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		e := &catalogEntry{}
		e.current.Store(&loadedCatalog{snap: snap, epoch: rt.schemaEpoch.Load()})
		rt.catalogs.byDB.Store("bench", e)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- nc
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		_ = client.Close()
		tb.Fatal("accepting the client connection failed")
	}
	for _, nc := range []net.Conn{client, server} {
		_ = nc.(*net.TCPConn).SetNoDelay(true)
	}

	wc := wire.NewConnForTest(server, "bench", "bench")
	done := make(chan error, 1)
	go func() { done <- rt.Serve(context.Background(), wc) }()

	s := &benchSession{backends: backends, nc: client, r: bufio.NewReaderSize(client, 16<<10)}
	tb.Cleanup(func() {
		_, _ = client.Write([]byte{'X', 0, 0, 0, 4})
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Error("Serve did not return after Terminate")
		}
		_ = client.Close()
		_ = server.Close()
		rt.Close()
	})
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.await(); err != nil {
		tb.Fatalf("login: %v", err)
	}
	_ = client.SetDeadline(time.Time{})
	return s
}

// await reads the answer up to ReadyForQuery and returns the number of
// DataRows in it, or the first error the server reported.
func (s *benchSession) await() (rows int, err error) {
	for {
		if _, err := io.ReadFull(s.r, s.header[:]); err != nil {
			return rows, err
		}
		n := int(binary.BigEndian.Uint32(s.header[1:])) - 4
		if cap(s.body) < n {
			s.body = make([]byte, n)
		}
		body := s.body[:n]
		if _, err := io.ReadFull(s.r, body); err != nil {
			return rows, err
		}
		switch s.header[0] {
		case 'D':
			rows++
		case 'E':
			var e pgproto3.ErrorResponse
			if derr := e.Decode(body); derr != nil {
				err = derr
			} else if err == nil {
				err = errors.New(e.Severity + " " + e.Code + ": " + e.Message)
			}
		case 'Z':
			return rows, err
		}
	}
}

// roundTrip sends req and waits for ReadyForQuery; the answer must hold
// one row and no error.
func (s *benchSession) roundTrip(tb testing.TB, req []byte) {
	if _, err := s.nc.Write(req); err != nil {
		tb.Fatal(err)
	}
	rows, err := s.await()
	if err != nil {
		tb.Fatal(err)
	}
	if rows != 1 {
		tb.Fatalf("got %d rows, want 1", rows)
	}
}

func encodeMessages(tb testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	tb.Helper()
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf
}

// benchScenario is a round trip repeated per iteration, after an optional
// setup batch (which must answer with ReadyForQuery and no rows).
type benchScenario struct {
	name  string
	setup func(tb testing.TB) []byte
	each  func(tb testing.TB) []byte
}

var benchScenarios = []benchScenario{
	{
		name: "Simple",
		each: func(tb testing.TB) []byte { return encodeMessages(tb, &pgproto3.Query{String: benchQuery}) },
	},
	{
		// Parse of the unnamed statement every time, as with
		// pgbench -M extended (libpq also sends a Describe of the portal).
		name: "Extended",
		each: func(tb testing.TB) []byte {
			return encodeMessages(tb,
				&pgproto3.Parse{Query: benchQuery},
				&pgproto3.Bind{},
				&pgproto3.Execute{},
				&pgproto3.Sync{})
		},
	},
	{
		// A named statement parsed once, then bound and executed.
		name: "Prepared",
		setup: func(tb testing.TB) []byte {
			return encodeMessages(tb, &pgproto3.Parse{Name: "bench_stmt", Query: benchQuery}, &pgproto3.Sync{})
		},
		each: func(tb testing.TB) []byte {
			return encodeMessages(tb,
				&pgproto3.Bind{PreparedStatement: "bench_stmt"},
				&pgproto3.Execute{},
				&pgproto3.Sync{})
		},
	},
}

// shardedQuery is pgbench's select by key; the literal or parameter
// changes every iteration, as with pgbench -S.
const shardedQuery = "SELECT abalance FROM pgbench_accounts WHERE aid = "

// shardedScenarios run with sharded routing on; each has 1024 requests,
// used in turn.
var shardedScenarios = []struct {
	name  string
	setup func(tb testing.TB) []byte
	each  func(tb testing.TB, aid int) []byte
}{
	{
		name: "Simple",
		each: func(tb testing.TB, aid int) []byte {
			return encodeMessages(tb, &pgproto3.Query{String: shardedQuery + strconv.Itoa(aid)})
		},
	},
	{
		// What libpq sends for pgbench -M extended.
		name: "Extended",
		each: func(tb testing.TB, aid int) []byte {
			return encodeMessages(tb,
				&pgproto3.Parse{Query: shardedQuery + "$1"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte(strconv.Itoa(aid))}},
				&pgproto3.Describe{ObjectType: 'P'},
				&pgproto3.Execute{},
				&pgproto3.Sync{})
		},
	},
	{
		name: "Prepared",
		setup: func(tb testing.TB) []byte {
			return encodeMessages(tb, &pgproto3.Parse{Name: "bench_stmt", Query: shardedQuery + "$1"}, &pgproto3.Sync{})
		},
		each: func(tb testing.TB, aid int) []byte {
			return encodeMessages(tb,
				&pgproto3.Bind{PreparedStatement: "bench_stmt", Parameters: [][]byte{[]byte(strconv.Itoa(aid))}},
				&pgproto3.Execute{},
				&pgproto3.Sync{})
		},
	},
}

func benchmarkShardedRoundTrip(b *testing.B, shards int, name string) {
	for _, sc := range shardedScenarios {
		if sc.name != name {
			continue
		}
		s := newBenchSessionSharded(b, shards)
		if sc.setup != nil {
			s.roundTripRows(b, sc.setup(b), 0)
		}
		reqs := make([][]byte, 1024)
		for i := range reqs {
			reqs[i] = sc.each(b, 1+i*7919%100000)
		}
		for _, r := range reqs {
			s.roundTrip(b, r) // every shard's statement prepared, plans cached
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.roundTrip(b, reqs[i&1023])
			i++
		}
		return
	}
	b.Fatalf("no scenario %q", name)
}

func BenchmarkRoundTripSharded(b *testing.B) {
	for _, shards := range []int{1, 2} {
		for _, sc := range shardedScenarios {
			b.Run(fmt.Sprintf("shards=%d/%s", shards, sc.name), func(b *testing.B) {
				benchmarkShardedRoundTrip(b, shards, sc.name)
			})
		}
	}
}

// roundTripRows is roundTrip for an answer of n rows.
func (s *benchSession) roundTripRows(tb testing.TB, req []byte, n int) {
	if _, err := s.nc.Write(req); err != nil {
		tb.Fatal(err)
	}
	if rows, err := s.await(); err != nil || rows != n {
		tb.Fatalf("got %d rows (want %d), err %v", rows, n, err)
	}
}

// start opens a session and runs the scenario's setup; it returns the
// session and the per-iteration request.
func (sc benchScenario) start(tb testing.TB) (*benchSession, []byte) {
	tb.Helper()
	s := newBenchSession(tb)
	if sc.setup != nil {
		if _, err := s.nc.Write(sc.setup(tb)); err != nil {
			tb.Fatal(err)
		}
		if rows, err := s.await(); err != nil || rows != 0 {
			tb.Fatalf("setup: %d rows, err %v", rows, err)
		}
	}
	return s, sc.each(tb)
}

func benchmarkRoundTrip(b *testing.B, name string) {
	for _, sc := range benchScenarios {
		if sc.name != name {
			continue
		}
		s, req := sc.start(b)
		// The first round trip prepares the server statement and warms
		// the plan cache; it is not part of the measured steady state.
		s.roundTrip(b, req)
		b.ReportAllocs()
		for b.Loop() {
			s.roundTrip(b, req)
		}
		return
	}
	b.Fatalf("no scenario %q", name)
}

func BenchmarkRoundTripSimple(b *testing.B)   { benchmarkRoundTrip(b, "Simple") }
func BenchmarkRoundTripExtended(b *testing.B) { benchmarkRoundTrip(b, "Extended") }
func BenchmarkRoundTripPrepared(b *testing.B) { benchmarkRoundTrip(b, "Prepared") }

// TestRoundTripHarness runs each benchmark's round trip a few times, so
// the fake backend and the benchmarks keep working without -bench.
func TestRoundTripHarness(t *testing.T) {
	for _, shards := range []int{1, 2} {
		for _, sc := range shardedScenarios {
			t.Run(fmt.Sprintf("sharded/%d/%s", shards, sc.name), func(t *testing.T) {
				s := newBenchSessionSharded(t, shards)
				_ = s.nc.SetDeadline(time.Now().Add(10 * time.Second))
				if sc.setup != nil {
					s.roundTripRows(t, sc.setup(t), 0)
				}
				for aid := range 5 {
					s.roundTrip(t, sc.each(t, aid+1))
				}
			})
		}
	}
	for _, sc := range benchScenarios {
		t.Run(sc.name, func(t *testing.T) {
			s, req := sc.start(t)
			_ = s.nc.SetDeadline(time.Now().Add(10 * time.Second))
			for range 5 {
				s.roundTrip(t, req)
			}
		})
	}
}

// TestExtendedAcrossShardsSyncsOnce: a driver's Parse/Bind/Execute/Sync
// whose key moves between shards costs each batch one Sync, on the shard
// it ran on. The repeated unnamed Parse takes no connection of its own, so
// no other shard is flushed or synced for it.
func TestExtendedAcrossShardsSyncsOnce(t *testing.T) {
	s := newBenchSessionSharded(t, 2)
	_ = s.nc.SetDeadline(time.Now().Add(20 * time.Second))
	each := shardedScenarios[1].each // Extended
	if shardedScenarios[1].name != "Extended" {
		t.Fatal("scenario order changed")
	}
	for aid := 1; aid <= 10; aid++ {
		s.roundTrip(t, each(t, aid)) // statements prepared on both shards
	}
	var syncs, flushes int64
	for _, fb := range s.backends {
		syncs -= fb.syncs.Load()
		flushes -= fb.flushes.Load()
	}
	const n = 200
	for i := range n {
		s.roundTrip(t, each(t, 1+i*7919%100000))
	}
	for _, fb := range s.backends {
		syncs += fb.syncs.Load()
		flushes += fb.flushes.Load()
	}
	if syncs != n || flushes != 0 {
		t.Errorf("%d batches reached the shards as %d Syncs and %d Flushes, want %d and 0", n, syncs, flushes, n)
	}
}
