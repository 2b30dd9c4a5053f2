package merge

// The row-level primitives: LIMIT/OFFSET over the merged stream (the shards
// each returned up to offset+limit rows), DISTINCT by value, and the final
// projection that drops the hidden columns the planner added.

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/planner"
)

func limit(in Rows, l *planner.Limit, params []Param) (Rows, error) {
	// PostgreSQL evaluates OFFSET first (recompute_limits), so a statement
	// with both wrong reports the OFFSET.
	var offset int64
	if l.Offset != nil {
		v, null, err := countValue(*l.Offset, params)
		if err != nil {
			return Rows{}, err
		}
		if !null && v < 0 {
			return Rows{}, pgerrorNegative(codeInvalidRowCountOffset, "OFFSET must not be negative")
		}
		if !null {
			offset = v // OFFSET NULL is OFFSET 0
		}
	}
	count := int64(-1)
	if l.Count != nil {
		v, null, err := countValue(*l.Count, params)
		if err != nil {
			return Rows{}, err
		}
		if !null && v < 0 {
			return Rows{}, pgerrorNegative(codeInvalidRowCountLimit, "LIMIT must not be negative")
		}
		if !null {
			count = v // LIMIT NULL is LIMIT ALL
		}
	}
	rows := in.Values
	if offset >= int64(len(rows)) {
		rows = nil
	} else {
		rows = rows[offset:]
	}
	if count >= 0 && count < int64(len(rows)) {
		rows = rows[:count]
	}
	return Rows{Fields: in.Fields, Values: rows}, nil
}

// countValue reads a LIMIT/OFFSET constant or parameter as int8.
func countValue(c planner.Count, params []Param) (v int64, null bool, err error) {
	if c.Param == 0 {
		return c.Value, false, nil
	}
	if c.Param < 0 || c.Param > len(params) {
		return 0, false, pgerrorNoParam(c.Param)
	}
	p := params[c.Param-1]
	if p.Value == nil {
		return 0, true, nil
	}
	oid := p.OID
	switch oid {
	case 0:
		oid = pgtype.Int8OID // LIMIT $1 makes $1 a bigint
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
	default:
		_, name := typeOf(oid)
		return 0, false, unsupported("bind LIMIT and OFFSET parameters as bigint",
			"cannot read a LIMIT or OFFSET parameter of type %s", name)
	}
	if p.Format == 0 {
		v, err := parseInt(string(p.Value), oid)
		return v, false, err
	}
	b := p.Value
	switch {
	case oid == pgtype.Int2OID && len(b) == 2:
		return int64(int16(binary.BigEndian.Uint16(b))), false, nil
	case oid == pgtype.Int4OID && len(b) == 4:
		return int64(int32(binary.BigEndian.Uint32(b))), false, nil
	case oid == pgtype.Int8OID && len(b) == 8:
		return int64(binary.BigEndian.Uint64(b)), false, nil
	}
	_, name := typeOf(oid)
	return 0, false, badBinary(name)
}

// distinct keeps the first row of each set of rows equal (by value) in
// columns, in input order.
func distinct(in Rows, columns []int) (Rows, error) {
	cols := make([]column, len(columns))
	for i, c := range columns {
		if err := checkColumn(in.Fields, c); err != nil {
			return Rows{}, err
		}
		f := in.Fields[c]
		col, err := comparableColumn(f.DataTypeOID, f.Format, "deduplicate")
		if err != nil {
			return Rows{}, err
		}
		cols[i] = col
	}
	seen := map[string]struct{}{}
	out := Rows{Fields: in.Fields, Values: make([][][]byte, 0, len(in.Values))}
	var key []byte
	for _, row := range in.Values {
		key = key[:0]
		for i, c := range columns {
			d, err := cols[i].decode(row[c])
			if err != nil {
				return Rows{}, err
			}
			key = appendCanon(key, cols[i].kind, d)
		}
		if _, dup := seen[string(key)]; dup {
			continue
		}
		seen[string(key)] = struct{}{}
		out.Values = append(out.Values, row)
	}
	return out, nil
}

// project keeps columns in order, descriptions and values alike.
func project(in Rows, columns []int) (Rows, error) {
	out := Rows{Fields: make([]pgproto3.FieldDescription, len(columns)), Values: make([][][]byte, len(in.Values))}
	for i, c := range columns {
		if err := checkColumn(in.Fields, c); err != nil {
			return Rows{}, err
		}
		out.Fields[i] = in.Fields[c]
	}
	for r, row := range in.Values {
		p := make([][]byte, len(columns))
		for i, c := range columns {
			p[i] = row[c]
		}
		out.Values[r] = p
	}
	return out, nil
}
