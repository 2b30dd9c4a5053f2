package copysplit_test

// Loading a stream into PostgreSQL and splitting it with the splitter, so
// the tests can compare what each made of it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/copysplit"
)

// The tables have three text columns, loaded as (a, k, b): the key is
// field 1. n numbers the rows in load order.
const (
	keyField = 1
	keyName  = "k"
)

func createTable(t *testing.T, ctx context.Context, conn *pgx.Conn, name string) {
	t.Helper()
	if _, err := conn.Exec(ctx, fmt.Sprintf(
		`CREATE TEMP TABLE %s (n int GENERATED ALWAYS AS IDENTITY, a text, k text, b text)`, name)); err != nil {
		t.Fatal(err)
	}
}

// copySQL spells opts as the COPY statement the client would have sent.
func copySQL(table string, o copysplit.Options) string {
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	opts := []string{"FORMAT text"}
	if o.CSV {
		opts[0] = "FORMAT csv"
	}
	if o.Delimiter != 0 {
		opts = append(opts, "DELIMITER "+lit(string(o.Delimiter)))
	}
	if o.NullSet {
		opts = append(opts, "NULL "+lit(o.Null))
	}
	if o.Quote != 0 {
		opts = append(opts, "QUOTE "+lit(string(o.Quote)))
	}
	if o.Escape != 0 {
		opts = append(opts, "ESCAPE "+lit(string(o.Escape)))
	}
	if o.Header {
		opts = append(opts, "HEADER true")
	}
	if o.ForceNotNull {
		opts = append(opts, "FORCE_NOT_NULL (k)")
	}
	if o.ForceNull {
		opts = append(opts, "FORCE_NULL (k)")
	}
	return fmt.Sprintf("COPY %s (a, k, b) FROM STDIN WITH (%s)", table, strings.Join(opts, ", "))
}

// pieces hands out data in random small reads, so the server's own
// buffering sees ragged CopyData messages too.
type pieces struct {
	data []byte
	r    *rand.Rand
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.data[:min(len(p.data), 1+p.r.IntN(64))])
	p.data = p.data[n:]
	return n, nil
}

// load runs COPY FROM STDIN into table (emptied first) and returns the
// key column as stored, in load order; nil marks NULL.
func load(ctx context.Context, conn *pgx.Conn, table string, o copysplit.Options, data []byte, r *rand.Rand) ([]*string, error) {
	if _, err := conn.Exec(ctx, "TRUNCATE "+table+" RESTART IDENTITY"); err != nil {
		return nil, err
	}
	if _, err := conn.PgConn().CopyFrom(ctx, &pieces{data: data, r: r}, copySQL(table, o)); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "SELECT k FROM "+table+" ORDER BY n")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[*string])
}

// result is what the splitter made of a stream.
type result struct {
	header []byte
	rows   []copysplit.Row // copied
	err    error
}

// split runs the splitter over data in random chunks.
func split(o copysplit.Options, data []byte, r *rand.Rand) result {
	var res result
	s, err := copysplit.New(o)
	if err != nil {
		return result{err: err}
	}
	emit := func(row copysplit.Row) error {
		if row.Header {
			res.header = bytes.Clone(row.Data)
			return nil
		}
		res.rows = append(res.rows, copysplit.Row{Data: bytes.Clone(row.Data), Key: bytes.Clone(row.Key), Null: row.Null})
		return nil
	}
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(100))
		if res.err = s.Feed(data[:n], emit); res.err != nil {
			return res
		}
		data = data[n:]
	}
	res.err = s.End(emit)
	return res
}

// sameKeys reports how the splitter's keys differ from the stored ones.
func sameKeys(rows []copysplit.Row, stored []*string) string {
	if len(rows) != len(stored) {
		return fmt.Sprintf("splitter found %d rows, server stored %d", len(rows), len(stored))
	}
	for i, row := range rows {
		switch s := stored[i]; {
		case s == nil && !row.Null:
			return fmt.Sprintf("row %d: server stored NULL, splitter found key %q in %q", i, row.Key, row.Data)
		case s != nil && row.Null:
			return fmt.Sprintf("row %d: server stored %q, splitter found NULL in %q", i, *s, row.Data)
		case s != nil && *s != string(row.Key):
			return fmt.Sprintf("row %d: server stored %q, splitter found %q in %q", i, *s, row.Key, row.Data)
		}
	}
	return ""
}
