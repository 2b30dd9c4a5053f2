package merge_test

// Aggregate: partial aggregates from several shards combined per group,
// by value, with PostgreSQL's result types, scales, NULL rules and errors.

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

func agg(grouped bool, cols ...planner.AggregateColumn) *planner.Aggregate {
	return &planner.Aggregate{Input: route(), Columns: cols, Grouped: grouped}
}

func ac(c int, f planner.AggregateFunc) planner.AggregateColumn {
	return planner.AggregateColumn{Column: c, Func: f}
}

func avgOf(c, count int) planner.AggregateColumn {
	return planner.AggregateColumn{Column: c, Func: planner.AggAvg, CountColumn: count, Name: "avg"}
}

func TestAggregateUngrouped(t *testing.T) {
	// count(*), sum(int4) as int8, min(text), max(numeric), avg(int4) as
	// sum int8 + hidden count, bool_and, bool_or.
	f := fields(text(pgtype.Int8OID), text(pgtype.Int8OID), text(pgtype.TextOID), text(pgtype.NumericOID),
		text(pgtype.Int8OID), text(pgtype.BoolOID), text(pgtype.BoolOID), bin(pgtype.Int8OID))
	plan := agg(false, ac(0, planner.AggCount), ac(1, planner.AggSum), ac(2, planner.AggMin), ac(3, planner.AggMax),
		avgOf(4, 7), ac(5, planner.AggBoolAnd), ac(6, planner.AggBoolOr), ac(7, planner.AggSum))
	cases := []struct {
		name   string
		shards []merge.Rows
		want   []string
	}{
		{
			name: "three shards",
			shards: []merge.Rows{
				shard(f, row("2", "3", "b", "1.50", "3", "t", "f", i8(2))),
				shard(f, row("0", nil, nil, nil, nil, nil, nil, i8(0))), // a shard with no rows
				shard(f, row("1", "-10", "a", "1.5", "4", "f", "t", i8(1))),
			},
			want: []string{"3", "-7", "a", "1.50", "2.3333333333333333", "f", "t", string(i8(3))},
		},
		{
			name: "every shard empty",
			shards: []merge.Rows{
				shard(f, row("0", nil, nil, nil, nil, nil, nil, i8(0))),
				shard(f, row("0", nil, nil, nil, nil, nil, nil, i8(0))),
			},
			want: []string{"0", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", string(i8(0))},
		},
		{
			name:   "no rows at all still answers one row",
			shards: []merge.Rows{shard(f), shard(f)},
			want:   []string{"0", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := merge.Run(plan, tc.shards, nil)
			if err != nil {
				t.Fatal(err)
			}
			if g := texts(got); len(g) != 1 || !reflect.DeepEqual(g[0], tc.want) {
				t.Fatalf("got %q\nwant %q", g, tc.want)
			}
			if oid := got.Fields[4].DataTypeOID; oid != pgtype.NumericOID {
				t.Fatalf("avg column type %d, want numeric", oid)
			}
		})
	}
}

func TestAvg(t *testing.T) {
	cases := []struct {
		name     string
		sum      col
		partials [][2]any // sum, count (int8 text)
		want     string
		wantOID  uint32
	}{
		{"int 1,2", text(pgtype.Int8OID), [][2]any{{"1", "1"}, {"2", "1"}}, "1.5000000000000000", pgtype.NumericOID},
		{"int 1,2,3", text(pgtype.Int8OID), [][2]any{{"6", "3"}}, "2.0000000000000000", pgtype.NumericOID},
		{"int 2/3", text(pgtype.Int8OID), [][2]any{{"1", "2"}, {"1", "1"}}, "0.66666666666666666667", pgtype.NumericOID},
		{"int negative rounds away from zero", text(pgtype.Int8OID), [][2]any{{"-2", "3"}}, "-0.66666666666666666667", pgtype.NumericOID},
		{"numeric 1.25, 2.5", text(pgtype.NumericOID), [][2]any{{"1.25", "1"}, {"2.5", "1"}}, "1.8750000000000000", pgtype.NumericOID},
		{"numeric keeps a larger input scale", text(pgtype.NumericOID), [][2]any{{"1.00000000000000000000", "1"}, {"2", "1"}}, "1.50000000000000000000", pgtype.NumericOID},
		{"large int8 sums as numeric", text(pgtype.NumericOID), [][2]any{{"9223372036854775807", "1"}, {"9223372036854775807", "1"}}, "9223372036854775807", pgtype.NumericOID},
		{"large sum over int8 partials does not overflow", text(pgtype.Int8OID), [][2]any{{"9223372036854775807", "1"}, {"9223372036854775807", "1"}}, "9223372036854775807", pgtype.NumericOID},
		{"small values", text(pgtype.NumericOID), [][2]any{{"0.000001", "3"}}, "0.000000333333333333333333", pgtype.NumericOID},
		{"zero", text(pgtype.NumericOID), [][2]any{{"0.000", "3"}}, "0.00000000000000000000", pgtype.NumericOID},
		{"NaN", text(pgtype.NumericOID), [][2]any{{"NaN", "1"}, {"1", "1"}}, "NaN", pgtype.NumericOID},
		{"Infinity", text(pgtype.NumericOID), [][2]any{{"Infinity", "1"}, {"1", "1"}}, "Infinity", pgtype.NumericOID},
		{"Infinity and -Infinity", text(pgtype.NumericOID), [][2]any{{"Infinity", "1"}, {"-Infinity", "1"}}, "NaN", pgtype.NumericOID},
		{"no rows", text(pgtype.NumericOID), [][2]any{{nil, "0"}, {nil, "0"}}, "NULL", pgtype.NumericOID},
		{"float8", text(pgtype.Float8OID), [][2]any{{"0.1", "1"}, {"0.2", "1"}}, "0.15000000000000002", pgtype.Float8OID},
		{"float8 binary partials", bin(pgtype.Float8OID), [][2]any{{f8(1), "1"}, {f8(2), "2"}}, "1", pgtype.Float8OID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fields(tc.sum, text(pgtype.Int8OID))
			var shards []merge.Rows
			for _, p := range tc.partials {
				shards = append(shards, shard(f, row(p[0], p[1])))
			}
			got, err := merge.Run(agg(false, avgOf(0, 1), ac(1, planner.AggSum)), shards, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := texts(got)[0][0]
			if tc.sum.format == 1 && tc.want != "NULL" {
				v = string(mustFloat8Text(t, got.Values[0][0]))
			}
			if v != tc.want {
				t.Fatalf("avg = %s, want %s", v, tc.want)
			}
			fd := got.Fields[0]
			if fd.DataTypeOID != tc.wantOID || string(fd.Name) != "avg" || fd.TypeModifier != -1 || fd.Format != tc.sum.format {
				t.Fatalf("avg field %+v", fd)
			}
		})
	}
}

func mustFloat8Text(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("float8 binary of %d bytes", len(b))
	}
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return merge.FormatFloat8(float64frombits(u))
}

func TestAvgBinaryNumeric(t *testing.T) {
	f := fields(bin(pgtype.NumericOID), bin(pgtype.Int8OID))
	got, err := merge.Run(agg(false, avgOf(0, 1), ac(1, planner.AggSum)), []merge.Rows{
		shard(f, row(num(t, "1.25"), i8(1))),
		shard(f, row(num(t, "2.5"), i8(1))),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := merge.NumericFromBinary(got.Values[0][0])
	if err != nil {
		t.Fatal(err)
	}
	if s != "1.8750000000000000" {
		t.Fatalf("avg = %s", s)
	}
	if want := num(t, "1.8750000000000000"); !reflect.DeepEqual(got.Values[0][0], want) {
		t.Fatalf("binary %x, want %x", got.Values[0][0], want)
	}
}

func TestAggregateGrouped(t *testing.T) {
	t.Run("numeric keys by value, first value kept", func(t *testing.T) {
		f := fields(text(pgtype.NumericOID), text(pgtype.Int8OID))
		got, err := merge.Run(agg(true, ac(0, planner.AggGroupKey), ac(1, planner.AggCount)), []merge.Rows{
			shard(f, row("1.0", "2"), row("2", "1"), row(nil, "4")),
			shard(f, row("1.00", "3"), row(nil, "1"), row("2.000", "1")),
			shard(f, row("1", "1"), row("NaN", "1")),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"1.0", "6"}, {"2", "2"}, {"NULL", "5"}, {"NaN", "1"}}
		if g := texts(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("got %q, want %q", g, want)
		}
	})
	t.Run("float keys: -0 is 0, NaN is NaN", func(t *testing.T) {
		f := fields(bin(pgtype.Float8OID), text(pgtype.Int8OID))
		got, err := merge.Run(agg(true, ac(0, planner.AggGroupKey), ac(1, planner.AggCount)), []merge.Rows{
			shard(f, row(f8(negZero()), "1"), row(f8(nan()), "1")),
			shard(f, row(f8(0), "1"), row(f8(nan()), "2")),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Values) != 2 || string(got.Values[0][1]) != "2" || string(got.Values[1][1]) != "3" {
			t.Fatalf("got %q", texts(got))
		}
	})
	t.Run("text and bpchar keys", func(t *testing.T) {
		f := fields(text(pgtype.BPCharOID), text(pgtype.TextOID), text(pgtype.Int8OID))
		got, err := merge.Run(agg(true, ac(0, planner.AggGroupKey), ac(1, planner.AggGroupKey), ac(2, planner.AggSum)), []merge.Rows{
			shard(f, row("a  ", "x", "1"), row("a", "x ", "2")),
			shard(f, row("a", "x", "4")),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"a  ", "x", "5"}, {"a", "x ", "2"}}
		if g := texts(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("got %q, want %q", g, want)
		}
	})
	t.Run("no rows, no groups", func(t *testing.T) {
		f := fields(text(pgtype.Int4OID), text(pgtype.Int8OID))
		got, err := merge.Run(agg(true, ac(0, planner.AggGroupKey), ac(1, planner.AggCount)), []merge.Rows{shard(f), shard(f)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Values) != 0 {
			t.Fatalf("got %q", texts(got))
		}
	})
	t.Run("hidden binary key, visible text columns", func(t *testing.T) {
		// SELECT d::text, sum(x), avg(x) ... GROUP BY d: visible text, the
		// key hidden in binary.
		f := fields(text(pgtype.TextOID), text(pgtype.NumericOID), text(pgtype.NumericOID), bin(pgtype.Int8OID), bin(pgtype.DateOID))
		plan := agg(true, ac(0, planner.AggAny), ac(1, planner.AggSum), avgOf(2, 3), ac(3, planner.AggCount), ac(4, planner.AggGroupKey))
		got, err := merge.Run(plan, []merge.Rows{
			shard(f, row("2024-01-01", "1.5", "1.5", i8(1), i4(8766)), row("2024-01-02", "2", "2", i8(2), i4(8767))),
			shard(f, row("2024-01-01", "2.25", "2.25", i8(2), i4(8766))),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := texts(got)
		if len(g) != 2 || g[0][0] != "2024-01-01" || g[0][1] != "3.75" || g[0][2] != "1.25000000000000000000" || g[1][2] != "1.00000000000000000000" {
			t.Fatalf("got %q", g)
		}
	})
}

func TestSum(t *testing.T) {
	cases := []struct {
		name     string
		c        col
		partials []any
		want     any // string for text, []byte for binary, or an error code in code
		code     string
	}{
		{"int8", text(pgtype.Int8OID), []any{"1", nil, "-5"}, "-4", ""},
		{"int8 binary", bin(pgtype.Int8OID), []any{i8(40), i8(2)}, i8(42), ""},
		{"int8 all NULL", text(pgtype.Int8OID), []any{nil, nil}, nil, ""},
		{"int8 overflow", text(pgtype.Int8OID), []any{"9223372036854775807", "1"}, nil, "22003"},
		{"int8 negative overflow", bin(pgtype.Int8OID), []any{i8(-1 << 63), i8(-1)}, nil, "22003"},
		{"numeric scales", text(pgtype.NumericOID), []any{"1.5", "2.25", "-0.001"}, "3.749", ""},
		{"numeric keeps the larger scale", text(pgtype.NumericOID), []any{"1", "2.000"}, "3.000", ""},
		{"numeric zero keeps scale", text(pgtype.NumericOID), []any{"1.50", "-1.5"}, "0.00", ""},
		{"numeric big", text(pgtype.NumericOID), []any{"99999999999999999999999999999999.99", "0.01"}, "100000000000000000000000000000000.00", ""},
		{"numeric NaN", text(pgtype.NumericOID), []any{"1", "NaN"}, "NaN", ""},
		{"numeric binary", bin(pgtype.NumericOID), []any{num(t, "0.0001"), num(t, "10000")}, num(t, "10000.0001"), ""},
		{"float8", text(pgtype.Float8OID), []any{"1e+308", "-1e+308", "0.5"}, "0.5", ""},
		{"float8 overflow", text(pgtype.Float8OID), []any{"1.7976931348623157e+308", "1.7976931348623157e+308"}, nil, "22003"},
		{"float8 Infinity is no overflow", text(pgtype.Float8OID), []any{"Infinity", "1"}, "Infinity", ""},
		{"float4 adds in float4", text(pgtype.Float4OID), []any{"16777216", "1"}, "1.6777216e+07", ""},
		{"float4 binary", bin(pgtype.Float4OID), []any{f4(0.5), f4(0.25)}, f4(0.75), ""},
		{"interval binary", bin(pgtype.IntervalOID), []any{ivl(1, 2, 3), ivl(10, 20, 30)}, ivl(11, 22, 33), ""},
		{"interval overflow", bin(pgtype.IntervalOID), []any{ivl(0, 0, 2147483647), ivl(0, 0, 1)}, nil, "22008"},
		{"interval in text is refused", text(pgtype.IntervalOID), []any{"1 day"}, nil, "0A000"},
		{"money is refused", bin(790), []any{i8(100)}, nil, "0A000"},
		{"text is refused", text(pgtype.TextOID), []any{"a"}, nil, "0A000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fields(tc.c)
			var shards []merge.Rows
			for _, p := range tc.partials {
				shards = append(shards, shard(f, row(p)))
			}
			got, err := merge.Run(agg(false, ac(0, planner.AggSum)), shards, nil)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := got.Values[0][0]
			switch w := tc.want.(type) {
			case nil:
				if v != nil {
					t.Fatalf("got %q, want NULL", v)
				}
			case string:
				if string(v) != w {
					t.Fatalf("got %q, want %q", v, w)
				}
			case []byte:
				if !reflect.DeepEqual(v, w) {
					t.Fatalf("got %x, want %x", v, w)
				}
			}
		})
	}
}

func TestMinMax(t *testing.T) {
	cases := []struct {
		name    string
		c       col
		vals    []any
		min     any
		max     any
		minMax  bool
		wantErr string
	}{
		{"numeric by value", text(pgtype.NumericOID), []any{"10", "9.5", nil, "10.0"}, "9.5", "10", true, ""},
		{"text C order", text(pgtype.TextOID), []any{"b", "B", "ä", "a"}, "B", "ä", true, ""},
		{"float NaN is largest", text(pgtype.Float8OID), []any{"NaN", "Infinity", "-1"}, "-1", "NaN", true, ""},
		{"all NULL", text(pgtype.Int4OID), []any{nil, nil}, nil, nil, true, ""},
		{"timestamptz binary", bin(pgtype.TimestamptzOID), []any{i8(5), i8(-5)}, i8(-5), i8(5), true, ""},
		{"json refused", text(pgtype.JSONOID), []any{"{}"}, nil, nil, false, "0A000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fields(tc.c, tc.c)
			var shards []merge.Rows
			for _, v := range tc.vals {
				shards = append(shards, shard(f, row(v, v)))
			}
			got, err := merge.Run(agg(false, ac(0, planner.AggMin), ac(1, planner.AggMax)), shards, nil)
			if tc.wantErr != "" {
				wantCode(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check := func(got []byte, want any) {
				t.Helper()
				switch w := want.(type) {
				case nil:
					if got != nil {
						t.Fatalf("got %q, want NULL", got)
					}
				case string:
					if string(got) != w {
						t.Fatalf("got %q, want %q", got, w)
					}
				case []byte:
					if !reflect.DeepEqual(got, w) {
						t.Fatalf("got %x, want %x", got, w)
					}
				}
			}
			check(got.Values[0][0], tc.min)
			check(got.Values[0][1], tc.max)
		})
	}
}

func TestAggregateRefusals(t *testing.T) {
	cases := []struct {
		name string
		f    []col
		plan *planner.Aggregate
		code string
	}{
		{"avg of float4 partials", []col{text(pgtype.Float4OID), text(pgtype.Int8OID)}, agg(false, avgOf(0, 1), ac(1, planner.AggSum)), "0A000"},
		{"avg of interval", []col{bin(pgtype.IntervalOID), text(pgtype.Int8OID)}, agg(false, avgOf(0, 1), ac(1, planner.AggSum)), "0A000"},
		{"unknown aggregate", []col{text(pgtype.Int8OID)}, agg(false, ac(0, "stddev")), "0A000"},
		{"group by json", []col{text(pgtype.JSONOID), text(pgtype.Int8OID)}, agg(true, ac(0, planner.AggGroupKey), ac(1, planner.AggCount)), "0A000"},
		{"column missing from the plan", []col{text(pgtype.Int8OID), text(pgtype.Int8OID)}, agg(false, ac(0, planner.AggCount)), "XX000"},
		{"column listed twice", []col{text(pgtype.Int8OID)}, agg(false, ac(0, planner.AggCount), ac(0, planner.AggSum)), "XX000"},
		{"count of text", []col{text(pgtype.TextOID)}, agg(false, ac(0, planner.AggCount)), "XX000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := merge.Run(tc.plan, []merge.Rows{{Fields: fields(tc.f...)}}, nil)
			wantCode(t, err, tc.code)
		})
	}
	t.Run("count overflow", func(t *testing.T) {
		f := fields(text(pgtype.Int8OID))
		_, err := merge.Run(agg(false, ac(0, planner.AggCount)), []merge.Rows{shard(f, row("9223372036854775807")), shard(f, row("1"))}, nil)
		pe := wantCode(t, err, "22003")
		if pe.Message != "bigint out of range" {
			t.Fatalf("message %q", pe.Message)
		}
	})
}
