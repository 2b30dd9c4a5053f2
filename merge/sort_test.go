package merge_test

// MergeSort and Sort: order by value per type, NULL placement, stability
// (ties keep shard order), and refusals.

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

func TestMergeSort(t *testing.T) {
	asc := func(c int) planner.SortKey { return planner.SortKey{Column: c} }
	desc := func(c int) planner.SortKey { return planner.SortKey{Column: c, Desc: true, NullsFirst: true} }
	intText := fields(text(pgtype.Int4OID), text(pgtype.TextOID))
	numText := fields(text(pgtype.NumericOID), text(pgtype.TextOID))
	cases := []struct {
		name   string
		keys   []planner.SortKey
		shards []merge.Rows
		want   []string // column 1 of the output, in order
	}{
		{
			name: "integers in text, ties keep shard order",
			keys: []planner.SortKey{asc(0)},
			shards: []merge.Rows{
				shard(intText, row("1", "a1"), row("5", "a5"), row("10", "a10")),
				shard(intText, row("2", "b2"), row("5", "b5"), row("9", "b9")),
				shard(intText, row("-3", "c-3"), row("5", "c5")),
			},
			want: []string{"c-3", "a1", "b2", "a5", "b5", "c5", "b9", "a10"},
		},
		{
			name: "numeric by value, not by text",
			keys: []planner.SortKey{asc(0)},
			shards: []merge.Rows{
				shard(numText, row("9.5", "a9.5"), row("10", "a10"), row("NaN", "aNaN")),
				shard(numText, row("-Infinity", "b-inf"), row("1.00", "b1.00"), row("100", "b100"), row("Infinity", "binf")),
				shard(numText, row("1.0", "c1.0"), row("9.50", "c9.50")),
			},
			want: []string{"b-inf", "b1.00", "c1.0", "a9.5", "c9.50", "a10", "b100", "binf", "aNaN"},
		},
		{
			name: "desc nulls first",
			keys: []planner.SortKey{desc(0)},
			shards: []merge.Rows{
				shard(intText, row(nil, "a-null"), row("7", "a7"), row("1", "a1")),
				shard(intText, row(nil, "b-null"), row("8", "b8"), row("1", "b1"), row("0", "b0")),
			},
			want: []string{"a-null", "b-null", "b8", "a7", "a1", "b1", "b0"},
		},
		{
			name: "asc nulls first, desc nulls last",
			keys: []planner.SortKey{{Column: 0, NullsFirst: true}},
			shards: []merge.Rows{
				shard(intText, row(nil, "a-null"), row("2", "a2")),
				shard(intText, row(nil, "b-null"), row("1", "b1")),
			},
			want: []string{"a-null", "b-null", "b1", "a2"},
		},
		{
			name: "two keys",
			keys: []planner.SortKey{asc(0), {Column: 1, Desc: true}},
			shards: []merge.Rows{
				shard(intText, row("1", "x"), row("2", "z")),
				shard(intText, row("1", "y"), row("2", "a")),
			},
			want: []string{"y", "x", "z", "a"},
		},
		{
			name: "text in C order",
			keys: []planner.SortKey{{Column: 1}},
			shards: []merge.Rows{
				shard(intText, row("1", "B"), row("1", "a"), row("1", "é")),
				shard(intText, row("1", "Z"), row("1", "ab"), row("1", "b")),
			},
			want: []string{"B", "Z", "a", "ab", "b", "é"},
		},
		{
			name:   "one shard",
			keys:   []planner.SortKey{asc(0)},
			shards: []merge.Rows{shard(intText, row("1", "a"), row("2", "b"))},
			want:   []string{"a", "b"},
		},
		{
			name:   "empty shards",
			keys:   []planner.SortKey{asc(0)},
			shards: []merge.Rows{shard(intText), shard(intText, row("1", "b")), shard(intText)},
			want:   []string{"b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := merge.Run(&planner.MergeSort{Input: route(), Keys: tc.keys}, tc.shards, nil)
			if err != nil {
				t.Fatal(err)
			}
			var col1 []string
			for _, r := range texts(got) {
				col1 = append(col1, r[1])
			}
			if !reflect.DeepEqual(col1, tc.want) {
				t.Fatalf("got %v\nwant %v", col1, tc.want)
			}
		})
	}
}

// TestSortTypes sorts one column of each type and checks the order by the
// second column (the expected position).
func TestSortTypes(t *testing.T) {
	cases := []struct {
		name string
		c    col
		vals []any  // in expected order
		want string // the order of the reversed input when some values are equal
	}{
		{"float8 binary", bin(pgtype.Float8OID), []any{f8(inf(-1)), f8(-1.5), f8(negZero()), f8(0), f8(1e-300), f8(2), f8(inf(1)), f8(nan())}, "ABDCEFGH"},
		{"float8 text", text(pgtype.Float8OID), []any{"-Infinity", "-1e+20", "-0", "0", "1.5e-07", "0.1", "Infinity", "NaN"}, "ABDCEFGH"},
		{"float4 binary", bin(pgtype.Float4OID), []any{f4(-2), f4(0.1), f4(3.5)}, ""},
		{"int8 binary", bin(pgtype.Int8OID), []any{i8(-1 << 63), i8(-1), i8(0), i8(1<<63 - 1)}, ""},
		{"numeric binary", bin(pgtype.NumericOID), nil, ""}, // filled below
		{"bool", text(pgtype.BoolOID), []any{"f", "t"}, ""},
		{"bpchar ignores trailing spaces", text(pgtype.BPCharOID), []any{"a", "a  ", "a ", "ab"}, "CBAD"},
		{"bytea hex", text(pgtype.ByteaOID), []any{`\x`, `\x00`, `\x0001`, `\x7f`, `\xff`}, ""},
		{"uuid", text(pgtype.UUIDOID), []any{"00000000-0000-0000-0000-000000000000", "0fffffff-ffff-ffff-ffff-ffffffffffff", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ffffffff-0000-0000-0000-000000000000"}, ""},
		{"date", text(pgtype.DateOID), []any{"-infinity", "4713-01-01 BC", "0001-12-31 BC", "0001-01-01", "1999-12-31", "2000-01-01", "2024-02-29", "10000-01-01", "infinity"}, ""},
		{"time", text(pgtype.TimeOID), []any{"00:00:00", "00:00:00.000001", "12:30:00", "23:59:59.999999", "24:00:00"}, ""},
		{"timestamp", text(pgtype.TimestampOID), []any{"-infinity", "0001-01-01 00:00:00 BC", "1999-12-31 23:59:59.5", "2000-01-01 00:00:00", "2024-01-01 00:00:00.000001", "infinity"}, ""},
		{"timestamptz offsets", text(pgtype.TimestamptzOID), []any{"2024-01-01 10:00:00+05", "2024-01-01 05:30:00+00", "2024-01-01 06:00:00+00:29", "2024-01-01 01:00:00-05"}, ""},
		{"interval text", text(pgtype.IntervalOID), []any{"-1 years", "-1 days +02:00:00", "00:00:00", "00:00:00.5", "23:59:59", "1 mon -29 days", "1 day 00:00:01", "1 mon", "1 year"}, ""},
		{"interval binary", bin(pgtype.IntervalOID), []any{ivl(-1, 0, 0), ivl(0, 0, 0), ivl(usecDay-1, 0, 0), ivl(0, 1, 0), ivl(0, 29, 0), ivl(0, 0, 1), ivl(0, 31, 0)}, ""},
		{"oid", bin(pgtype.OIDOID), []any{i4(1), i4(2147483647), i4(-1)}, ""},
		{"char", text(pgtype.QCharOID), []any{"", "A", "a", `\377`}, ""},
	}
	cases[4].vals = []any{num(t, "-Infinity"), num(t, "-1e10"), num(t, "-0.0001"), num(t, "0"), num(t, "0.00001"), num(t, "1"), num(t, "1.5"), num(t, "12345678901234567890.5"), num(t, "Infinity"), num(t, "NaN")}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Reverse the input so sorting has work to do, then expect the
			// listed order; rows whose values are equal keep their input
			// order, hence the stable check by value position.
			f := fields(tc.c, text(pgtype.TextOID))
			var rows [][]any
			for i := len(tc.vals) - 1; i >= 0; i-- {
				rows = append(rows, row(tc.vals[i], string(rune('A'+i))))
			}
			got, err := merge.Run(&planner.Sort{Input: route(), Keys: []planner.SortKey{{Column: 0}}}, []merge.Rows{shard(f, rows...)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var order string
			for _, r := range got.Values {
				order += string(r[1])
			}
			want := ""
			for i := range tc.vals {
				want += string(rune('A' + i))
			}
			if tc.want != "" {
				want = tc.want
			}
			if order != want {
				t.Fatalf("order %s, want %s", order, want)
			}
		})
	}
}

const usecDay = 86400000000

func TestSortEqualIntervals(t *testing.T) {
	// 1 mon, 30 days and 720:00:00 are equal intervals; stable order.
	f := fields(bin(pgtype.IntervalOID), text(pgtype.TextOID))
	in := shard(f, row(ivl(0, 30, 0), "days"), row(ivl(0, 0, 1), "mon"), row(ivl(30*usecDay, 0, 0), "hours"), row(ivl(0, 29, 0), "less"))
	got, err := merge.Run(&planner.Sort{Input: route(), Keys: []planner.SortKey{{Column: 0}}}, []merge.Rows{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range texts(got) {
		order = append(order, r[1])
	}
	if want := []string{"less", "days", "mon", "hours"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("got %v, want %v", order, want)
	}
}

func TestSortRefusals(t *testing.T) {
	cases := []struct {
		name   string
		plan   planner.Primitive
		shards []merge.Rows
		code   string
	}{
		{
			name:   "json is not comparable",
			plan:   &planner.MergeSort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{shard(fields(text(pgtype.JSONOID)), row(`{}`))},
			code:   "0A000",
		},
		{
			name: "a shard out of order (another collation)",
			plan: &planner.MergeSort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{
				shard(fields(text(pgtype.TextOID)), row("a"), row("B")),
				shard(fields(text(pgtype.TextOID)), row("c")),
			},
			code: "0A000",
		},
		{
			name:   "dates in another DateStyle",
			plan:   &planner.Sort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{shard(fields(text(pgtype.DateOID)), row("01/02/2024"), row("2024-01-01"))},
			code:   "0A000",
		},
		{
			name:   "money in text",
			plan:   &planner.Sort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{shard(fields(text(790)), row("$1.00"))},
			code:   "0A000",
		},
		{
			name:   "key column out of range",
			plan:   &planner.Sort{Input: route(), Keys: []planner.SortKey{{Column: 3}}},
			shards: []merge.Rows{shard(fields(text(pgtype.Int4OID)), row("1"))},
			code:   "XX000",
		},
		{
			name: "shards disagree on the row description",
			plan: &planner.MergeSort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{
				shard(fields(text(pgtype.Int4OID)), row("1")),
				shard(fields(bin(pgtype.Int4OID)), row(i4(2))),
			},
			code: "XX000",
		},
		{
			name:   "malformed binary from a shard",
			plan:   &planner.MergeSort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
			shards: []merge.Rows{shard(fields(bin(pgtype.Int8OID)), row(i4(1)))},
			code:   "22P03",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := merge.Run(tc.plan, tc.shards, nil)
			wantCode(t, err, tc.code)
		})
	}
}
