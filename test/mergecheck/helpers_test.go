package mergecheck_test

// Connections and raw queries: results are read as the wire carries them
// (row descriptions and raw text or binary values), which is what the
// router hands package merge.

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

const maxMismatches = 10 // per test, then it stops reporting

// connect opens a superuser connection with the settings the checks assume
// (PostgreSQL 15, shortest float output, ISO dates).
func connect(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, cluster.SuperConnString(cluster.Shards[0].Primary, "app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	var version int
	if err := conn.QueryRow(ctx, `select current_setting('server_version_num')::int / 10000`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 15 {
		t.Fatalf("the test server is PostgreSQL %d, want 15", version)
	}
	if _, err := conn.Exec(ctx, `set extra_float_digits = 1; set datestyle = 'ISO, MDY'; set intervalstyle = 'postgres'`); err != nil {
		t.Fatal(err)
	}
	return ctx, conn
}

// query runs sql with the given result formats (one per column, or one for
// all) and returns its result as merge reads it.
func query(t *testing.T, ctx context.Context, conn *pgx.Conn, formats []int16, sql string, args ...any) merge.Rows {
	t.Helper()
	rows, err := conn.Query(ctx, sql, append([]any{pgx.QueryResultFormats(formats)}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out merge.Rows
	for _, fd := range rows.FieldDescriptions() {
		out.Fields = append(out.Fields, pgproto3.FieldDescription{
			Name: []byte(fd.Name), TableOID: fd.TableOID, TableAttributeNumber: fd.TableAttributeNumber,
			DataTypeOID: fd.DataTypeOID, DataTypeSize: fd.DataTypeSize, TypeModifier: fd.TypeModifier, Format: fd.Format,
		})
	}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				row[i] = bytes.Clone(v)
			}
		}
		out.Values = append(out.Values, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// mismatches counts reported differences and stops the test after
// maxMismatches.
type mismatches struct {
	t *testing.T
	n int
}

func (m *mismatches) report(format string, args ...any) {
	m.t.Helper()
	m.n++
	m.t.Errorf(format, args...)
	if m.n >= maxMismatches {
		m.t.Fatalf("stopping after %d mismatches", m.n)
	}
}

// show renders a value for a failure message.
func show(v []byte, format int16) string {
	switch {
	case v == nil:
		return "NULL"
	case format == 1:
		return fmt.Sprintf("%x", v)
	}
	return fmt.Sprintf("%q", v)
}

// sameRows reports the first difference between the merged and the
// server's result, values compared byte for byte.
func sameRows(got, want merge.Rows) error {
	if len(got.Fields) != len(want.Fields) {
		return fmt.Errorf("%d columns, server %d", len(got.Fields), len(want.Fields))
	}
	for i := range got.Fields {
		g, w := got.Fields[i], want.Fields[i]
		if g.DataTypeOID != w.DataTypeOID || g.Format != w.Format || g.TypeModifier != w.TypeModifier || g.DataTypeSize != w.DataTypeSize {
			return fmt.Errorf("column %d: type %d/%d size %d typmod %d, server %d/%d size %d typmod %d", i,
				g.DataTypeOID, g.Format, g.DataTypeSize, g.TypeModifier, w.DataTypeOID, w.Format, w.DataTypeSize, w.TypeModifier)
		}
	}
	if len(got.Values) != len(want.Values) {
		return fmt.Errorf("%d rows, server %d", len(got.Values), len(want.Values))
	}
	for r := range got.Values {
		for c := range got.Values[r] {
			g, w := got.Values[r][c], want.Values[r][c]
			if (g == nil) != (w == nil) || !bytes.Equal(g, w) {
				return fmt.Errorf("row %d column %d: %s, server %s", r, c, show(g, got.Fields[c].Format), show(w, want.Fields[c].Format))
			}
		}
	}
	return nil
}

func ac(c int, f planner.AggregateFunc) planner.AggregateColumn {
	return planner.AggregateColumn{Column: c, Func: f}
}

func route() *planner.Route { return &planner.Route{Target: planner.TargetAll} }
