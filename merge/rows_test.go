package merge_test

// Limit, Distinct, Project, the tree walk and the command tags.

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

func TestLimit(t *testing.T) {
	f := fields(text(pgtype.Int4OID))
	shards := []merge.Rows{shard(f, row("1"), row("3"), row("5")), shard(f, row("2"), row("4"))}
	c := func(v int64) *planner.Count { return &planner.Count{Value: v} }
	p := func(n int) *planner.Count { return &planner.Count{Param: n} }
	cases := []struct {
		name   string
		count  *planner.Count
		offset *planner.Count
		params []merge.Param
		want   []string
		code   string
	}{
		{"limit 2", c(2), nil, nil, []string{"1", "2"}, ""},
		{"limit 0", c(0), nil, nil, nil, ""},
		{"limit all offset 3", nil, c(3), nil, []string{"4", "5"}, ""},
		{"offset past the end", c(10), c(10), nil, nil, ""},
		{"limit 2 offset 1", c(2), c(1), nil, []string{"2", "3"}, ""},
		{"text parameter", p(1), nil, []merge.Param{{Value: []byte(" 3 ")}}, []string{"1", "2", "3"}, ""},
		{"binary int8 parameter", p(1), p(2), []merge.Param{{Value: i8(1), Format: 1, OID: pgtype.Int8OID}, {Value: i8(4), Format: 1}}, []string{"5"}, ""},
		{"binary int4 parameter", p(1), nil, []merge.Param{{Value: i4(1), Format: 1, OID: pgtype.Int4OID}}, []string{"1"}, ""},
		{"NULL limit is all", p(1), nil, []merge.Param{{}}, []string{"1", "2", "3", "4", "5"}, ""},
		{"NULL offset is 0", c(1), p(1), []merge.Param{{}}, []string{"1"}, ""},
		{"negative limit", c(-1), nil, nil, nil, "2201W"},
		{"negative offset", nil, c(-1), nil, nil, "2201X"},
		{"negative offset reported before a negative limit", c(-1), c(-1), nil, nil, "2201X"},
		{"negative parameter", p(1), nil, []merge.Param{{Value: []byte("-5")}}, nil, "2201W"},
		{"bad parameter", p(1), nil, []merge.Param{{Value: []byte("five")}}, nil, "22P02"},
		{"out of range parameter", p(1), nil, []merge.Param{{Value: []byte("9223372036854775808")}}, nil, "22003"},
		{"short binary parameter", p(1), nil, []merge.Param{{Value: i4(1), Format: 1}}, nil, "22P03"},
		{"missing parameter", p(3), nil, nil, nil, "42P02"},
		{"numeric parameter", p(1), nil, []merge.Param{{Value: []byte("1"), OID: pgtype.NumericOID}}, nil, "0A000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := &planner.Limit{
				Input: &planner.MergeSort{Input: route(), Keys: []planner.SortKey{{Column: 0}}},
				Count: tc.count, Offset: tc.offset,
			}
			got, err := merge.Run(plan, shards, tc.params)
			if tc.code != "" {
				pe := wantCode(t, err, tc.code)
				if tc.code == "2201W" && pe.Message != "LIMIT must not be negative" {
					t.Fatalf("message %q", pe.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vs []string
			for _, r := range got.Values {
				vs = append(vs, string(r[0]))
			}
			if !reflect.DeepEqual(vs, tc.want) {
				t.Fatalf("got %v, want %v", vs, tc.want)
			}
		})
	}
}

func TestDistinct(t *testing.T) {
	f := fields(text(pgtype.NumericOID), bin(pgtype.Float8OID), text(pgtype.TextOID))
	shards := []merge.Rows{
		shard(f, row("1.0", f8(0), "a"), row(nil, f8(1), "b"), row("2", f8(nan()), "c")),
		shard(f, row("1.00", f8(negZero()), "d"), row(nil, f8(1), "e"), row("2", f8(nan()), "f"), row("1", f8(1), "g")),
	}
	got, err := merge.Run(&planner.Distinct{Input: route(), Columns: []int{0, 1}}, shards, nil)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, r := range got.Values {
		labels = append(labels, string(r[2]))
	}
	if want := []string{"a", "b", "c", "g"}; !reflect.DeepEqual(labels, want) {
		t.Fatalf("got %v, want %v", labels, want)
	}
	_, err = merge.Run(&planner.Distinct{Input: route(), Columns: []int{0}}, []merge.Rows{shard(fields(text(pgtype.JSONOID)), row("{}"))}, nil)
	wantCode(t, err, "0A000")
}

func TestProject(t *testing.T) {
	f := fields(text(pgtype.TextOID), text(pgtype.Int4OID), bin(pgtype.Int8OID))
	got, err := merge.Run(&planner.Project{Input: route(), Columns: []int{1, 0}}, []merge.Rows{shard(f, row("a", "1", i8(1)))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Fields) != 2 || got.Fields[0].DataTypeOID != pgtype.Int4OID || got.Fields[1].DataTypeOID != pgtype.TextOID {
		t.Fatalf("fields %+v", got.Fields)
	}
	if want := [][]string{{"1", "a"}}; !reflect.DeepEqual(texts(got), want) {
		t.Fatalf("got %q", texts(got))
	}
	_, err = merge.Run(&planner.Project{Input: route(), Columns: []int{3}}, []merge.Rows{shard(f)}, nil)
	wantCode(t, err, "XX000")
}

// TestPipeline runs the shapes the planner builds, end to end.
func TestPipeline(t *testing.T) {
	t.Run("merged aggregate: Aggregate, Filter, Sort, Limit, Project", func(t *testing.T) {
		// SELECT g, count(*), avg(x) FROM t GROUP BY g HAVING count(*) > 1
		// ORDER BY avg(x) DESC LIMIT 2; hidden: avg's count, the key in binary.
		f := fields(text(pgtype.TextOID), text(pgtype.Int8OID), text(pgtype.Int8OID), bin(pgtype.Int8OID), bin(pgtype.TextOID))
		shards := []merge.Rows{
			shard(f, row("a", "2", "3", i8(2), "a"), row("b", "1", "10", i8(1), "b"), row("c", "1", "1", i8(1), "c")),
			shard(f, row("b", "1", "20", i8(1), "b"), row("c", "2", "4", i8(2), "c"), row("d", "1", "5", i8(1), "d")),
		}
		plan := &planner.Project{Columns: []int{0, 1, 2}, Input: &planner.Limit{Count: &planner.Count{Value: 2},
			Input: &planner.Sort{Keys: []planner.SortKey{{Column: 2, Desc: true, NullsFirst: true}},
				Input: &planner.Filter{Cond: cmpCond(1, ">", lit("1")),
					Input: agg(true, ac(0, planner.AggAny), ac(1, planner.AggCount), avgOf(2, 3), ac(3, planner.AggSum), ac(4, planner.AggGroupKey))}}}}
		got, err := merge.Run(plan, shards, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"b", "2", "15.0000000000000000"}, {"c", "3", "1.6666666666666667"}}
		if !reflect.DeepEqual(texts(got), want) {
			t.Fatalf("got %q, want %q", texts(got), want)
		}
		if len(got.Fields) != 3 || got.Fields[2].DataTypeOID != pgtype.NumericOID {
			t.Fatalf("fields %+v", got.Fields)
		}
	})
	t.Run("scatter read: MergeSort, Distinct, Limit, Project", func(t *testing.T) {
		f := fields(text(pgtype.Int4OID), bin(pgtype.Int4OID))
		shards := []merge.Rows{
			shard(f, row("1", i4(1)), row("2", i4(2)), row("2", i4(2))),
			shard(f, row("1", i4(1)), row("3", i4(3))),
		}
		plan := &planner.Project{Columns: []int{0}, Input: &planner.Limit{Count: &planner.Count{Value: 2}, Offset: &planner.Count{Value: 1},
			Input: &planner.Distinct{Columns: []int{1}, Input: &planner.MergeSort{Keys: []planner.SortKey{{Column: 1}}, Input: route()}}}}
		got, err := merge.Run(plan, shards, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]string{{"2"}, {"3"}}; !reflect.DeepEqual(texts(got), want) {
			t.Fatalf("got %q", texts(got))
		}
	})
	t.Run("a bare route concatenates in shard order", func(t *testing.T) {
		f := fields(text(pgtype.Int4OID))
		got, err := merge.Run(route(), []merge.Rows{shard(f, row("2")), shard(f, row("1"))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]string{{"2"}, {"1"}}; !reflect.DeepEqual(texts(got), want) {
			t.Fatalf("got %q", texts(got))
		}
	})
	t.Run("plans merge cannot run", func(t *testing.T) {
		_, err := merge.Run(&planner.Limit{Input: &planner.Refuse{}}, nil, nil)
		wantCode(t, err, "XX000") // no route
		_, err = merge.Run(&planner.Limit{Input: &planner.InsertSplit{}}, nil, nil)
		wantCode(t, err, "XX000")
	})
}

func TestCommandTag(t *testing.T) {
	cases := []struct {
		cmd  string
		n    int64
		want string
	}{
		{"SELECT", 3, "SELECT 3"},
		{"INSERT", 2, "INSERT 0 2"},
		{"insert", 0, "INSERT 0 0"},
		{"UPDATE", 7, "UPDATE 7"},
		{"DELETE", 1, "DELETE 1"},
		{"COPY", 10, "COPY 10"},
		{"MERGE", 4, "MERGE 4"},
		{"FETCH", 5, "FETCH 5"},
		{"MOVE", 6, "MOVE 6"},
		{"CREATE TABLE", 0, "CREATE TABLE"},
	}
	for _, tc := range cases {
		if got := merge.CommandTag(tc.cmd, tc.n); got != tc.want {
			t.Errorf("CommandTag(%q, %d) = %q, want %q", tc.cmd, tc.n, got, tc.want)
		}
	}
}

func TestSumTags(t *testing.T) {
	cases := []struct {
		tags []string
		want string
		code string
	}{
		{[]string{"UPDATE 3", "UPDATE 0", "UPDATE 4"}, "UPDATE 7", ""},
		{[]string{"INSERT 0 1", "INSERT 0 2"}, "INSERT 0 3", ""},
		{[]string{"DELETE 5"}, "DELETE 5", ""},
		{[]string{"SELECT 1", "SELECT 2"}, "SELECT 3", ""},
		{[]string{"COPY 18446744073709551615", "COPY 0"}, "COPY 18446744073709551615", ""},
		{[]string{"CREATE TABLE", "CREATE TABLE"}, "CREATE TABLE", ""},
		{[]string{"UPDATE 1", "DELETE 1"}, "", "XX000"},
		{[]string{"CREATE TABLE", "CREATE INDEX"}, "", "XX000"},
		{[]string{"UPDATE x"}, "", "XX000"},
		{[]string{"COPY 18446744073709551615", "COPY 1"}, "", "XX000"},
		{nil, "", "XX000"},
	}
	for _, tc := range cases {
		got, err := merge.SumTags(tc.tags)
		if tc.code != "" {
			wantCode(t, err, tc.code)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SumTags(%q) = %q, %v; want %q", tc.tags, got, err, tc.want)
		}
	}
}
