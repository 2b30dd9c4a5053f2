package sharded_test

// Running a statement on one side and comparing two sides' answers.
//
// Both sides run a statement in the same pgx query mode, so a column comes
// back in the same format (text in the simple protocol; binary for the
// types pgx reads in binary in the extended one) and the raw bytes can be
// compared directly: that is exact for everything PostgreSQL sends in a
// canonical form, which includes numeric's display scale (1.0 and 1.00
// differ), so a merge that gets a scale wrong is caught. Two cases are
// compared by value instead, decoded with pgx's Values(): float4/float8,
// whose sums and averages depend on the order rows are added in (a
// relative difference of 1e-12 is allowed, and -0 equals 0 as in SQL), and,
// for queries marked byValue, numerics where PostgreSQL itself may return
// any of several equal values (DISTINCT or GROUP BY over 1.0 and 1.00, min
// and max among them). Values() must also succeed on both sides, which
// catches bytes a driver cannot decode.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// query is a statement of the corpus or of a DML step, with what its
// comparison needs to know.
type query struct {
	cat  string
	sql  string
	args []any
	// ordered: ORDER BY fixes the order of every row; compared in order.
	ordered bool
	// keys: ORDER BY leaves ties, so rows are compared as a multiset, and
	// the sequence of these columns (the ORDER BY keys) in order.
	keys []int
	// byValue: numerics are compared by value, not by their text.
	byValue bool
}

// set is a query whose rows are compared as a multiset.
func set(cat, sql string, args ...any) query { return query{cat: cat, sql: sql, args: args} }

// seq is a query whose ORDER BY fixes the order of all its rows.
func seq(cat, sql string, args ...any) query {
	return query{cat: cat, sql: sql, args: args, ordered: true}
}

// ties is a query ordered by the given output columns with ties among them.
func ties(cat string, keys []int, sql string, args ...any) query {
	return query{cat: cat, sql: sql, args: args, keys: keys}
}

// value marks a query's numerics as compared by value.
func (q query) value() query { q.byValue = true; return q }

// protoMode is a pgx query mode both sides use for one comparison.
type protoMode struct {
	name string
	mode pgx.QueryExecMode
}

var (
	extended = protoMode{"extended", pgx.QueryExecModeCacheStatement}
	simple   = protoMode{"simple", pgx.QueryExecModeSimpleProtocol}
	modes    = []protoMode{extended, simple}
)

// cell is one value: raw is nil for NULL; val is what Values() made of it
// (or the error it gave).
type cell struct {
	raw  []byte
	val  any
	verr error
}

// result is everything a client sees of one statement.
type result struct {
	err  error
	cols []pgconn.FieldDescription
	rows [][]cell
	tag  string
}

func (r result) code() string {
	var pe *pgconn.PgError
	if errors.As(r.err, &pe) {
		return pe.Code
	}
	return ""
}

// refused is the proxy's answer for a shape it cannot run exactly.
func (r result) refused() bool { return r.code() == "0A000" }

// side is one end of the comparison with a connection per query mode,
// opened again whenever a statement left it closed.
type side struct {
	name  string
	url   string
	conns map[string]*pgx.Conn
	// timeouts counts statements that did not finish; after a few the
	// side is given up, so that a hanging proxy costs seconds, not the
	// whole suite's timeout.
	timeouts int
}

const (
	stmtTimeout = 5 * time.Second
	maxTimeouts = 3
)

func newSide(name, url string) *side {
	return &side{name: name, url: url, conns: map[string]*pgx.Conn{}}
}

func (s *side) close() {
	for _, c := range s.conns {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Close(ctx)
		cancel()
	}
}

func (s *side) conn(m protoMode) (*pgx.Conn, error) {
	if c := s.conns[m.name]; c != nil && !c.IsClosed() {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, err
	}
	s.conns[m.name] = c
	return c, nil
}

// run runs q in mode m and reads the whole answer.
func (s *side) run(m protoMode, q query) result {
	if s.timeouts >= maxTimeouts {
		return result{err: fmt.Errorf("not run: %s timed out %d times before", s.name, s.timeouts)}
	}
	conn, err := s.conn(m)
	if err != nil {
		return result{err: fmt.Errorf("connect: %w", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	res := read(ctx, conn, m, q.sql, q.args)
	if ctx.Err() != nil {
		s.timeouts++
	}
	return res
}

func read(ctx context.Context, conn *pgx.Conn, m protoMode, sql string, args []any) result {
	rows, err := conn.Query(ctx, sql, append([]any{m.mode}, args...)...)
	if err != nil {
		return result{err: err}
	}
	defer rows.Close()
	res := result{cols: slices.Clone(rows.FieldDescriptions())}
	for rows.Next() {
		vals, verr := rows.Values()
		raws := rows.RawValues()
		row := make([]cell, len(raws))
		for i, raw := range raws {
			row[i].verr = verr
			if raw != nil {
				// RawValues are valid only until the next row.
				row[i].raw = append([]byte{}, raw...)
			}
			if verr == nil {
				row[i].val = vals[i]
			}
		}
		res.rows = append(res.rows, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return result{err: err}
	}
	res.tag = rows.CommandTag().String()
	return res
}

// compare returns "" when b (the proxy) answered q as a (direct) did, else
// a short description of the first difference.
func compare(q query, a, b result) string { return compareAs(q, a, b, proxyName) }

// compareAs is compare with b's side called name in the description.
func compareAs(q query, a, b result, name string) string {
	proxyName := name // the messages below name b's side
	if a.err != nil || b.err != nil {
		return compareErrors(a.err, b.err, name)
	}
	if d := compareColumns(a.cols, b.cols, name); d != "" {
		return d
	}
	if len(a.rows) != len(b.rows) {
		return fmt.Sprintf("direct %d rows, %s %d%s", len(a.rows), proxyName, len(b.rows), firstExtra(q, a, b))
	}
	oids := make([]uint32, len(a.cols))
	for i, c := range a.cols {
		oids[i] = c.DataTypeOID
	}
	ar, br := a.rows, b.rows
	if !q.ordered {
		for _, k := range q.keys {
			for i := range ar {
				if !cellEqual(q, oids[k], ar[i][k], br[i][k]) {
					return fmt.Sprintf("ORDER BY column %d, row %d: direct %s, %s %s",
						k+1, i+1, render(oids[k], ar[i][k]), proxyName, render(oids[k], br[i][k]))
				}
			}
		}
		ar, br = sorted(q, oids, ar), sorted(q, oids, br)
	}
	for i := range ar {
		for j := range ar[i] {
			if !cellEqual(q, oids[j], ar[i][j], br[i][j]) {
				where := fmt.Sprintf("row %d", i+1)
				if !q.ordered {
					where = fmt.Sprintf("row %d in sorted order", i+1)
				}
				return fmt.Sprintf("%s, column %q: direct %s, %s %s", where, a.cols[j].Name,
					renderRow(oids, ar[i]), proxyName, renderRow(oids, br[i]))
			}
		}
	}
	// After the rows, which say more when both differ.
	if a.tag != b.tag {
		return fmt.Sprintf("command tag: direct %q, %s %q", a.tag, proxyName, b.tag)
	}
	return ""
}

func compareErrors(a, b error, proxyName string) string {
	var pa, pb *pgconn.PgError
	switch {
	case a == nil:
		return fmt.Sprintf("direct succeeded, %s failed: %v", proxyName, b)
	case b == nil:
		return fmt.Sprintf("direct failed (%v), %s succeeded", a, proxyName)
	case !errors.As(a, &pa):
		return fmt.Sprintf("direct failed outside PostgreSQL: %v", a)
	case !errors.As(b, &pb):
		return fmt.Sprintf("direct: %s %s; %s failed outside PostgreSQL: %v", pa.Code, pa.Message, proxyName, b)
	case pa.Code != pb.Code || pa.Message != pb.Message || pa.Position != pb.Position:
		return fmt.Sprintf("direct: %s %q at %d; %s: %s %q at %d",
			pa.Code, pa.Message, pa.Position, proxyName, pb.Code, pb.Message, pb.Position)
	}
	return ""
}

// compareColumns compares what a driver sees of the columns: names, types
// (OID and modifier, which carries numeric's precision and scale) and the
// format pgx asked for. TableOID differs between servers by nature.
func compareColumns(a, b []pgconn.FieldDescription, proxyName string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("direct %d columns %v, %s %d %v", len(a), colNames(a), proxyName, len(b), colNames(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.DataTypeOID != y.DataTypeOID || x.TypeModifier != y.TypeModifier || x.Format != y.Format {
			return fmt.Sprintf("column %d: direct %s (oid %d, typmod %d, format %d), %s %s (oid %d, typmod %d, format %d)",
				i+1, x.Name, x.DataTypeOID, x.TypeModifier, x.Format, proxyName, y.Name, y.DataTypeOID, y.TypeModifier, y.Format)
		}
	}
	return ""
}

func colNames(fds []pgconn.FieldDescription) []string {
	var ns []string
	for _, f := range fds {
		ns = append(ns, f.Name)
	}
	return ns
}

// firstExtra names one row that one side has more often than the other,
// for a row count difference.
func firstExtra(q query, a, b result) string {
	oids := make([]uint32, len(a.cols))
	for i, c := range a.cols {
		oids[i] = c.DataTypeOID
	}
	count := map[string]int{}
	for _, r := range a.rows {
		count[rowKey(q, oids, r)]++
	}
	for _, r := range b.rows {
		count[rowKey(q, oids, r)]--
	}
	for _, r := range a.rows {
		if count[rowKey(q, oids, r)] > 0 {
			return "; missing: " + renderRow(oids, r)
		}
	}
	for _, r := range b.rows {
		if count[rowKey(q, oids, r)] < 0 {
			return "; extra: " + renderRow(oids, r)
		}
	}
	return ""
}

func sorted(q query, oids []uint32, rows [][]cell) [][]cell {
	keyed := make([]struct {
		k string
		r []cell
	}, len(rows))
	for i, r := range rows {
		keyed[i].k, keyed[i].r = rowKey(q, oids, r), r
	}
	slices.SortStableFunc(keyed, func(x, y struct {
		k string
		r []cell
	}) int {
		return strings.Compare(x.k, y.k)
	})
	out := make([][]cell, len(rows))
	for i := range keyed {
		out[i] = keyed[i].r
	}
	return out
}

// rowKey sorts rows for a multiset comparison: equal rows (by cellEqual)
// get equal keys, floats rounded to 9 significant digits so that sums
// differing in the last bits still meet.
func rowKey(q query, oids []uint32, r []cell) string {
	var b strings.Builder
	for i, c := range r {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		switch {
		case c.raw == nil:
			b.WriteString("\x00NULL")
		case isFloat(oids[i]):
			if f, ok := floatOf(c); ok {
				if f == 0 {
					f = 0 // -0 sorts with 0
				}
				b.WriteString(strconv.FormatFloat(f, 'e', 8, 64))
			} else {
				b.Write(c.raw)
			}
		case oids[i] == pgtype.NumericOID && q.byValue:
			b.WriteString(numericKey(c))
		default:
			b.Write(c.raw)
		}
	}
	return b.String()
}

func cellEqual(q query, oid uint32, a, b cell) bool {
	if (a.raw == nil) != (b.raw == nil) {
		return false
	}
	if a.raw == nil {
		return true
	}
	switch {
	case isFloat(oid):
		x, okx := floatOf(a)
		y, oky := floatOf(b)
		if !okx || !oky {
			return string(a.raw) == string(b.raw)
		}
		if x == y || (math.IsNaN(x) && math.IsNaN(y)) {
			return true
		}
		return math.Abs(x-y) <= 1e-12*math.Max(math.Abs(x), math.Abs(y))
	case oid == pgtype.NumericOID && q.byValue:
		return numericKey(a) == numericKey(b)
	}
	return string(a.raw) == string(b.raw)
}

func isFloat(oid uint32) bool { return oid == pgtype.Float4OID || oid == pgtype.Float8OID }

func floatOf(c cell) (float64, bool) {
	switch v := c.val.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	}
	return 0, false
}

// numericKey is a numeric's exact value without its scale: 1, 1.0 and
// 1.00 give one key.
func numericKey(c cell) string {
	n, ok := c.val.(pgtype.Numeric)
	if !ok || !n.Valid || n.Int == nil {
		return "?" + string(c.raw)
	}
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return fmt.Sprintf("special:%v:%v", n.NaN, n.InfinityModifier)
	}
	r := new(big.Rat).SetInt(n.Int)
	exp := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(n.Exp))), nil)
	if n.Exp >= 0 {
		r.Mul(r, new(big.Rat).SetInt(exp))
	} else {
		r.Quo(r, new(big.Rat).SetInt(exp))
	}
	return r.RatString()
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

func renderRow(oids []uint32, r []cell) string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = render(oids[i], c)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// render shows a value as a person compares it: the server's text when
// the column came as text, else the decoded value.
func render(oid uint32, c cell) string {
	if c.raw == nil {
		return "NULL"
	}
	var s string
	switch v := c.val.(type) {
	case string:
		s = strconv.Quote(v)
	case pgtype.Numeric:
		j, _ := v.MarshalJSON()
		s = string(j)
	case time.Time:
		s = v.Format("2006-01-02 15:04:05.999999")
		if oid == pgtype.DateOID {
			s = v.Format(time.DateOnly)
		}
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
	case nil:
		s = fmt.Sprintf("raw %q", c.raw)
	default:
		s = fmt.Sprint(v)
	}
	return abbrev(s, 40)
}

// check runs q on both sides in mode m and reports a difference. It
// returns the proxy's result, for the caller's refusal bookkeeping.
func check(t *testing.T, m protoMode, q query, direct, proxy *side) result {
	t.Helper()
	d := direct.run(m, q)
	p := proxy.run(m, q)
	if p.refused() && d.err == nil {
		return p
	}
	if diff := compare(q, d, p); diff != "" {
		t.Errorf("%s protocol: %s\n    query: %s%s", m.name, diff, abbrev(q.sql, 200), argsNote(q.args))
	}
	return p
}

func argsNote(args []any) string {
	if len(args) == 0 {
		return ""
	}
	return fmt.Sprintf("  args: %v", args)
}
