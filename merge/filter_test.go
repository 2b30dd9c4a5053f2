package merge_test

// Filter (HAVING): constants typed as PostgreSQL types them, comparisons
// in the type its operator resolution picks, three-valued logic.

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

func cmpCond(c int, op string, v planner.KeyValue) *planner.Condition {
	return &planner.Condition{Op: op, Column: c, Value: v}
}

func lit(s string) planner.KeyValue    { return planner.KeyValue{Literal: s} }
func quoted(s string) planner.KeyValue { return planner.KeyValue{Literal: s, Quoted: true} }
func param(n int) planner.KeyValue     { return planner.KeyValue{Param: n} }

func and(args ...*planner.Condition) *planner.Condition {
	return &planner.Condition{Op: "AND", Args: args}
}
func or(args ...*planner.Condition) *planner.Condition {
	return &planner.Condition{Op: "OR", Args: args}
}
func not(arg *planner.Condition) *planner.Condition {
	return &planner.Condition{Op: "NOT", Args: []*planner.Condition{arg}}
}

func TestFilter(t *testing.T) {
	// Columns: 0 count int8 text, 1 sum numeric text, 2 key text, 3 float8
	// binary, 4 bpchar, 5 date binary, 6 row label.
	f := fields(text(pgtype.Int8OID), text(pgtype.NumericOID), text(pgtype.TextOID), bin(pgtype.Float8OID),
		text(pgtype.BPCharOID), bin(pgtype.DateOID), text(pgtype.TextOID))
	in := shard(f,
		row("1", "10.5", "abc", f8(0.5), "x  ", i4(0), "r1"),
		row("3", "10.49", "abd", f8(2.5), "y", i4(1), "r2"),
		row("5", nil, nil, f8(nan()), nil, nil, "r3"),
		row("2", "11", "ABC", f8(-1), "x", i4(-1), "r4"),
	)
	cases := []struct {
		name   string
		cond   *planner.Condition
		params []merge.Param
		want   []string
	}{
		{"count > 2", cmpCond(0, ">", lit("2")), nil, []string{"r2", "r3"}},
		{"count >= 2.5 compares in numeric", cmpCond(0, ">=", lit("2.5")), nil, []string{"r2", "r3"}},
		{"count = '3' takes the column's type", cmpCond(0, "=", quoted("3")), nil, []string{"r2"}},
		{"count < 1e1 (numeric literal)", cmpCond(0, "<", lit("1e1")), nil, []string{"r1", "r2", "r3", "r4"}},
		{"count > huge literal", cmpCond(0, ">", lit("99999999999999999999")), nil, nil},
		{"sum >= 10.5 by value", cmpCond(1, ">=", lit("10.50")), nil, []string{"r1", "r4"}},
		{"sum <> 10.5 skips NULL", cmpCond(1, "<>", lit("10.5")), nil, []string{"r2", "r4"}},
		{"text = 'abc'", cmpCond(2, "=", quoted("abc")), nil, []string{"r1"}},
		{"text < 'abd' in C order", cmpCond(2, "<", quoted("abd")), nil, []string{"r1", "r4"}},
		{"float > 0 (int literal compares in float8)", cmpCond(3, ">", lit("0")), nil, []string{"r1", "r2", "r3"}},
		{"float = 'NaN'", cmpCond(3, "=", quoted("NaN")), nil, []string{"r3"}},
		{"float < 0.5 (numeric literal as float8)", cmpCond(3, "<", lit("0.5")), nil, []string{"r4"}},
		{"bpchar ignores trailing spaces", cmpCond(4, "=", quoted("x")), nil, []string{"r1", "r4"}},
		{"bpchar as text loses its spaces", cmpCond(4, "=", planner.KeyValue{Literal: "x ", Quoted: true, Cast: "text"}), nil, nil},
		{"date = '2000-01-02'", cmpCond(5, "=", quoted("2000-01-02")), nil, []string{"r2"}},
		{"date < timestamp", cmpCond(5, "<", planner.KeyValue{Literal: "2000-01-01 00:00:01", Quoted: true, Cast: "timestamp"}), nil, []string{"r1", "r4"}},
		{"AND", and(cmpCond(0, ">", lit("1")), cmpCond(1, ">", lit("10.5"))), nil, []string{"r4"}},
		{"OR with unknown", or(cmpCond(1, ">", lit("100")), cmpCond(0, "=", lit("5"))), nil, []string{"r3"}},
		{"NOT unknown stays unknown", not(cmpCond(1, ">", lit("100"))), nil, []string{"r1", "r2", "r4"}},
		{"NOT false", not(cmpCond(0, ">", lit("100"))), nil, []string{"r1", "r2", "r3", "r4"}},
		{"= NULL is never true", cmpCond(0, "=", lit("NULL")), nil, nil},
		{"binary int8 parameter", cmpCond(0, ">", param(1)), []merge.Param{{Value: i8(2), Format: 1, OID: pgtype.Int8OID}}, []string{"r2", "r3"}},
		{"text parameter of unknown type", cmpCond(1, "<", param(1)), []merge.Param{{Value: []byte("10.5")}}, []string{"r2"}},
		{"int4 parameter against numeric", cmpCond(1, ">", param(1)), []merge.Param{{Value: i4(10), Format: 1, OID: pgtype.Int4OID}}, []string{"r1", "r2", "r4"}},
		{"NULL parameter", cmpCond(0, ">", param(1)), []merge.Param{{}}, nil},
		{"cast literal", cmpCond(0, ">", planner.KeyValue{Literal: "4", Cast: "int8"}), nil, []string{"r3"}},
		{"!= spelling", cmpCond(0, "!=", lit("1")), nil, []string{"r2", "r3", "r4"}},
		{"IS NULL", &planner.Condition{Op: "IS NULL", Column: 1}, nil, []string{"r3"}},
		{"IS NOT NULL or", or(&planner.Condition{Op: "IS NOT NULL", Column: 2}, cmpCond(0, "=", lit("5"))), nil, []string{"r1", "r2", "r3", "r4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := merge.Run(&planner.Filter{Input: route(), Cond: tc.cond}, []merge.Rows{in}, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, r := range got.Values {
				labels = append(labels, string(r[6]))
			}
			if !reflect.DeepEqual(labels, tc.want) {
				t.Fatalf("got %v, want %v", labels, tc.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	f := fields(text(pgtype.Int8OID), text(pgtype.TextOID), text(pgtype.JSONOID), text(pgtype.TimestamptzOID))
	in := shard(f, row("1", "a", "{}", "2024-01-01 00:00:00+00"))
	cases := []struct {
		name   string
		cond   *planner.Condition
		params []merge.Param
		code   string
	}{
		{"bad integer literal", cmpCond(0, "=", quoted("abc")), nil, "22P02"},
		{"integer literal out of range", cmpCond(0, "=", quoted("99999999999999999999")), nil, "22003"},
		{"bad parameter", cmpCond(0, "=", param(1)), []merge.Param{{Value: []byte("x")}}, "22P02"},
		{"missing parameter", cmpCond(0, "=", param(2)), []merge.Param{{Value: []byte("1")}}, "42P02"},
		{"text against integer", cmpCond(1, "=", lit("1")), nil, "0A000"},
		{"json column", cmpCond(2, "=", quoted("{}")), nil, "0A000"},
		{"unknown cast", cmpCond(0, "=", planner.KeyValue{Literal: "1", Cast: "myschema.mytype"}), nil, "0A000"},
		{"array parameter", cmpCond(0, "=", planner.KeyValue{Param: 1, ArrayParam: true}), []merge.Param{{}}, "0A000"},
		{"operator", cmpCond(0, "~~", quoted("a%")), nil, "0A000"},
		{"timestamptz literal without a zone", cmpCond(3, ">", quoted("2024-01-01 00:00:00")), nil, "0A000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := merge.Run(&planner.Filter{Input: route(), Cond: tc.cond}, []merge.Rows{in}, tc.params)
			wantCode(t, err, tc.code)
		})
	}
	t.Run("timestamptz with a zone", func(t *testing.T) {
		got, err := merge.Run(&planner.Filter{Input: route(), Cond: cmpCond(3, "=", quoted("2024-01-01 01:00:00+01"))}, []merge.Rows{in}, nil)
		if err != nil || len(got.Values) != 1 {
			t.Fatalf("got %v, %v", texts(got), err)
		}
	})
}

func TestFilterOID(t *testing.T) {
	// oid = -1 means 4294967295: the int4 constant casts to oid.
	f := fields(bin(pgtype.OIDOID))
	in := shard(f, row(i4(-1)), row(i4(1)))
	got, err := merge.Run(&planner.Filter{Input: route(), Cond: cmpCond(0, "=", lit("-1"))}, []merge.Rows{in}, nil)
	if err != nil || len(got.Values) != 1 || string(got.Values[0][0]) != string(i4(-1)) {
		t.Fatalf("got %q, %v", texts(got), err)
	}
	got, err = merge.Run(&planner.Filter{Input: route(), Cond: cmpCond(0, ">", lit("4294967294"))}, []merge.Rows{in}, nil)
	if err != nil || len(got.Values) != 1 {
		t.Fatalf("got %q, %v", texts(got), err)
	}
}
