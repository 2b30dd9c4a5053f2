package copysplit_test

// Throughput of the splitter on typical rows, fed in 64 KiB chunks as
// clients send them (pgx and psql send 64 KiB CopyData messages), plain
// and with escapes or quotes in every row.

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/copysplit"
)

// stream makes about 4 MiB of rows; escaped puts a backslash escape (text)
// or a quoted field with a doubled quote (CSV) in every row's key.
func stream(csv, escaped bool) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 4<<20; i++ {
		switch {
		case csv && escaped:
			fmt.Fprintf(&b, "\"k\"\"%d\",customer %d,\"street %d, city\",2024-01-%02d,%d.%02d\n", i, i, i, i%28+1, i, i%100)
		case csv:
			fmt.Fprintf(&b, "%d,customer %d,street %d city,2024-01-%02d,%d.%02d\n", i, i, i, i%28+1, i, i%100)
		case escaped:
			fmt.Fprintf(&b, "k\\t%d\tcustomer %d\tstreet %d\\ncity\t2024-01-%02d\t%d.%02d\n", i, i, i, i%28+1, i, i%100)
		default:
			fmt.Fprintf(&b, "%d\tcustomer %d\tstreet %d city\t2024-01-%02d\t%d.%02d\n", i, i, i, i%28+1, i, i%100)
		}
	}
	return b.Bytes()
}

func benchSplit(b *testing.B, opts copysplit.Options, data []byte) {
	const chunk = 64 << 10
	rows := 0
	emit := func(r copysplit.Row) error {
		rows++
		return nil
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := copysplit.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += chunk {
			if err := s.Feed(data[off:min(off+chunk, len(data))], emit); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.End(emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkSplitText(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		data := stream(false, escaped)
		for _, key := range []int{0, 3} {
			b.Run(fmt.Sprintf("escaped=%v/key=%d", escaped, key), func(b *testing.B) {
				benchSplit(b, copysplit.Options{KeyField: key}, data)
			})
		}
	}
}

func BenchmarkSplitCSV(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		data := stream(true, escaped)
		for _, key := range []int{0, 3} {
			b.Run(fmt.Sprintf("quoted=%v/key=%d", escaped, key), func(b *testing.B) {
				benchSplit(b, copysplit.Options{CSV: true, KeyField: key}, data)
			})
		}
	}
}
