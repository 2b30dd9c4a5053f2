package copysplit_test

// Running a splitter over a stream cut into chunks, and comparing what two
// runs saw: the unit tests, the fuzz target and the benchmarks share it.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/shardproxy/shardproxy/copysplit"
)

// got is what a run saw: the rows (copied), and the error.
type got struct {
	rows  []copysplit.Row
	err   error
	ended bool
}

// describe is a short description of a row for failure messages and
// tables: "H:<data>" for the header, "<key>|<data>" or "<NULL>|<data>".
func describe(r copysplit.Row) string {
	switch {
	case r.Header:
		return "H:" + string(r.Data)
	case r.Null:
		return "<NULL>|" + string(r.Data)
	}
	return string(r.Key) + "|" + string(r.Data)
}

func (g got) describe() []string {
	var out []string
	for _, r := range g.rows {
		out = append(out, describe(r))
	}
	return out
}

func (g got) errText() string {
	if g.err == nil {
		return ""
	}
	return g.err.Error()
}

func (g got) data() []byte {
	var b bytes.Buffer
	for _, r := range g.rows {
		b.Write(r.Data)
	}
	return b.Bytes()
}

// run feeds input in the given chunk sizes (the last size repeats; none
// means all at once) and ends the stream.
func run(opts copysplit.Options, input []byte, sizes ...int) got {
	s, err := copysplit.New(opts)
	if err != nil {
		return got{err: err}
	}
	var g got
	emit := func(r copysplit.Row) error {
		g.rows = append(g.rows, copysplit.Row{
			Data: bytes.Clone(r.Data), Key: bytes.Clone(r.Key), Null: r.Null, Header: r.Header,
		})
		return nil
	}
	for i := 0; len(input) > 0; i++ {
		n := len(input)
		if len(sizes) > 0 {
			n = min(n, sizes[min(i, len(sizes)-1)])
		}
		// A fresh slice per chunk, as a network read would give.
		if g.err = s.Feed(bytes.Clone(input[:n]), emit); g.err != nil {
			return g
		}
		input = input[n:]
	}
	g.err = s.End(emit)
	g.ended = s.Ended()
	return g
}

// randomSizes cuts n bytes into random chunks.
func randomSizes(r *rand.Rand, n int) []int {
	var sizes []int
	for n > 0 {
		k := 1 + r.IntN(min(n, 1+r.IntN(16)))
		if r.IntN(4) == 0 {
			k = 1 + r.IntN(n)
		}
		sizes = append(sizes, k)
		n -= k
	}
	return sizes
}

// sameRun reports how two runs differ, "" if they do not.
func sameRun(a, b got) string {
	if a.errText() != b.errText() {
		return fmt.Sprintf("error %q vs %q", a.errText(), b.errText())
	}
	da, db := a.describe(), b.describe()
	if strings.Join(da, "\x00") != strings.Join(db, "\x00") {
		return fmt.Sprintf("rows\n%q\nvs\n%q", da, db)
	}
	return ""
}
