package keyspace_test

// The Go hash functions against the server's, for many values in batches:
// each query takes a batch as one array parameter and returns the server's
// hashes in the array's order (with ordinality), so 100,000 values cost a
// few round trips.

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const (
	batchSize     = 20000
	maxMismatches = 10 // per test, then it stops reporting
)

// connect opens a superuser connection to the shard and checks that the
// database is what the hashes assume: UTF8, PostgreSQL 15.
func connect(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[0].Primary, "app"))
	var enc string
	var version int
	if err := conn.QueryRow(ctx, `select current_setting('server_encoding'),
		current_setting('server_version_num')::int / 10000`).Scan(&enc, &version); err != nil {
		t.Fatal(err)
	}
	if enc != "UTF8" || version != 15 {
		t.Fatalf("the test database is %s on PostgreSQL %d, want UTF8 on 15", enc, version)
	}
	return ctx, conn
}

// serverHashes runs query with each batch of vals as $1 and returns its
// rows, ncol nullable int8 columns each, in the order of vals.
func serverHashes[T any](t *testing.T, ctx context.Context, conn *pgx.Conn, query string, vals []T, ncol int) [][]*int64 {
	t.Helper()
	out := make([][]*int64, 0, len(vals))
	for start := 0; start < len(vals); start += batchSize {
		batch := vals[start:min(start+batchSize, len(vals))]
		rows, err := conn.Query(ctx, query, batch)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		for rows.Next() {
			row := make([]*int64, ncol)
			dest := make([]any, ncol)
			for i := range row {
				dest[i] = &row[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	if len(out) != len(vals) {
		t.Fatalf("%d rows for %d values", len(out), len(vals))
	}
	return out
}

// mismatches reports a difference between the server and Go, and stops
// the test after maxMismatches of them.
type mismatches struct {
	t *testing.T
	n int
}

func (m *mismatches) check(what string, got *int64, want keyspace.ID, wantNull bool) {
	m.t.Helper()
	switch {
	case wantNull && got == nil, !wantNull && got != nil && *got == int64(want):
		return
	case wantNull:
		m.t.Errorf("%s: server %d, want null", what, *got)
	case got == nil:
		m.t.Errorf("%s: server null, Go %d", what, want)
	default:
		m.t.Errorf("%s: server %d, Go %d", what, *got, want)
	}
	if m.n++; m.n >= maxMismatches {
		m.t.FailNow()
	}
}

// edgeInts are the integers around every boundary the fold and the int
// types have, and every power of two and its neighbours.
func edgeInts() []int64 {
	vs := []int64{0, 1, -1, 42, -42,
		math.MinInt16, math.MaxInt16, math.MinInt32, math.MaxInt32, math.MinInt64, math.MaxInt64,
		math.MaxUint32, -math.MaxUint32, 1<<32 | 1, -1<<32 | 1, 0x7fffffff00000000, -0x7fffffff00000000}
	for _, b := range []int64{math.MinInt16, math.MaxInt16, math.MinInt32, math.MaxInt32} {
		for d := int64(-2); d <= 2; d++ {
			vs = append(vs, b+d)
		}
	}
	for s := range 63 {
		p := int64(1) << s
		vs = append(vs, p-1, p, p+1, -p-1, -p, -p+1)
	}
	return append(vs, math.MinInt64+1, math.MaxInt64-1)
}

// TestInt compares Int with hashint8extended for every value, and with
// hashint4extended and hashint2extended for values those types can hold.
func TestInt(t *testing.T) {
	ctx, conn := connect(t)
	r := rand.New(rand.NewPCG(20240501, 1))
	vals := edgeInts()
	edges := len(vals)
	for range 100000 {
		vals = append(vals, r.Int64())
	}
	for range 50000 {
		vals = append(vals, int64(int32(r.Uint32())))
	}
	for range 20000 {
		vals = append(vals, int64(int16(r.Uint32())))
	}
	rows := serverHashes(t, ctx, conn, `
		select hashint8extended(x, 0),
			case when x between -2147483648 and 2147483647 then hashint4extended(x::int4, 0) end,
			case when x between -32768 and 32767 then hashint2extended(x::int2, 0) end
		from unnest($1::int8[]) with ordinality as t(x, i) order by i`, vals, 3)
	m := &mismatches{t: t}
	var in4, in2 int
	for i, v := range vals {
		want := keyspace.Int(v)
		is4 := v >= math.MinInt32 && v <= math.MaxInt32
		is2 := v >= math.MinInt16 && v <= math.MaxInt16
		m.check(fmt.Sprintf("hashint8extended(%d, 0)", v), rows[i][0], want, false)
		m.check(fmt.Sprintf("hashint4extended(%d, 0)", v), rows[i][1], want, !is4)
		m.check(fmt.Sprintf("hashint2extended(%d, 0)", v), rows[i][2], want, !is2)
		if is4 {
			in4++
		}
		if is2 {
			in2++
		}
	}
	t.Logf("%d values (%d edge, %d random): %d also as int4, %d also as int2", len(vals), edges, len(vals)-edges, in4, in2)
}

// randomRune is a valid Unicode scalar value other than NUL, which text
// cannot hold, encoded in one to four bytes of UTF-8.
func randomRune(r *rand.Rand) rune {
	for {
		var c rune
		switch p := r.IntN(10); {
		case p < 5:
			c = rune(1 + r.IntN(0x7f)) // 1 byte
		case p < 7:
			c = rune(0x80 + r.IntN(0x800-0x80)) // 2 bytes
		case p < 9:
			c = rune(0x800 + r.IntN(0x10000-0x800)) // 3 bytes
		default:
			c = rune(0x10000 + r.IntN(utf8.MaxRune+1-0x10000)) // 4 bytes
		}
		if utf8.ValidRune(c) {
			return c
		}
	}
}

// edgeTexts are strings of every byte length from 0 to 49 (around the
// 12-byte blocks), in ASCII and in two-, three- and four-byte characters.
func edgeTexts() []string {
	var ts []string
	for n := range 50 {
		ts = append(ts, strings.Repeat("x", n), strings.Repeat("é", n/2)+strings.Repeat("y", n%2),
			strings.Repeat("日", n/3)+strings.Repeat("z", n%3), strings.Repeat("🐘", n/4)+strings.Repeat("w", n%4))
	}
	return append(ts, "ñandú", "日本語", "\x01", "\u007f", "\u0080", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff")
}

// TestText compares Text with hashtextextended under the database's
// collation, under "C", and under ICU's root collation (deterministic)
// where the server has ICU.
func TestText(t *testing.T) {
	ctx, conn := connect(t)
	var icu bool
	if err := conn.QueryRow(ctx, `select exists (select from pg_collation where collname = 'und-x-icu')`).Scan(&icu); err != nil {
		t.Fatal(err)
	}
	icuExpr := "null::int8"
	if icu {
		icuExpr = `hashtextextended(x collate "und-x-icu", 0)`
	} else {
		t.Log("no ICU on this server: not checking an ICU collation")
	}
	r := rand.New(rand.NewPCG(20240501, 2))
	vals := edgeTexts()
	edges := len(vals)
	var sb strings.Builder
	for range 20000 {
		sb.Reset()
		for range r.IntN(101) {
			sb.WriteRune(randomRune(r))
		}
		vals = append(vals, sb.String())
	}
	rows := serverHashes(t, ctx, conn, `
		select hashtextextended(x, 0), hashtextextended(x collate "C", 0), `+icuExpr+`,
			hashtextextended(x::varchar, 0)
		from unnest($1::text[]) with ordinality as t(x, i) order by i`, vals, 4)
	m := &mismatches{t: t}
	var bytes int
	for i, s := range vals {
		want := keyspace.Text(s)
		m.check(fmt.Sprintf("hashtextextended(%q, 0)", s), rows[i][0], want, false)
		m.check(fmt.Sprintf(`hashtextextended(%q collate "C", 0)`, s), rows[i][1], want, false)
		m.check(fmt.Sprintf(`hashtextextended(%q collate "und-x-icu", 0)`, s), rows[i][2], want, !icu)
		m.check(fmt.Sprintf(`hashtextextended(%q::varchar, 0)`, s), rows[i][3], want, false)
		bytes += len(s)
	}
	t.Logf("%d texts (%d edge, %d random), %d bytes", len(vals), edges, len(vals)-edges, bytes)
}

// formatUUID writes u the way PostgreSQL does, so that the server parses
// the same 16 bytes UUID hashes.
func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestUUID compares UUID with uuid_hash_extended. The uuids travel as
// text, which also checks that the byte order of UUID's argument is the
// order in which a uuid is written.
func TestUUID(t *testing.T) {
	ctx, conn := connect(t)
	r := rand.New(rand.NewPCG(20240501, 3))
	us := [][16]byte{{}, {15: 1}, {0: 0x80}}
	var ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	us = append(us, ones)
	edges := len(us)
	for range 5000 {
		var u [16]byte
		for i := range u {
			u[i] = byte(r.Uint32())
		}
		us = append(us, u)
	}
	text := make([]string, len(us))
	for i, u := range us {
		text[i] = formatUUID(u)
	}
	rows := serverHashes(t, ctx, conn, `
		select uuid_hash_extended(x::uuid, 0)
		from unnest($1::text[]) with ordinality as t(x, i) order by i`, text, 1)
	m := &mismatches{t: t}
	for i, u := range us {
		m.check(fmt.Sprintf("uuid_hash_extended('%s', 0)", text[i]), rows[i][0], keyspace.UUID(u), false)
	}
	t.Logf("%d uuids (%d edge, %d random)", len(us), edges, len(us)-edges)
}
