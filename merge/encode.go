package merge

// Output encodings for the values merge computes itself (sums, counts,
// averages, bool aggregates). Everything else is passed through as the
// shard sent it, so its format is the client's by construction; computed
// values are written in the column's format, binary as the type's send
// function writes it and text as its output function (PG 15, default
// settings) prints it.

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// appendInt writes v as an int2, int4 or int8 (by oid) in format; v must
// already be in the type's range.
func appendInt(buf []byte, oid uint32, format int16, v int64) []byte {
	if format == 0 {
		return strconv.AppendInt(buf, v, 10)
	}
	switch oid {
	case pgtype.Int2OID:
		return binary.BigEndian.AppendUint16(buf, uint16(v))
	case pgtype.Int4OID:
		return binary.BigEndian.AppendUint32(buf, uint32(v))
	}
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

// intRange returns the range of the integer type and its overflow message.
func intRange(oid uint32) (lo, hi int64, msg string) {
	switch oid {
	case pgtype.Int2OID:
		return math.MinInt16, math.MaxInt16, "smallint out of range"
	case pgtype.Int4OID:
		return math.MinInt32, math.MaxInt32, "integer out of range"
	}
	return math.MinInt64, math.MaxInt64, "bigint out of range"
}

// addInt adds in the integer type of oid, with PostgreSQL's overflow error.
func addInt(oid uint32, a, b int64) (int64, error) {
	lo, hi, msg := intRange(oid)
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) || s < lo || s > hi {
		return 0, outOfRange("%s", msg)
	}
	return s, nil
}

// appendFloat writes f as float4 or float8 (by oid) in format.
func appendFloat(buf []byte, oid uint32, format int16, f float64) []byte {
	if oid == pgtype.Float4OID {
		if format == 0 {
			return appendFloatText(buf, float64(float32(f)), 32)
		}
		return binary.BigEndian.AppendUint32(buf, math.Float32bits(float32(f)))
	}
	if format == 0 {
		return appendFloatText(buf, f, 64)
	}
	return binary.BigEndian.AppendUint64(buf, math.Float64bits(f))
}

func appendNumeric(buf []byte, format int16, d *decimal) []byte {
	if format == 0 {
		return d.appendText(buf)
	}
	return d.appendBinary(buf)
}

func appendBool(buf []byte, format int16, v bool) []byte {
	switch {
	case format == 1 && v:
		return append(buf, 1)
	case format == 1:
		return append(buf, 0)
	case v:
		return append(buf, 't')
	}
	return append(buf, 'f')
}

// floatOverflow is float.c's check after an addition: an infinite result
// from finite inputs is an error, not Infinity.
func floatOverflow(sum, a, b float64) error {
	if math.IsInf(sum, 0) && !math.IsInf(a, 0) && !math.IsInf(b, 0) {
		return outOfRange("value out of range: overflow")
	}
	return nil
}
