package main

// Tests for checking how pgbench -i through shardproxy-2shard split the
// rows, and for the share of TPC-B transactions that span both shards.

import (
	"math"
	"strings"
	"testing"
)

func TestCheckSplit(t *testing.T) {
	good := []shardRows{
		{Shard: "s1", Accounts: 500321, Branches: 6, Tellers: 47},
		{Shard: "s2", Accounts: 499679, Branches: 4, Tellers: 53},
	}
	for _, tc := range []struct {
		name   string
		change func(rows []shardRows)
		want   string // in the error; "" for none
	}{
		{"adds up", func([]shardRows) {}, ""},
		{"an account lost", func(r []shardRows) { r[0].Accounts-- }, "999999 rows of pgbench_accounts"},
		{"a branch on both", func(r []shardRows) { r[1].Branches++ }, "11 rows of pgbench_branches"},
		{"history left", func(r []shardRows) { r[1].History = 3 }, "3 rows of pgbench_history"},
		{"all on one shard", func(r []shardRows) { r[0].Accounts, r[1].Accounts = 1000000, 0 }, "shard s2 holds no accounts"},
		{"prepared left", func(r []shardRows) { r[0].Prepared = 1 }, "shard s1 has 1 prepared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := append([]shardRows(nil), good...)
			tc.change(rows)
			err := checkSplit(rows, 10)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestMultiShardShare(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []shardRows
		want float64
	}{
		{"one shard", []shardRows{{Accounts: 10, Tellers: 10, Branches: 1}}, 0},
		{"even halves", []shardRows{{Accounts: 5, Tellers: 5, Branches: 5}, {Accounts: 5, Tellers: 5, Branches: 5}}, 0.75},
		// 1 - (0.5*0.4*0.6 + 0.5*0.6*0.4) = 0.76
		{"uneven branches and tellers", []shardRows{{Accounts: 50, Tellers: 40, Branches: 6}, {Accounts: 50, Tellers: 60, Branches: 4}}, 0.76},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := multiShardShare(tc.rows); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
