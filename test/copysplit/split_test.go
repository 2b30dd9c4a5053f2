package copysplit_test

// The splitter against the server. Generated streams (values with every
// character COPY treats specially, encoded the many ways COPY allows) must
// load and split alike, and loaded as two shards would load them, give the
// same rows. Random streams (mostly malformed) must fail or succeed alike.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/copysplit"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// valueParts are what generated values are made of.
var valueParts = []string{"a", "Z", "0", "7", "x", "N", ".", " ", "\t", "\n", "\r", `\`, ",", `"`, "'", "|", ";", "é", "€", "😀", `\.`, `\N`, "NULL"}

type value struct {
	s    string
	null bool
}

func randomValue(r *rand.Rand) value {
	if r.IntN(8) == 0 {
		return value{null: true}
	}
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(valueParts[r.IntN(len(valueParts))])
	}
	return value{s: b.String()}
}

// encodeText writes v as a text-format field, choosing among the escapes
// COPY accepts.
func encodeText(b *strings.Builder, r *rand.Rand, o copysplit.Options, v value) {
	if v.null {
		b.WriteString(o.Null)
		return
	}
	if v.s == o.Null && v.s != "" {
		// Escape the first character so the raw field is not the NULL
		// string (which is compared before decoding).
		fmt.Fprintf(b, `\%03o`, v.s[0])
		b.WriteString(v.s[1:])
		return
	}
	for i := 0; i < len(v.s); i++ {
		c := v.s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\t' && r.IntN(2) == 0:
			b.WriteString(`\t`)
		case c == '\n' && r.IntN(2) == 0:
			b.WriteString(`\n`)
		case c == '\r' && r.IntN(2) == 0:
			b.WriteString(`\r`)
		case c == '\t' || c == '\n' || c == '\r' || r.IntN(10) == 0 && c < 0x80:
			if r.IntN(2) == 0 {
				fmt.Fprintf(b, `\%03o`, c)
			} else {
				fmt.Fprintf(b, `\x%02X`, c)
			}
		case c == o.Delimiter:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// encodeCSV writes v as a CSV field, quoting when needed and sometimes
// when not.
func encodeCSV(b *strings.Builder, r *rand.Rand, o copysplit.Options, v value) {
	if v.null {
		b.WriteString(o.Null)
		return
	}
	needs := v.s == "" || v.s == o.Null || strings.ContainsAny(v.s, string([]byte{o.Delimiter, o.Quote, '\r', '\n'})) ||
		strings.HasPrefix(v.s, `\.`)
	if !needs && r.IntN(3) != 0 {
		b.WriteString(v.s)
		return
	}
	b.WriteByte(o.Quote)
	for i := 0; i < len(v.s); i++ {
		c := v.s[i]
		if c == o.Quote || c == o.Escape {
			b.WriteByte(o.Escape)
		}
		b.WriteByte(c)
	}
	b.WriteByte(o.Quote)
}

// randomOptions picks the format and options of one stream. Escape and
// quote are set explicitly so the encoders know them.
func randomOptions(r *rand.Rand) copysplit.Options {
	o := copysplit.Options{CSV: r.IntN(2) == 0, KeyField: keyField, KeyName: keyName, Header: r.IntN(4) == 0}
	if o.CSV {
		o.Delimiter = [...]byte{',', ';', '|', '\t'}[r.IntN(4)]
		o.Quote = [...]byte{'"', '"', '\''}[r.IntN(3)]
		o.Escape = [...]byte{o.Quote, '\\'}[r.IntN(2)]
		o.Null, o.NullSet = [...]string{"", "NULL", `\N`}[r.IntN(3)], true
		o.ForceNotNull = r.IntN(6) == 0
		o.ForceNull = !o.ForceNotNull && r.IntN(6) == 0
	} else {
		o.Delimiter = [...]byte{'\t', '|', ',', ';'}[r.IntN(4)]
		o.Null, o.NullSet = [...]string{`\N`, "NULL", `\N`}[r.IntN(3)], true
	}
	return o
}

// generate makes a stream of rows with keys the test knows.
func generate(r *rand.Rand, o copysplit.Options) []byte {
	eol := [...]string{"\n", "\r\n", "\r"}[r.IntN(3)]
	var b strings.Builder
	if o.Header {
		d := string(o.Delimiter)
		b.WriteString("a" + d + "k" + d + "b" + eol)
	}
	rows := r.IntN(40)
	for i := range rows {
		for f := range 3 {
			if f > 0 {
				b.WriteByte(o.Delimiter)
			}
			if o.CSV {
				encodeCSV(&b, r, o, randomValue(r))
			} else {
				encodeText(&b, r, o, randomValue(r))
			}
		}
		if i < rows-1 || r.IntN(4) != 0 {
			b.WriteString(eol)
		}
	}
	if rows > 0 && strings.HasSuffix(b.String(), eol) && r.IntN(4) == 0 {
		// The end marker; what follows is ignored, malformed or not.
		b.WriteString(`\.` + eol + "ignored\r\n\\x")
	}
	return []byte(b.String())
}

func TestGeneratedStreams(t *testing.T) {
	ctx := testenv.TestCtx(t, 5*time.Minute)
	conn := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database))
	for _, name := range []string{"whole", "shard_a", "shard_b"} {
		createTable(t, ctx, conn, name)
	}
	r := rand.New(rand.NewPCG(20240601, 1))
	rows := 0
	for i := range 400 {
		o := randomOptions(r)
		data := generate(r, o)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("stream %d, %s\n%q\n%s", i, copySQL("whole", o), data, fmt.Sprintf(format, args...))
		}
		stored, err := load(ctx, conn, "whole", o, data, r)
		if err != nil {
			fail("the server refused a generated stream: %v", err)
		}
		got := split(o, data, r)
		if got.err != nil {
			fail("the splitter refused it: %v", got.err)
		}
		if d := sameKeys(got.rows, stored); d != "" {
			fail("%s", d)
		}
		rows += len(got.rows)

		// Deal the rows out to two shards by key, as the router will,
		// each preceded by the header; together they must hold what the
		// whole stream did.
		var a, b []byte
		a, b = append(a, got.header...), append(b, got.header...)
		var keysA, keysB []*string
		for j, row := range got.rows {
			if len(row.Key)%2 == 0 {
				a = append(a, row.Data...)
				keysA = append(keysA, stored[j])
			} else {
				b = append(b, row.Data...)
				keysB = append(keysB, stored[j])
			}
		}
		for _, shard := range []struct {
			table string
			data  []byte
			keys  []*string
		}{{"shard_a", a, keysA}, {"shard_b", b, keysB}} {
			keys, err := load(ctx, conn, shard.table, o, shard.data, r)
			if err != nil {
				fail("shard %s refused its rows: %v\n%q", shard.table, err, shard.data)
			}
			if !slices.EqualFunc(keys, shard.keys, func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }) {
				fail("shard %s stored other keys", shard.table)
			}
		}
		var missing int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT a, k, b FROM whole EXCEPT ALL (SELECT a, k, b FROM shard_a UNION ALL SELECT a, k, b FROM shard_b)) x`).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 {
			fail("%d rows of the whole load are missing from the shards", missing)
		}
	}
	t.Logf("400 streams, %d rows", rows)
}

// Framing errors: those that stop PostgreSQL from finding lines, or the
// splitter from finding the key.
var framing = []string{
	"literal carriage return found in data",
	"literal newline found in data",
	"unquoted carriage return found in data",
	"unquoted newline found in data",
	"end-of-copy marker corrupt",
	"end-of-copy marker does not match previous newline style",
	"unterminated CSV quoted field",
}

var rawParts = map[bool][]string{
	false: {"a", "1", "\t", "\t", "|", "\n", "\n", "\r", "\r\n", `\`, `\\`, `\.`, `\N`, "N", ".", `\x4`, `\101`, `\t`, "é", ",", `"`},
	true:  {"a", "1", ",", ",", "|", "\n", "\n", "\r", "\r\n", `"`, `"`, `""`, `\`, `\.`, ".", "N", "'", "é", "NULL"},
}

// randomStream is random parts, half the time arranged in lines of three
// fields (so more streams load), mostly with one line ending.
func randomStream(r *rand.Rand, o copysplit.Options) []byte {
	parts := rawParts[o.CSV]
	delim := ","
	if !o.CSV {
		delim = "\t"
	}
	if o.Delimiter != 0 {
		delim = string(o.Delimiter)
	}
	var b strings.Builder
	if r.IntN(2) == 0 {
		for range r.IntN(40) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		return []byte(b.String())
	}
	eol := [...]string{"\n", "\r\n", "\r"}[r.IntN(3)]
	for range r.IntN(10) {
		for f := range 3 {
			if f > 0 {
				b.WriteString(delim)
			}
			for range r.IntN(4) {
				b.WriteString(parts[r.IntN(len(parts))])
			}
		}
		if r.IntN(10) == 0 {
			b.WriteString([...]string{"\n", "\r\n", "\r", ""}[r.IntN(4)])
		} else {
			b.WriteString(eol)
		}
	}
	return []byte(b.String())
}

type agreement int

const (
	bothLoaded  agreement = iota
	bothRefused           // for a reason the splitter must find: same error
	serverOnly            // refused by the server for a reason that is the shard's
	splitterToo           // refused by both, for reasons that may differ
)

// agree checks the splitter's result against the server's: what the
// server loads the splitter splits, with the same keys; what the server
// refuses for framing (or for a missing key) the splitter refuses with the
// same error; what the splitter refuses the server refuses.
func agree(pgErr error, stored []*string, got result) (agreement, string) {
	if pgErr == nil {
		if got.err != nil {
			return 0, "the splitter refused what the server loaded"
		}
		if d := sameKeys(got.rows, stored); d != "" {
			return 0, d
		}
		return bothLoaded, ""
	}
	var pe *pgconn.PgError
	if !errors.As(pgErr, &pe) {
		return 0, "the server's error is not a PostgreSQL error"
	}
	mine := slices.Contains(framing, pe.Message) || pe.Message == `missing data for column "k"`
	switch {
	case mine && got.err == nil:
		return 0, "the splitter missed the server's error"
	case mine:
		if ge := pgerror.From(got.err); ge.Message != pe.Message || string(ge.Code) != pe.Code {
			return 0, "different errors"
		}
		return bothRefused, ""
	case got.err == nil:
		return serverOnly, ""
	}
	return splitterToo, ""
}

func TestRandomStreams(t *testing.T) {
	ctx := testenv.TestCtx(t, 5*time.Minute)
	conn := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database))
	createTable(t, ctx, conn, "raw")
	r := rand.New(rand.NewPCG(20240601, 2))
	var loaded, framed int
	for i := range 1000 {
		o := copysplit.Options{CSV: r.IntN(2) == 0, KeyField: keyField, KeyName: keyName, Header: r.IntN(5) == 0}
		if r.IntN(3) == 0 {
			o.Delimiter = '|'
		}
		data := randomStream(r, o)
		stored, pgErr := load(ctx, conn, "raw", o, data, r)
		if pgErr != nil {
			var pe *pgconn.PgError
			if !errors.As(pgErr, &pe) {
				t.Fatalf("stream %d: %v", i, pgErr)
			}
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		got := split(o, data, r)
		res, complaint := agree(pgErr, stored, got)
		if complaint != "" {
			t.Fatalf("stream %d, %s\n%q\nserver: %v\nsplitter: %v\n%s", i, copySQL("raw", o), data, pgErr, got.err, complaint)
		}
		switch res {
		case bothLoaded:
			loaded++
		case bothRefused:
			framed++
		}
	}
	t.Logf("1000 streams: %d loaded, %d refused alike by both", loaded, framed)
	if loaded < 50 || framed < 200 {
		t.Fatalf("too few streams loaded (%d) or refused for framing (%d) to mean much", loaded, framed)
	}
}

// New refuses what the server refuses, with its code and message.
func TestOptionsAgree(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database))
	createTable(t, ctx, conn, "opts")
	for _, o := range []copysplit.Options{
		{Delimiter: 'a'},
		{Delimiter: '\\'},
		{Delimiter: '.'},
		{Delimiter: '7'},
		{Null: "x\ty", NullSet: true},
		{Quote: '\''},
		{Escape: '\\'},
		{CSV: true, Delimiter: '"'},
		{CSV: true, Quote: '\'', Delimiter: '\''},
		{CSV: true, Null: `"`, NullSet: true},
		{CSV: true, Null: "a,b", NullSet: true},
	} {
		o.KeyField = keyField
		_, err := copysplit.New(o)
		_, pgErr := conn.PgConn().CopyFrom(ctx, strings.NewReader(""), copySQL("opts", o))
		var pe *pgconn.PgError
		if !errors.As(pgErr, &pe) {
			t.Errorf("%s: the server accepted it (%v); New says %v", copySQL("opts", o), pgErr, err)
			continue
		}
		ge := pgerror.From(err)
		if err == nil || ge.Message != pe.Message || string(ge.Code) != pe.Code {
			t.Errorf("%s: server %s %q, New %v", copySQL("opts", o), pe.Code, pe.Message, err)
		}
	}
}

// Streams whose treatment by PostgreSQL 15 is easy to get wrong: the end
// marker at the very end, after data, in the wrong line style; line styles
// set by the first line; backslashes at the end.
func TestEdgeStreams(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	conn := testenv.Connect(t, ctx, cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database))
	createTable(t, ctx, conn, "edge")
	text := copysplit.Options{KeyField: keyField, KeyName: keyName}
	csv := copysplit.Options{CSV: true, KeyField: keyField, KeyName: keyName}
	textHeader, csvHeader := text, csv
	textHeader.Header, csvHeader.Header = true, true
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		o    copysplit.Options
		data string
		want agreement
	}{
		{text, "1\t2\t3\n\\.", bothRefused},
		{text, "1\t2\t3\\.", bothRefused},
		{text, "1\t2\t3\\.\n", bothLoaded},
		{text, "1\t2\t3\n\\.\n4", bothLoaded},
		{text, "1\t2\t3\r\n\\.\n", bothRefused},
		{text, "1\t2\t3\r\n\\.\r\n", bothLoaded},
		{text, "1\t2\t3\r\\.\r", bothLoaded},
		{text, "1\t2\t3\r\\.\n", bothRefused},
		{text, "\\.\r\n", bothLoaded},
		{text, "\\.", bothRefused},
		{text, "1\t2\t3\r", bothLoaded},
		{text, "1\t2\t3\r\n4\t5\t6\r", bothRefused},
		{text, "1\t2\t3\n4\t5\t6\r\n", bothRefused},
		{text, "1\t2\\\n\t3\n", bothLoaded},
		{text, "1\t2\t3\\", bothLoaded},
		{text, "1\t\\N\t3\n1\t\\\\N\t3\n", bothLoaded},
		{text, "1\t\\x4\\1011\t3\n", bothLoaded},
		{text, "1\n", bothRefused},
		{textHeader, "a\tk\r\n1\t2\t3\n", bothRefused},
		{textHeader, "a\tk\tb", bothLoaded},
		{csv, "1,2,3\n\\.", bothRefused},
		{csv, "1,2,3\n\\.\n4", bothLoaded},
		{csv, "1,2,3\r\n\\.\n", bothRefused},
		{csv, "1,2,3\r\n\\.\r\n", bothLoaded},
		{csv, "\\.x,2,3\n", bothLoaded},
		{csv, "\"a\n\\.\n\",2,3\n", bothLoaded},
		{csv, "1,\"2\r\n\",3\r\n", bothLoaded},
		{csv, "1,\"2", bothRefused},
		{csv, "1,2,\"3", bothRefused},
		{csv, "1,\"\",3\n1,,3\n", bothLoaded},
		{csvHeader, "\"a,k", bothLoaded},
		{csvHeader, "a,k,b\r1,2,3\n", bothRefused},
	} {
		stored, pgErr := load(ctx, conn, "edge", tc.o, []byte(tc.data), r)
		got := split(tc.o, []byte(tc.data), r)
		res, complaint := agree(pgErr, stored, got)
		if complaint != "" || res != tc.want {
			t.Errorf("%s\n%q\nserver: %v\nsplitter: %v\nagreement %d, want %d %s", copySQL("edge", tc.o), tc.data, pgErr, got.err, res, tc.want, complaint)
		}
	}
}
