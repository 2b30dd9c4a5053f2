package merge

// Aggregates across shards. Each shard answers partial aggregates per
// group (count, sum, min, max, bool_and/or, and sum plus count for avg);
// this file combines them per group, grouping by value, and finishes avg
// with PostgreSQL's result type and scale. Every combination here is exact
// (integers, numeric) or the one float.c would do, so the answer is the
// server's, bar the last bits of float sums whose addition order differs.

import (
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/planner"
)

// aggState accumulates one column of one group.
type aggState interface {
	add(row [][]byte) error
	// result returns the finished value (nil for NULL) in the column's
	// output format.
	result() ([]byte, error)
}

// aggColumn is one column's plan: its output field and a state factory.
type aggColumn struct {
	field    pgproto3.FieldDescription
	newState func() aggState
}

func aggregate(in Rows, a *planner.Aggregate) (Rows, error) {
	cols := make([]aggColumn, len(in.Fields))
	seen := make([]bool, len(in.Fields))
	var keys []column
	var keyIdx []int
	for _, spec := range a.Columns {
		if err := checkColumn(in.Fields, spec.Column); err != nil {
			return Rows{}, err
		}
		if seen[spec.Column] {
			return Rows{}, internal("aggregate column $%d listed twice", spec.Column)
		}
		seen[spec.Column] = true
		if spec.Func == planner.AggGroupKey {
			f := in.Fields[spec.Column]
			c, err := comparableColumn(f.DataTypeOID, f.Format, "group")
			if err != nil {
				return Rows{}, err
			}
			keys = append(keys, c)
			keyIdx = append(keyIdx, spec.Column)
		}
		c, err := planColumn(in.Fields, spec)
		if err != nil {
			return Rows{}, err
		}
		cols[spec.Column] = c
	}
	for i, ok := range seen {
		if !ok {
			return Rows{}, internal("aggregate does not say how to combine column $%d", i)
		}
	}

	var groups [][]aggState
	index := map[string]int{}
	newGroup := func() []aggState {
		g := make([]aggState, len(cols))
		for i, c := range cols {
			g[i] = c.newState()
		}
		groups = append(groups, g)
		return g
	}
	if !a.Grouped {
		newGroup() // an ungrouped aggregate answers one row, even over no rows
	}
	var key []byte
	for _, row := range in.Values {
		var g []aggState
		if a.Grouped {
			key = key[:0]
			for i, c := range keys {
				d, err := c.decode(row[keyIdx[i]])
				if err != nil {
					return Rows{}, err
				}
				key = appendCanon(key, c.kind, d)
			}
			if gi, ok := index[string(key)]; ok {
				g = groups[gi]
			} else {
				index[string(key)] = len(groups)
				g = newGroup()
			}
		} else {
			g = groups[0]
		}
		for _, st := range g {
			if err := st.add(row); err != nil {
				return Rows{}, err
			}
		}
	}

	out := Rows{Fields: make([]pgproto3.FieldDescription, len(cols)), Values: make([][][]byte, len(groups))}
	for i, c := range cols {
		out.Fields[i] = c.field
	}
	for gi, g := range groups {
		row := make([][]byte, len(g))
		for i, st := range g {
			v, err := st.result()
			if err != nil {
				return Rows{}, err
			}
			row[i] = v
		}
		out.Values[gi] = row
	}
	return out, nil
}

// planColumn checks that the column's type supports its function and
// returns how to combine it.
func planColumn(fields []pgproto3.FieldDescription, spec planner.AggregateColumn) (aggColumn, error) {
	f := fields[spec.Column]
	col := spec.Column
	out := aggColumn{field: f}
	switch spec.Func {
	case planner.AggGroupKey, planner.AggAny:
		out.newState = func() aggState { return &firstState{col: col} }
	case planner.AggCount:
		if k, _ := typeOf(f.DataTypeOID); k != kindInt || f.DataTypeOID == pgtype.OIDOID {
			return out, internal("count partials of type %d", f.DataTypeOID)
		}
		c := column{oid: f.DataTypeOID, format: f.Format, kind: kindInt}
		out.newState = func() aggState { return &intSumState{col: col, c: c, zero: true} }
	case planner.AggSum:
		return out, planSum(&out, f, col)
	case planner.AggMin, planner.AggMax:
		c, err := comparableColumn(f.DataTypeOID, f.Format, string(spec.Func))
		if err != nil {
			return out, err
		}
		sign := 1
		if spec.Func == planner.AggMax {
			sign = -1
		}
		out.newState = func() aggState { return &extremeState{col: col, c: c, sign: sign} }
	case planner.AggBoolAnd, planner.AggBoolOr:
		if f.DataTypeOID != pgtype.BoolOID {
			return out, internal("%s partials of type %d", spec.Func, f.DataTypeOID)
		}
		c := column{oid: f.DataTypeOID, format: f.Format, kind: kindBool}
		and := spec.Func == planner.AggBoolAnd
		out.newState = func() aggState { return &boolState{col: col, c: c, and: and} }
	case planner.AggAvg:
		return out, planAvg(&out, fields, spec)
	default:
		return out, unsupported("run the aggregate on one shard",
			"cannot combine aggregate %q across shards", string(spec.Func))
	}
	return out, nil
}

func planSum(out *aggColumn, f pgproto3.FieldDescription, col int) error {
	c := column{oid: f.DataTypeOID, format: f.Format}
	c.kind, c.name = typeOf(f.DataTypeOID)
	switch {
	case c.kind == kindInt && c.oid != pgtype.OIDOID:
		out.newState = func() aggState { return &intSumState{col: col, c: c} }
	case c.kind == kindNumeric:
		out.newState = func() aggState { return &numericSumState{col: col, c: c} }
	case c.kind == kindFloat:
		out.newState = func() aggState { return &floatSumState{col: col, c: c} }
	case c.kind == kindInterval && c.format == 1:
		out.newState = func() aggState { return &intervalSumState{col: col} }
	default:
		return unsupported("read the column in binary, or sum it on one shard",
			"cannot add partial sums of %s in %s format across shards", c.name, formatName(c.format))
	}
	return nil
}

// planAvg finishes avg from partial sums and counts: numeric for integer
// and numeric input, float8 for float input, as PostgreSQL's avg returns.
func planAvg(out *aggColumn, fields []pgproto3.FieldDescription, spec planner.AggregateColumn) error {
	if err := checkColumn(fields, spec.CountColumn); err != nil {
		return err
	}
	f, cf := fields[spec.Column], fields[spec.CountColumn]
	if k, _ := typeOf(cf.DataTypeOID); k != kindInt || cf.DataTypeOID == pgtype.OIDOID {
		return internal("avg counts of type %d", cf.DataTypeOID)
	}
	sum := column{oid: f.DataTypeOID, format: f.Format}
	sum.kind, sum.name = typeOf(f.DataTypeOID)
	count := column{oid: cf.DataTypeOID, format: cf.Format, kind: kindInt}
	col, countCol := spec.Column, spec.CountColumn
	field := f
	field.TableOID, field.TableAttributeNumber, field.TypeModifier = 0, 0, -1
	if spec.Name != "" {
		field.Name = []byte(spec.Name)
	}
	switch {
	case (sum.kind == kindInt && sum.oid != pgtype.OIDOID) || sum.kind == kindNumeric:
		field.DataTypeOID, field.DataTypeSize = pgtype.NumericOID, -1
		format := f.Format
		out.newState = func() aggState {
			return &numericAvgState{col: col, countCol: countCol, sum: sum, count: count, format: format}
		}
	case sum.oid == pgtype.Float8OID:
		field.DataTypeOID, field.DataTypeSize = pgtype.Float8OID, 8
		out.newState = func() aggState {
			return &floatAvgState{sum: floatSumState{col: col, c: sum}, countCol: countCol, count: count}
		}
	case sum.oid == pgtype.Float4OID:
		return unsupported("sum the column as float8 on the shards (sum(x::float8)): avg(real) accumulates in double precision",
			"cannot finish avg from real partial sums exactly")
	default:
		return unsupported("compute the average on one shard",
			"cannot compute avg of %s across shards", sum.name)
	}
	out.field = field
	return nil
}

func formatName(f int16) string {
	if f == 1 {
		return "binary"
	}
	return "text"
}

// firstState keeps the first row's value (group keys, and columns equal in
// every row of a group).
type firstState struct {
	col  int
	v    []byte
	done bool
}

func (s *firstState) add(row [][]byte) error {
	if !s.done {
		s.v, s.done = row[s.col], true
	}
	return nil
}
func (s *firstState) result() ([]byte, error) { return s.v, nil }

// intSumState adds integer partials in the column's own type (count: a sum
// of counts that is 0, not NULL, over nothing).
type intSumState struct {
	col  int
	c    column
	zero bool
	sum  int64
	any  bool
}

func (s *intSumState) add(row [][]byte) error {
	d, err := s.c.decode(row[s.col])
	if err != nil || d.null {
		return err
	}
	s.sum, err = addInt(s.c.oid, s.sum, d.i)
	s.any = true
	return err
}

func (s *intSumState) result() ([]byte, error) {
	if !s.any && !s.zero {
		return nil, nil
	}
	return appendInt(nil, s.c.oid, s.c.format, s.sum), nil
}

type numericSumState struct {
	col int
	c   column
	sum *decimal
}

func (s *numericSumState) add(row [][]byte) error {
	d, err := s.c.decode(row[s.col])
	if err != nil || d.null {
		return err
	}
	if s.sum == nil {
		s.sum = d.n
		return nil
	}
	s.sum, err = addDecimal(s.sum, d.n)
	return err
}

func (s *numericSumState) result() ([]byte, error) {
	if s.sum == nil {
		return nil, nil
	}
	return appendNumeric(nil, s.c.format, s.sum), nil
}

// floatSumState adds in the column's precision, as float4pl/float8pl do.
type floatSumState struct {
	col int
	c   column
	sum float64
	any bool
}

func (s *floatSumState) add(row [][]byte) error {
	d, err := s.c.decode(row[s.col])
	if err != nil || d.null {
		return err
	}
	if !s.any {
		s.sum, s.any = d.f, true
		return nil
	}
	sum := s.sum + d.f
	if s.c.oid == pgtype.Float4OID {
		sum = float64(float32(s.sum) + float32(d.f))
	}
	if err := floatOverflow(sum, s.sum, d.f); err != nil {
		return err
	}
	s.sum = sum
	return nil
}

func (s *floatSumState) result() ([]byte, error) {
	if !s.any {
		return nil, nil
	}
	return appendFloat(nil, s.c.oid, s.c.format, s.sum), nil
}

// intervalSumState adds intervals field by field, as interval_pl does.
type intervalSumState struct {
	col int
	sum interval
	any bool
}

func (s *intervalSumState) add(row [][]byte) error {
	raw := row[s.col]
	if raw == nil {
		return nil
	}
	iv, err := decodeIntervalBinary(raw)
	if err != nil {
		return err
	}
	if !s.any {
		s.sum, s.any = iv, true
		return nil
	}
	m := int64(s.sum.months) + int64(iv.months)
	d := int64(s.sum.days) + int64(iv.days)
	u := s.sum.micro + iv.micro
	if m != int64(int32(m)) || d != int64(int32(d)) ||
		(iv.micro > 0 && u < s.sum.micro) || (iv.micro < 0 && u > s.sum.micro) {
		return pgerrorIntervalRange()
	}
	s.sum = interval{micro: u, days: int32(d), months: int32(m)}
	return nil
}

func (s *intervalSumState) result() ([]byte, error) {
	if !s.any {
		return nil, nil
	}
	return s.sum.appendBinary(nil), nil
}

// extremeState keeps the smallest (sign 1) or largest (sign -1) value as
// the shard sent it; on ties the first stays.
type extremeState struct {
	col  int
	c    column
	sign int
	best datum
	raw  []byte
	any  bool
}

func (s *extremeState) add(row [][]byte) error {
	raw := row[s.col]
	d, err := s.c.decode(raw)
	if err != nil || d.null {
		return err
	}
	if !s.any || s.sign*compareDatum(s.c.kind, d, s.best) < 0 {
		s.best, s.raw, s.any = d, raw, true
	}
	return nil
}

func (s *extremeState) result() ([]byte, error) { return s.raw, nil }

type boolState struct {
	col int
	c   column
	and bool
	v   bool
	any bool
}

func (s *boolState) add(row [][]byte) error {
	d, err := s.c.decode(row[s.col])
	if err != nil || d.null {
		return err
	}
	v := d.i == 1
	switch {
	case !s.any:
		s.v = v
	case s.and:
		s.v = s.v && v
	default:
		s.v = s.v || v
	}
	s.any = true
	return nil
}

func (s *boolState) result() ([]byte, error) {
	if !s.any {
		return nil, nil
	}
	return appendBool(nil, s.c.format, s.v), nil
}

// numericAvgState is int8_avg / numeric_avg: the exact sum divided by the
// count with numeric_div's scale.
type numericAvgState struct {
	col, countCol int
	sum, count    column
	format        int16
	total         *decimal
	n             int64
}

func (s *numericAvgState) add(row [][]byte) error {
	c, err := s.count.decode(row[s.countCol])
	if err != nil || c.null {
		return err
	}
	if s.n, err = addInt(pgtype.Int8OID, s.n, c.i); err != nil {
		return err
	}
	d, err := s.sum.decode(row[s.col])
	if err != nil || d.null {
		return err
	}
	v := d.n
	if s.sum.kind == kindInt {
		v = decimalFromInt(d.i)
	}
	if s.total == nil {
		s.total = v
		return nil
	}
	s.total, err = addDecimal(s.total, v)
	return err
}

func (s *numericAvgState) result() ([]byte, error) {
	if s.n == 0 || s.total == nil {
		return nil, nil
	}
	q, err := divDecimal(s.total, decimalFromInt(s.n))
	if err != nil {
		return nil, err
	}
	return appendNumeric(nil, s.format, q), nil
}

// floatAvgState is float8_avg: the float8 sum divided by the count.
type floatAvgState struct {
	sum      floatSumState
	countCol int
	count    column
	n        int64
}

func (s *floatAvgState) add(row [][]byte) error {
	c, err := s.count.decode(row[s.countCol])
	if err != nil || c.null {
		return err
	}
	if s.n, err = addInt(pgtype.Int8OID, s.n, c.i); err != nil {
		return err
	}
	return s.sum.add(row)
}

func (s *floatAvgState) result() ([]byte, error) {
	if s.n == 0 || !s.sum.any {
		return nil, nil
	}
	return appendFloat(nil, pgtype.Float8OID, s.sum.c.format, s.sum.sum/float64(s.n)), nil
}
