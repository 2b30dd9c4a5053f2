package copysplit_test

// FuzzSplit checks the properties the router relies on, for any bytes and
// options: the rows do not depend on how the stream is chunked; they are
// the stream itself, cut up (up to the end marker); and a shard given only
// some of them (after the header) reads exactly those rows again.

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/shardproxy/shardproxy/copysplit"
)

// fuzzOptions derives options from one byte, so the fuzzer explores them.
func fuzzOptions(flags uint8) copysplit.Options {
	o := copysplit.Options{
		CSV:      flags&1 != 0,
		Header:   flags&2 != 0,
		KeyField: int(flags>>2) & 3 % 3,
	}
	if flags&16 != 0 {
		o.Null, o.NullSet = "NULL", true
	}
	if flags&32 != 0 {
		o.Delimiter = '|'
	}
	if o.CSV && flags&64 != 0 {
		o.Escape = '\\'
	}
	if o.CSV && flags&128 != 0 {
		o.Quote = '\''
	}
	return o
}

func FuzzSplit(f *testing.F) {
	for _, tc := range append(append([]splitCase{}, textCases...), csvCases...) {
		var flags uint8
		if tc.opts.CSV {
			flags |= 1
		}
		if tc.opts.Header {
			flags |= 2
		}
		f.Add([]byte(tc.input), flags, uint64(len(tc.input)))
	}
	f.Fuzz(func(t *testing.T, data []byte, flags uint8, seed uint64) {
		opts := fuzzOptions(flags)
		whole := run(opts, data)
		r := rand.New(rand.NewPCG(seed, 1))
		chunkings := [][]int{randomSizes(r, len(data)), randomSizes(r, len(data))}
		if len(data) <= 256 {
			chunkings = append(chunkings, []int{1})
		}
		for _, sizes := range chunkings {
			if d := sameRun(whole, run(opts, data, sizes...)); d != "" {
				t.Fatalf("whole vs chunks %v: %s", sizes, d)
			}
		}

		// The rows are the stream, cut up; only an end marker (and what
		// follows it) may be left over.
		joined := whole.data()
		if !bytes.HasPrefix(data, joined) {
			t.Fatalf("rows %q are not a prefix of the input", whole.describe())
		}
		if whole.err != nil {
			return
		}
		if rest := data[len(joined):]; len(rest) > 0 && !bytes.HasPrefix(rest, []byte(`\.`)) {
			t.Fatalf("input left over after the rows: %q", rest)
		}
		for i, row := range whole.rows[:max(len(whole.rows)-1, 0)] {
			if d := row.Data; len(d) == 0 || (d[len(d)-1] != '\n' && d[len(d)-1] != '\r') {
				t.Fatalf("row %d (%q) is not the last and has no line terminator", i, d)
			}
		}

		// A shard sees the header and some of the rows: it must read
		// those rows, and the same keys, as the whole stream gave.
		var subset got
		var shard bytes.Buffer
		for i, row := range whole.rows {
			if row.Header || i%2 == 1 {
				shard.Write(row.Data)
				subset.rows = append(subset.rows, row)
			}
		}
		if d := sameRun(subset, run(opts, shard.Bytes())); d != "" {
			t.Fatalf("a shard reading every other row reads otherwise: %s", d)
		}
	})
}
