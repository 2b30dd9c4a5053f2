package clients_test

// COPY through the proxy with pgx: CopyFrom (binary COPY FROM STDIN) of
// 10,000 rows, COPY TO STDOUT read back with pgconn.CopyTo, and a COPY that
// fails half way, after which the connection must still work.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
)

func TestCopyPgx(t *testing.T) {
	for _, mode := range []string{config.PoolTransaction, config.PoolSession} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Pool.Mode = mode; c.Pool.Size = 2 })
			ctx := testenv.TestCtx(t, 60*time.Second)
			direct := testenv.Connect(t, ctx, directURL())
			table := "copy_pgx_" + mode
			if _, err := direct.Exec(ctx, fmt.Sprintf(`drop table if exists %[1]s;
				create table %[1]s (id int primary key, name text, amount int8, at timestamptz, note text)`, table)); err != nil {
				t.Fatal(err)
			}
			conn := testenv.Connect(t, ctx, proxyURL(n))
			if _, err := conn.Exec(ctx, "set timezone = 'UTC'"); err != nil {
				t.Fatal(err)
			}

			const rows = 10000
			base := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
			src := make([][]any, rows)
			var want strings.Builder
			for i := range rows {
				var note any
				noteText := `\N`
				if i%3 != 0 {
					s := fmt.Sprintf("note\t%d\\", i)
					note, noteText = s, `note\t`+fmt.Sprint(i)+`\\`
				}
				at := base.Add(time.Duration(i) * time.Minute)
				src[i] = []any{int32(i), fmt.Sprintf("name %d", i), int64(i) * 1_000_000_007, at, note}
				fmt.Fprintf(&want, "%d\tname %d\t%d\t%s\t%s\n", i, i, int64(i)*1_000_000_007, at.Format("2006-01-02 15:04:05+00"), noteText)
			}
			copied, err := conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "name", "amount", "at", "note"}, pgx.CopyFromRows(src))
			if err != nil {
				t.Fatalf("CopyFrom: %v", err)
			}
			if copied != rows {
				t.Fatalf("CopyFrom copied %d rows, want %d", copied, rows)
			}

			var buf bytes.Buffer
			tag, err := conn.PgConn().CopyTo(ctx, &buf, "copy (select * from "+table+" order by id) to stdout")
			if err != nil {
				t.Fatalf("CopyTo: %v", err)
			}
			if tag.RowsAffected() != rows {
				t.Fatalf("CopyTo tag %q", tag)
			}
			if got := buf.String(); got != want.String() {
				gl, wl := strings.Split(got, "\n"), strings.Split(want.String(), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("COPY TO line %d: got %q, want %q (%d vs %d lines)", i, gl[i], wl[i], len(gl), len(wl))
					}
				}
				t.Fatalf("COPY TO gave %d lines, want %d", len(gl), len(wl))
			}

			// A COPY the server refuses half way (duplicate key).
			_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "name"},
				pgx.CopyFromRows([][]any{{int32(rows + 1), "new"}, {int32(5), "duplicate"}}))
			testenv.RequireCode(t, err, "23505")
			// A COPY the client abandons: the source fails after some rows.
			_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "name"}, &failingSource{n: 100})
			if err == nil || !strings.Contains(err.Error(), "source gave up") {
				t.Fatalf("CopyFrom with a failing source: %v", err)
			}
			var count int
			if err := conn.QueryRow(ctx, "select count(*) from "+table).Scan(&count); err != nil || count != rows {
				t.Fatalf("after the failed copies: count %d, %v; want %d", count, err, rows)
			}
		})
	}
}

// failingSource yields n rows and then stops with an error, as a reader
// that loses its input would.
type failingSource struct{ i, n int }

func (s *failingSource) Next() bool {
	if s.i >= s.n {
		return false
	}
	s.i++
	return true
}

func (s *failingSource) Values() ([]any, error) {
	return []any{int32(100000 + s.i), "row"}, nil
}

func (s *failingSource) Err() error {
	if s.i >= s.n {
		return fmt.Errorf("source gave up after %d rows", s.n)
	}
	return nil
}
