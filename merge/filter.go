package merge

// HAVING on merged groups: a condition over columns and constants, with
// SQL's three-valued logic. The constant is typed as PostgreSQL would type
// it (a quoted literal or an untyped parameter takes the column's type, an
// unquoted number is int4, int8 or numeric, a cast names its type), and a
// comparison of two numeric types happens in the type the server's
// operator resolution picks (int vs numeric in numeric, anything vs float
// in float8), so count(*) > 2.5 and sum(x) >= '10.5' mean what they mean
// on one server.

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/planner"
)

type truth int8

const (
	tFalse truth = iota
	tTrue
	tUnknown
)

// cond is a compiled Condition.
type cond struct {
	op     string
	args   []*cond
	col    int
	c      column // how to read the column
	domain kind   // the kind both sides are compared as
	lit    datum  // the constant, already in domain
}

func filter(in Rows, c *planner.Condition, params []Param) (Rows, error) {
	cc, err := compileCond(in.Fields, c, params)
	if err != nil {
		return Rows{}, err
	}
	out := Rows{Fields: in.Fields, Values: make([][][]byte, 0, len(in.Values))}
	for _, row := range in.Values {
		t, err := cc.eval(row)
		if err != nil {
			return Rows{}, err
		}
		if t == tTrue {
			out.Values = append(out.Values, row)
		}
	}
	return out, nil
}

func compileCond(fields []pgproto3.FieldDescription, c *planner.Condition, params []Param) (*cond, error) {
	if c == nil {
		return nil, internal("nil condition")
	}
	switch c.Op {
	case "AND", "OR", "NOT":
		if len(c.Args) == 0 || (c.Op == "NOT" && len(c.Args) != 1) {
			return nil, internal("%s with %d arguments", c.Op, len(c.Args))
		}
		out := &cond{op: c.Op}
		for _, a := range c.Args {
			ca, err := compileCond(fields, a, params)
			if err != nil {
				return nil, err
			}
			out.args = append(out.args, ca)
		}
		return out, nil
	case "IS NULL", "IS NOT NULL":
		if err := checkColumn(fields, c.Column); err != nil {
			return nil, err
		}
		return &cond{op: c.Op, col: c.Column}, nil
	case "=", "<>", "!=", "<", "<=", ">", ">=":
	default:
		return nil, unsupported("evaluate the condition on the shards", "cannot evaluate operator %s across shards", c.Op)
	}
	if err := checkColumn(fields, c.Column); err != nil {
		return nil, err
	}
	f := fields[c.Column]
	col, err := comparableColumn(f.DataTypeOID, f.Format, "compare")
	if err != nil {
		return nil, err
	}
	litCol, lit, err := literal(c.Value, col, params)
	if err != nil {
		return nil, err
	}
	domain, ok := compareDomain(col, litCol)
	if !ok {
		return nil, unsupported("cast the constant to the column's type",
			"cannot compare %s with %s across shards", col.name, litCol.name)
	}
	return &cond{op: c.Op, col: c.Column, c: col, domain: domain, lit: convert(lit, litCol.kind, domain)}, nil
}

// castOID maps a cast's type name (pg_catalog's internal names and the SQL
// spellings) to its OID; 0 if the proxy does not know it.
func castOID(name string) uint32 {
	switch strings.TrimPrefix(strings.ToLower(name), "pg_catalog.") {
	case "int2", "smallint":
		return pgtype.Int2OID
	case "int4", "int", "integer":
		return pgtype.Int4OID
	case "int8", "bigint":
		return pgtype.Int8OID
	case "oid":
		return pgtype.OIDOID
	case "float4", "real":
		return pgtype.Float4OID
	case "float8", "double precision", "float":
		return pgtype.Float8OID
	case "numeric", "decimal":
		return pgtype.NumericOID
	case "bool", "boolean":
		return pgtype.BoolOID
	case "text":
		return pgtype.TextOID
	case "varchar", "character varying":
		return pgtype.VarcharOID
	case "bpchar", "character", "char":
		return pgtype.BPCharOID
	case "name":
		return pgtype.NameOID
	case "bytea":
		return pgtype.ByteaOID
	case "uuid":
		return pgtype.UUIDOID
	case "date":
		return pgtype.DateOID
	case "time", "time without time zone":
		return pgtype.TimeOID
	case "timestamp", "timestamp without time zone":
		return pgtype.TimestampOID
	case "timestamptz", "timestamp with time zone":
		return pgtype.TimestamptzOID
	case "interval":
		return pgtype.IntervalOID
	}
	return 0
}

// literal types and reads the constant of a comparison with col.
func literal(v planner.KeyValue, col column, params []Param) (column, datum, error) {
	if v.ArrayParam {
		return column{}, datum{}, unsupported("compare with each value separately", "cannot evaluate = ANY($%d) across shards", v.Param)
	}
	var cast uint32
	if v.Cast != "" {
		if cast = castOID(v.Cast); cast == 0 {
			return column{}, datum{}, unsupported("cast the constant to a built-in type", "cannot evaluate a cast to %s across shards", v.Cast)
		}
	}
	typed := func(oid uint32, format int16) column {
		k, name := typeOf(oid)
		return column{oid: oid, format: format, kind: k, name: name}
	}
	if v.Param > 0 {
		if v.Param > len(params) {
			return column{}, datum{}, pgerrorNoParam(v.Param)
		}
		p := params[v.Param-1]
		oid := p.OID
		switch {
		case oid == 0 && cast != 0:
			oid = cast
		case oid == 0:
			oid = col.oid // an untyped parameter takes the column's type
		case cast != 0 && cast != oid:
			return column{}, datum{}, unsupported("bind the parameter with the cast's type", "cannot evaluate a cast of parameter $%d across shards", v.Param)
		}
		lc := typed(oid, p.Format)
		if lc.kind == kindNone {
			return lc, datum{}, unsupported("bind the parameter as the column's type", "cannot compare with a parameter of %s across shards", lc.name)
		}
		d, err := lc.decode(p.Value)
		return lc, d, err
	}
	oid := cast
	switch {
	case oid != 0:
	case v.Quoted:
		oid = col.oid // an unknown-typed literal takes the column's type
	default:
		switch lit := strings.ToLower(v.Literal); {
		case lit == "null":
			return col, datum{null: true}, nil
		case lit == "true" || lit == "false":
			oid = pgtype.BoolOID
		default:
			oid = numberType(v.Literal)
			if col.oid == pgtype.OIDOID && oid != pgtype.NumericOID {
				oid = pgtype.OIDOID // int4 casts to oid implicitly: -1 is 4294967295
			}
		}
	}
	lc := typed(oid, 0)
	if lc.kind == kindMoney {
		return lc, datum{}, unsupported("cast money to numeric", "cannot read money constants in the proxy")
	}
	d, err := lc.decodeText(v.Literal)
	return lc, d, err
}

// numberType is the type PostgreSQL gives an unquoted numeric constant:
// int4 if it fits, else int8 if it fits, else numeric.
func numberType(s string) uint32 {
	if _, err := parseInt(s, pgtype.Int4OID); err == nil {
		return pgtype.Int4OID
	}
	if _, err := parseInt(s, pgtype.Int8OID); err == nil {
		return pgtype.Int8OID
	}
	return pgtype.NumericOID
}

// compareDomain is the kind a column and a constant are compared as, after
// PostgreSQL's implicit casts.
func compareDomain(col, lit column) (kind, bool) {
	numberish := func(k kind) bool { return k == kindInt || k == kindNumeric || k == kindFloat }
	textish := func(k kind) bool { return k == kindText || k == kindBpchar }
	switch a, b := col.kind, lit.kind; {
	case numberish(a) && numberish(b):
		switch {
		case a == kindFloat || b == kindFloat:
			return kindFloat, true
		case a == kindNumeric || b == kindNumeric:
			return kindNumeric, true
		}
		return kindInt, true
	case textish(a) && textish(b):
		if a == kindBpchar && b == kindBpchar {
			return kindBpchar, true
		}
		return kindText, true // bpchar loses its trailing spaces as text
	case a == kindDate && b == kindTimestamp && lit.oid == pgtype.TimestampOID,
		b == kindDate && a == kindTimestamp && col.oid == pgtype.TimestampOID:
		return kindTimestamp, true
	case a != b:
		return kindNone, false
	case a == kindBytes || a == kindTimestamp:
		return a, col.oid == lit.oid
	}
	return col.kind, true
}

// convert brings a value of kind from into kind to (a widening the domain
// chose, so it never fails).
func convert(d datum, from, to kind) datum {
	if d.null || from == to {
		return d
	}
	switch to {
	case kindNumeric:
		return datum{n: decimalFromInt(d.i)}
	case kindFloat:
		switch from {
		case kindInt:
			return datum{f: float64(d.i)}
		case kindNumeric:
			return datum{f: d.n.float64()}
		}
	case kindTimestamp: // from date
		switch d.i {
		case dateInfinity:
			return datum{i: tsInfinity}
		case dateNegInfinity:
			return datum{i: tsNegInfinity}
		}
		return datum{i: d.i * usecPerDay}
	}
	return d
}

func (c *cond) eval(row [][]byte) (truth, error) {
	switch c.op {
	case "AND", "OR":
		result := tTrue
		if c.op == "OR" {
			result = tFalse
		}
		for _, a := range c.args {
			t, err := a.eval(row)
			if err != nil {
				return tUnknown, err
			}
			switch {
			case c.op == "AND" && t == tFalse:
				return tFalse, nil
			case c.op == "OR" && t == tTrue:
				return tTrue, nil
			case t == tUnknown:
				result = tUnknown
			}
		}
		return result, nil
	case "NOT":
		t, err := c.args[0].eval(row)
		switch t {
		case tTrue:
			t = tFalse
		case tFalse:
			t = tTrue
		}
		return t, err
	case "IS NULL", "IS NOT NULL":
		if (row[c.col] == nil) == (c.op == "IS NULL") {
			return tTrue, nil
		}
		return tFalse, nil
	}
	d, err := c.c.decode(row[c.col])
	if err != nil {
		return tUnknown, err
	}
	if d.null || c.lit.null {
		return tUnknown, nil
	}
	r := compareDatum(c.domain, convert(d, c.c.kind, c.domain), c.lit)
	var ok bool
	switch c.op {
	case "=":
		ok = r == 0
	case "<>", "!=":
		ok = r != 0
	case "<":
		ok = r < 0
	case "<=":
		ok = r <= 0
	case ">":
		ok = r > 0
	case ">=":
		ok = r >= 0
	}
	if ok {
		return tTrue, nil
	}
	return tFalse, nil
}
