package merge

// Values by type: merging compares, groups and adds values the way
// PostgreSQL does, not byte by byte (1.0 and 1.00 are one numeric, -0 and
// 0 one float, 'a ' and 'a' one bpchar), and must read them in whichever
// format the shards sent (hidden columns binary, visible ones in the
// client's format). Every supported type decodes into a datum whose
// comparison is PostgreSQL's default btree order for the type (text in the
// C collation, as the shards are initialised), and whose canonical form is
// equal exactly when the values compare equal, so groups and DISTINCT can
// hash instead of compare.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// kind is how a type's values decode and compare.
type kind uint8

const (
	kindNone      kind = iota // not comparable by the proxy
	kindInt                   // int2, int4, int8, oid: i
	kindFloat                 // float4, float8: f
	kindNumeric               // n
	kindBool                  // i (0 or 1)
	kindText                  // text, varchar, name: b, byte order (C collation)
	kindBpchar                // b without trailing spaces
	kindBytes                 // bytea, uuid, "char": b, byte order
	kindDate                  // i: days since 2000-01-01, ±infinity at the int32 ends
	kindTime                  // i: microseconds since midnight
	kindTimestamp             // i: microseconds since 2000-01-01 (timestamptz: UTC)
	kindInterval              // i, j: the span as whole days and a remainder in µs
	kindMoney                 // i: cents (binary only: its text depends on lc_monetary)
)

// OIDs that package pgtype does not name.
const (
	oidMoney uint32 = 790
)

// typeOf returns the kind of the type and its name as PostgreSQL spells it
// in messages.
func typeOf(oid uint32) (kind, string) {
	switch oid {
	case pgtype.Int2OID:
		return kindInt, "smallint"
	case pgtype.Int4OID:
		return kindInt, "integer"
	case pgtype.Int8OID:
		return kindInt, "bigint"
	case pgtype.OIDOID:
		return kindInt, "oid"
	case pgtype.Float4OID:
		return kindFloat, "real"
	case pgtype.Float8OID:
		return kindFloat, "double precision"
	case pgtype.NumericOID:
		return kindNumeric, "numeric"
	case pgtype.BoolOID:
		return kindBool, "boolean"
	case pgtype.TextOID:
		return kindText, "text"
	case pgtype.VarcharOID:
		return kindText, "character varying"
	case pgtype.NameOID:
		return kindText, "name"
	case pgtype.BPCharOID:
		return kindBpchar, "character"
	case pgtype.ByteaOID:
		return kindBytes, "bytea"
	case pgtype.UUIDOID:
		return kindBytes, "uuid"
	case pgtype.QCharOID:
		return kindBytes, `"char"`
	case pgtype.DateOID:
		return kindDate, "date"
	case pgtype.TimeOID:
		return kindTime, "time without time zone"
	case pgtype.TimestampOID:
		return kindTimestamp, "timestamp without time zone"
	case pgtype.TimestamptzOID:
		return kindTimestamp, "timestamp with time zone"
	case pgtype.IntervalOID:
		return kindInterval, "interval"
	case oidMoney:
		return kindMoney, "money"
	}
	return kindNone, "type with OID " + strconv.FormatUint(uint64(oid), 10)
}

// datum is one decoded value; which fields hold it depends on the kind.
type datum struct {
	null bool
	i, j int64
	f    float64
	n    *decimal
	b    []byte
}

// column says how to read one column's values.
type column struct {
	oid    uint32
	format int16
	kind   kind
	name   string
}

// comparableColumn returns how to read a column of type oid in format, or
// the 0A000 refusal when the proxy cannot compare its type (what says what
// the comparison is for: "sort", "group", ...).
func comparableColumn(oid uint32, format int16, what string) (column, error) {
	k, name := typeOf(oid)
	c := column{oid: oid, format: format, kind: k, name: name}
	switch {
	case k == kindNone:
		return c, unsupported("compare this column on one shard, or cast it to a type the proxy compares (integer, numeric, float, text, bool, date/time, uuid, bytea)",
			"cannot %s values of %s across shards", what, name)
	case k == kindMoney && format == 0:
		return c, unsupported("cast money to numeric in the query",
			"cannot %s money values in text format across shards", what)
	}
	return c, nil
}

// decode reads one value of c; nil is SQL NULL.
func (c column) decode(raw []byte) (datum, error) {
	if raw == nil {
		return datum{null: true}, nil
	}
	if c.format == 1 {
		return c.decodeBinary(raw)
	}
	return c.decodeText(string(raw))
}

func (c column) decodeBinary(b []byte) (datum, error) {
	var d datum
	fixed := func(n int) bool { return len(b) == n }
	switch c.oid {
	case pgtype.Int2OID:
		if !fixed(2) {
			return d, badBinary(c.name)
		}
		d.i = int64(int16(binary.BigEndian.Uint16(b)))
	case pgtype.Int4OID:
		if !fixed(4) {
			return d, badBinary(c.name)
		}
		d.i = int64(int32(binary.BigEndian.Uint32(b)))
	case pgtype.OIDOID:
		if !fixed(4) {
			return d, badBinary(c.name)
		}
		d.i = int64(binary.BigEndian.Uint32(b))
	case pgtype.Int8OID, oidMoney, pgtype.TimeOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		if !fixed(8) {
			return d, badBinary(c.name)
		}
		d.i = int64(binary.BigEndian.Uint64(b))
	case pgtype.Float4OID:
		if !fixed(4) {
			return d, badBinary(c.name)
		}
		d.f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case pgtype.Float8OID:
		if !fixed(8) {
			return d, badBinary(c.name)
		}
		d.f = math.Float64frombits(binary.BigEndian.Uint64(b))
	case pgtype.NumericOID:
		n, err := decodeNumericBinary(b)
		if err != nil {
			return d, err
		}
		d.n = n
	case pgtype.BoolOID:
		if !fixed(1) || b[0] > 1 {
			return d, badBinary(c.name)
		}
		d.i = int64(b[0])
	case pgtype.BPCharOID:
		d.b = bytes.TrimRight(b, " ")
	case pgtype.UUIDOID:
		if !fixed(16) {
			return d, badBinary(c.name)
		}
		d.b = b
	case pgtype.QCharOID:
		if len(b) > 1 {
			return d, badBinary(c.name)
		}
		d.b = b
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.NameOID, pgtype.ByteaOID:
		d.b = b
	case pgtype.DateOID:
		if !fixed(4) {
			return d, badBinary(c.name)
		}
		d.i = int64(int32(binary.BigEndian.Uint32(b)))
	case pgtype.IntervalOID:
		iv, err := decodeIntervalBinary(b)
		if err != nil {
			return d, err
		}
		d.i, d.j = iv.span()
	default:
		return d, internal("decode of %s", c.name)
	}
	return d, nil
}

func (c column) decodeText(s string) (datum, error) {
	var d datum
	var err error
	switch c.kind {
	case kindInt:
		d.i, err = parseInt(s, c.oid)
	case kindFloat:
		bits := 64
		if c.oid == pgtype.Float4OID {
			bits = 32
		}
		d.f, err = parseFloat(s, bits)
	case kindNumeric:
		d.n, err = parseNumeric(s)
	case kindBool:
		var v bool
		v, err = parseBool(s)
		if v {
			d.i = 1
		}
	case kindText:
		d.b = []byte(s)
	case kindBpchar:
		d.b = []byte(strings.TrimRight(s, " "))
	case kindBytes:
		switch c.oid {
		case pgtype.UUIDOID:
			d.b, err = parseUUID(s)
		case pgtype.QCharOID:
			d.b, err = parseQChar(s)
		default:
			d.b, err = parseByteaText(s)
		}
	case kindDate:
		d.i, err = parseDateText(s)
	case kindTime:
		d.i, err = parseTimeText(s)
	case kindTimestamp:
		d.i, err = parseTimestampText(s, c.oid == pgtype.TimestamptzOID)
	case kindInterval:
		var iv interval
		iv, err = parseIntervalText(s)
		d.i, d.j = iv.span()
	default:
		err = internal("text decode of %s", c.name)
	}
	return d, err
}

// compareDatum compares two non-NULL values of one kind in PostgreSQL's
// default btree order.
func compareDatum(k kind, a, b datum) int {
	switch k {
	case kindFloat:
		return compareFloat(a.f, b.f)
	case kindNumeric:
		return cmpDecimal(a.n, b.n)
	case kindText, kindBpchar, kindBytes:
		return bytes.Compare(a.b, b.b)
	case kindInterval:
		if c := cmpInt(a.i, b.i); c != 0 {
			return c
		}
		return cmpInt(a.j, b.j)
	}
	return cmpInt(a.i, b.i)
}

// compareFloat is float8_cmp_internal: NaN equals NaN and sorts above
// every other value; -0 equals 0.
func compareFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendCanon appends a form of d that is equal exactly when the values
// compare equal, self-delimiting so several columns can be concatenated.
func appendCanon(buf []byte, k kind, d datum) []byte {
	if d.null {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	switch k {
	case kindFloat:
		f := d.f
		switch {
		case math.IsNaN(f):
			return append(buf, 0xFF)
		case f == 0:
			f = 0
		}
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(f))
	case kindNumeric:
		c := d.n.appendCanon(nil)
		buf = binary.AppendUvarint(buf, uint64(len(c)))
		return append(buf, c...)
	case kindText, kindBpchar, kindBytes:
		buf = binary.AppendUvarint(buf, uint64(len(d.b)))
		return append(buf, d.b...)
	case kindInterval:
		buf = binary.BigEndian.AppendUint64(buf, uint64(d.i))
		return binary.BigEndian.AppendUint64(buf, uint64(d.j))
	}
	return binary.BigEndian.AppendUint64(buf, uint64(d.i))
}

// parseInt reads int2in/int4in/int8in/oidin input: surrounding whitespace,
// an optional sign, decimal digits.
func parseInt(s string, oid uint32) (int64, error) {
	_, name := typeOf(oid)
	t := trimSpace(s)
	digits := strings.TrimLeft(t, "+-")
	if len(t)-len(digits) > 1 || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, badInput(name, s)
	}
	v, err := strconv.ParseInt(t, 10, 64)
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch oid {
	case pgtype.Int2OID:
		lo, hi = math.MinInt16, math.MaxInt16
	case pgtype.Int4OID:
		lo, hi = math.MinInt32, math.MaxInt32
	case pgtype.OIDOID:
		// oidin reads with strtoul: negative values wrap.
		lo, hi = math.MinInt32, math.MaxUint32
	}
	if err != nil || v < lo || v > hi {
		return 0, outOfRange("value %s is out of range for type %s", quoteValue(s), name)
	}
	if oid == pgtype.OIDOID && v < 0 {
		v += 1 << 32
	}
	return v, nil
}

// parseBool is boolin: any unambiguous prefix of true/false/yes/no, on,
// off, 1, 0, in any case.
func parseBool(s string) (bool, error) {
	t := strings.ToLower(trimSpace(s))
	switch {
	case t == "":
	case strings.HasPrefix("true", t), strings.HasPrefix("yes", t):
		return true, nil
	case strings.HasPrefix("false", t), strings.HasPrefix("no", t):
		return false, nil
	case t == "on", t == "1":
		return true, nil
	case len(t) >= 2 && strings.HasPrefix("off", t), t == "0":
		return false, nil
	}
	return false, badInput("boolean", s)
}

// parseByteaText reads byteain's input: \x followed by hex pairs, or the
// escape format (\\ and \ooo octal escapes).
func parseByteaText(s string) ([]byte, error) {
	if strings.HasPrefix(s, `\x`) {
		h := strings.Map(func(r rune) rune {
			if r < 0x80 && isSpace(byte(r)) {
				return -1
			}
			return r
		}, s[2:])
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, badInput("bytea", s)
		}
		return b, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(s) && isOctal(s[i+1]) && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]):
			out = append(out, (s[i+1]-'0')<<6|(s[i+2]-'0')<<3|(s[i+3]-'0'))
			i += 3
		default:
			return nil, badInput("bytea", s)
		}
	}
	return out, nil
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// parseUUID reads uuid_in's input: 32 hex digits, optionally in braces,
// with a hyphen allowed after any group of four.
func parseUUID(s string) ([]byte, error) {
	t := s
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	h := make([]byte, 0, 32)
	for i := 0; i < len(t); i++ {
		if t[i] == '-' && len(h) > 0 && len(h)%4 == 0 && i+1 < len(t) && t[i+1] != '-' {
			continue
		}
		h = append(h, t[i])
	}
	b := make([]byte, 16)
	if len(h) != 32 {
		return nil, badInput("uuid", s)
	}
	if _, err := hex.Decode(b, h); err != nil {
		return nil, badInput("uuid", s)
	}
	return b, nil
}

// parseQChar reads charin's input: one byte, or \ooo for a byte with the
// high bit set (as charout prints it since PostgreSQL 15).
func parseQChar(s string) ([]byte, error) {
	if len(s) == 4 && s[0] == '\\' && isOctal(s[1]) && s[1] <= '3' && isOctal(s[2]) && isOctal(s[3]) {
		return []byte{(s[1]-'0')<<6 | (s[2]-'0')<<3 | (s[3] - '0')}, nil
	}
	if s == "" {
		return []byte{0}, nil // charout prints the NUL byte as ''
	}
	return []byte{s[0]}, nil
}
