package merge_test

// Builders for the tests: result sets written as Go literals, binary
// encodings of a few types, and checks of the error codes merge returns.

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// col is a column: its type and format (0 text, 1 binary).
type col struct {
	oid    uint32
	format int16
}

func text(oid uint32) col { return col{oid, 0} }
func bin(oid uint32) col  { return col{oid, 1} }

func fields(cols ...col) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		out[i] = pgproto3.FieldDescription{Name: []byte{'c', byte('0' + i)}, DataTypeOID: c.oid, Format: c.format, DataTypeSize: -1, TypeModifier: -1}
	}
	return out
}

// vals builds rows: nil is NULL, a string its bytes, []byte as is.
func vals(rows ...[]any) [][][]byte {
	out := make([][][]byte, len(rows))
	for i, r := range rows {
		out[i] = make([][]byte, len(r))
		for j, v := range r {
			switch v := v.(type) {
			case nil:
			case string:
				out[i][j] = []byte(v)
			case []byte:
				out[i][j] = v
			default:
				panic("vals: unsupported value")
			}
		}
	}
	return out
}

func row(v ...any) []any { return v }

func shard(f []pgproto3.FieldDescription, rows ...[]any) merge.Rows {
	return merge.Rows{Fields: f, Values: vals(rows...)}
}

func i8(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func i4(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func f8(v float64) []byte {
	return binary.BigEndian.AppendUint64(nil, math.Float64bits(v))
}
func f4(v float32) []byte {
	return binary.BigEndian.AppendUint32(nil, math.Float32bits(v))
}
func boolb(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

func num(t *testing.T, s string) []byte {
	t.Helper()
	b, err := merge.NumericBinary(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// interval's binary form: microseconds, days, months.
func ivl(micro int64, days, months int32) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(micro))
	b = binary.BigEndian.AppendUint32(b, uint32(days))
	return binary.BigEndian.AppendUint32(b, uint32(months))
}

// texts renders result rows for comparison: NULL as "NULL", binary values
// as given by render (nil: raw bytes as a string).
func texts(rs merge.Rows) [][]string {
	out := make([][]string, len(rs.Values))
	for i, r := range rs.Values {
		out[i] = make([]string, len(r))
		for j, v := range r {
			if v == nil {
				out[i][j] = "NULL"
			} else {
				out[i][j] = string(v)
			}
		}
	}
	return out
}

func route() *planner.Route { return &planner.Route{Target: planner.TargetAll} }

// wantCode fails unless err is a *pgerror.Error with code.
func wantCode(t *testing.T, err error, code string) *pgerror.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want SQLSTATE %s", code)
	}
	var pe *pgerror.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *pgerror.Error", err, err)
	}
	if string(pe.Code) != code {
		t.Fatalf("error %v: code %s, want %s", err, pe.Code, code)
	}
	if code == string(pgerror.FeatureNotSupported) && pe.Hint == "" {
		t.Fatalf("0A000 without a hint: %v", err)
	}
	return pe
}

func inf(sign int) float64 { return math.Inf(sign) }
func nan() float64         { return math.NaN() }
func negZero() float64     { return math.Copysign(0, -1) }

func float64frombits(u uint64) float64 { return math.Float64frombits(u) }
