package mergecheck_test

// Merged ORDER BY, GROUP BY/HAVING and DISTINCT over a table of many
// types, against one server: each "shard" is the rows with id % 3 = k,
// and the merged result must equal the server's query over the whole
// table, byte for byte, in text and in binary.

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

const shardCount = 3

// makeTable creates mc with random values of every type merge compares,
// NULLs, duplicates by value (1.0 and 1.00) and special values.
func makeTable(t *testing.T, ctx context.Context, conn *pgx.Conn) {
	t.Helper()
	sql := `
drop table if exists mc;
create table mc (id int primary key, g int, i2 int2, i8 int8, n numeric, f float8, r real, t text,
	b char(4), d date, ts timestamp, tz timestamptz, tm time, iv interval, u uuid, by bytea, bo bool, o oid);
select setseed(0.25);
insert into mc
select id,
	case when random() < 0.05 then null else (random() * 6)::int end,
	case when random() < 0.1 then null else ((random() - 0.5) * 65535)::int2 end,
	case when random() < 0.1 then null else ((random() - 0.5) * 9.2e18)::int8 end,
	case when random() < 0.1 then null
		when id % 23 = 0 then 'NaN' when id % 29 = 0 then '-Infinity'
		when id % 7 = 0 then '1.0' when id % 11 = 0 then '1.00'
		else round(((random() - 0.5) * 10 ^ (random() * 12))::numeric, (random() * 6)::int) end,
	case when random() < 0.1 then null when id % 31 = 0 then 'NaN' when id % 37 = 0 then '-Infinity'
		when id % 41 = 0 then '-0' else (random() - 0.5) * 10 ^ (random() * 40 - 20) end,
	case when random() < 0.1 then null else ((random() - 0.5) * 10 ^ (random() * 10 - 5))::real end,
	case when random() < 0.1 then null
		else substr(md5(random()::text), 1, (random() * 6)::int) || chr(65 + (random() * 60)::int) || chr(192 + (random() * 200)::int) end,
	case when random() < 0.1 then null else substr('aAbB ', 1 + (random() * 4)::int, (random() * 3)::int) end,
	case when random() < 0.1 then null when id % 43 = 0 then 'infinity' when id % 47 = 0 then '0044-03-15 BC'
		else date '2000-01-01' + ((random() - 0.5) * 200000)::int end,
	case when random() < 0.1 then null else timestamp '2000-01-01' + (random() - 0.5) * interval '300000 days' end,
	case when random() < 0.1 then null else timestamptz '2000-01-01 00:00:00+00' + (random() - 0.5) * interval '100000 days' end,
	case when random() < 0.1 then null else time '00:00' + random() * interval '24 hours' end,
	case when random() < 0.1 then null
		else make_interval(months => ((random() - 0.5) * 40)::int, days => ((random() - 0.5) * 100)::int,
			secs => ((random() - 0.5) * 1e7)::numeric(12, 3)::float8) end,
	case when random() < 0.1 then null else md5(random()::text)::uuid end,
	case when random() < 0.1 then null else decode(substr(md5(random()::text), 1, 2 * (random() * 4)::int), 'hex') end,
	case when random() < 0.1 then null else random() < 0.5 end,
	case when random() < 0.1 then null else (random() * 4e9)::int8::oid end
from generate_series(1, 600) id;`
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	// Text output of timestamptz depends on the zone: one with half-hour
	// offsets and daylight saving time exercises the offsets.
	if _, err := conn.Exec(ctx, `set timezone = 'America/St_Johns'`); err != nil {
		t.Fatal(err)
	}
}

// shardQueries runs sql (with %s for the shard's condition) on every
// shard's part of the table.
func shardQueries(t *testing.T, ctx context.Context, conn *pgx.Conn, formats []int16, sql string) []merge.Rows {
	t.Helper()
	out := make([]merge.Rows, shardCount)
	for k := range shardCount {
		out[k] = query(t, ctx, conn, formats, fmt.Sprintf(sql, fmt.Sprintf("id %% %d = %d", shardCount, k)))
	}
	return out
}

func TestMergeSortTypes(t *testing.T) {
	ctx, conn := connect(t)
	makeTable(t, ctx, conn)
	cols := []string{"g", "i2", "i8", "n", "f", "r", "t", "b", "d", "ts", "tz", "tm", "iv", "u", "by", "bo", "o"}
	dirs := []struct {
		sql string
		key planner.SortKey
	}{
		{"", planner.SortKey{Column: 0}},
		{"desc", planner.SortKey{Column: 0, Desc: true, NullsFirst: true}},
		{"nulls first", planner.SortKey{Column: 0, NullsFirst: true}},
		{"desc nulls last", planner.SortKey{Column: 0, Desc: true}},
	}
	for _, c := range cols {
		for _, format := range []int16{0, 1} {
			for _, dir := range dirs {
				name := fmt.Sprintf("%s %s format %d", c, dir.sql, format)
				t.Run(name, func(t *testing.T) {
					formats := []int16{format, 0}
					order := fmt.Sprintf("order by %s %s, id", c, dir.sql)
					shards := shardQueries(t, ctx, conn, formats, "select "+c+", id from mc where %s "+order)
					want := query(t, ctx, conn, formats, "select "+c+", id from mc "+order)
					plan := &planner.MergeSort{Input: route(), Keys: []planner.SortKey{dir.key, {Column: 1}}}
					got, err := merge.Run(plan, shards, nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := sameRows(got, want); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

func TestGroupBy(t *testing.T) {
	ctx, conn := connect(t)
	makeTable(t, ctx, conn)
	for _, format := range []int16{0, 1} {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) {
			// Visible: g, count(*), sum(n), avg(n), max(f), max(t),
			// bool_and(bo), bool_or(bo), sum(i8), avg(i2), min(d), sum(iv)
			// (binary only); hidden: the counts behind the avgs, g in binary.
			ivSum := "null::interval"
			if format == 1 {
				ivSum = "sum(iv)"
			}
			formats := []int16{format, format, format, format, format, format, format, format, format, format, format, format, 1, 1, 1}
			part := "select g, count(*), sum(n), sum(n), max(f), max(t), bool_and(bo), bool_or(bo), sum(i8), sum(i2), min(d), " + ivSum +
				", count(n), count(i2), g from mc where %s group by g"
			whole := "select g, count(*), sum(n), avg(n), max(f), max(t), bool_and(bo), bool_or(bo), sum(i8), avg(i2), min(d), " + ivSum +
				" from mc group by g having count(*) > 90 or not g >= 3 order by g desc nulls first"
			shards := shardQueries(t, ctx, conn, formats, part)
			cols := []planner.AggregateColumn{
				ac(0, planner.AggAny), ac(1, planner.AggCount), ac(2, planner.AggSum),
				{Column: 3, Func: planner.AggAvg, CountColumn: 12, Name: "avg"},
				ac(4, planner.AggMax), ac(5, planner.AggMax), ac(6, planner.AggBoolAnd), ac(7, planner.AggBoolOr),
				ac(8, planner.AggSum), {Column: 9, Func: planner.AggAvg, CountColumn: 13, Name: "avg"},
				ac(10, planner.AggMin), ac(11, planner.AggSum), ac(12, planner.AggSum), ac(13, planner.AggSum), ac(14, planner.AggGroupKey),
			}
			if format == 0 {
				cols[11] = ac(11, planner.AggAny) // a NULL interval in text: no sum in text
			}
			plan := &planner.Project{Columns: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
				Input: &planner.Sort{Keys: []planner.SortKey{{Column: 14, Desc: true, NullsFirst: true}},
					Input: &planner.Filter{Cond: &planner.Condition{Op: "OR", Args: []*planner.Condition{
						{Op: ">", Column: 1, Value: planner.KeyValue{Literal: "90"}},
						{Op: "NOT", Args: []*planner.Condition{{Op: ">=", Column: 14, Value: planner.KeyValue{Literal: "3"}}}},
					}},
						Input: &planner.Aggregate{Grouped: true, Columns: cols, Input: route()}}}}
			got, err := merge.Run(plan, shards, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := query(t, ctx, conn, formats[:12], whole)
			if err := sameRows(got, want); err != nil {
				t.Fatal(err)
			}
			if len(got.Values) < 3 {
				t.Fatalf("only %d groups: the HAVING check needs more", len(got.Values))
			}
		})
	}
}

func TestDistinct(t *testing.T) {
	ctx, conn := connect(t)
	makeTable(t, ctx, conn)
	for _, c := range []string{"n", "f", "b", "iv", "tz"} {
		for _, format := range []int16{0, 1} {
			t.Run(fmt.Sprintf("%s format %d", c, format), func(t *testing.T) {
				shards := shardQueries(t, ctx, conn, []int16{format}, "select distinct "+c+" from mc where %s")
				got, err := merge.Run(&planner.Distinct{Input: route(), Columns: []int{0}}, shards, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := query(t, ctx, conn, []int16{format}, "select distinct "+c+" from mc")
				if len(got.Values) != len(want.Values) {
					t.Fatalf("%d distinct values, server %d", len(got.Values), len(want.Values))
				}
			})
		}
	}
}
