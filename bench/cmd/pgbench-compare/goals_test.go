package main

// Tests for checking the summary against issue 6's targets: which ratio
// each target takes, on which side of the limit it must fall, and what is
// reported when a number is missing.

import (
	"strings"
	"testing"
)

func ptr(f float64) *float64 { return &f }

// summaryCell is a measured cell.
func summaryCell(w, t string, tps float64, proxyCPU *float64) cell {
	return cell{Workload: w, Target: t, Attempts: 3, Runs: 3, TPS: tps, ProxyCPUus: proxyCPU}
}

func TestEvaluateGoals(t *testing.T) {
	cells := []cell{
		summaryCell("select-simple", targetDirect, 30000, nil),
		summaryCell("select-simple", targetPgBouncer, 20000, ptr(20)),
		summaryCell("select-simple", targetShardproxy1, 20000, ptr(20)), // exactly at both limits
		summaryCell("select-simple", targetShardproxy2, 19990, ptr(20.1)),
		summaryCell("select-simple", targetLiteralParams, 24000, ptr(18)),
		summaryCell("select-extended", targetDirect, 30000, nil),
		summaryCell("select-extended", targetPgBouncer, 10000, ptr(20)),
		summaryCell("select-extended", targetShardproxy1, 13000, ptr(10)),
		{Workload: "select-extended", Target: targetShardproxy2, Attempts: 3, Errors: []string{"boom"}}, // every run failed
		summaryCell("select-prepared", targetDirect, 40000, nil),
		{Workload: "select-prepared", Target: targetPgBouncer, NA: "too old"},
		summaryCell("select-prepared", targetShardproxy1, 30000, ptr(30)),
		summaryCell("select-prepared", targetShardproxy2, 29000, ptr(30)),
		summaryCell("select-extended", targetPipelined1, 14000, ptr(15)),
	}
	idle := []idleResult{
		{Clients: 10000, Before: memory{RSSKiB: 20000}, After: memory{RSSKiB: 20000 + 10000*32}},
		{Clients: 10000, TLS: true, Error: "too many clients"},
	}
	goals := evaluateGoals(cells, idle)
	byKey := map[string]goal{}
	for _, g := range goals {
		key := g.Name + "/" + g.Target
		if _, dup := byKey[key]; dup {
			t.Errorf("goal %s twice", key)
		}
		byKey[key] = g
	}
	for _, tc := range []struct {
		goal, target string
		want         string // goal.result()
	}{
		{"select-simple TPS >= 1.0x PgBouncer", targetShardproxy1, "1.00x met"},
		{"select-simple TPS >= 1.0x PgBouncer", targetShardproxy2, "0.99x missed"},
		{"select-extended TPS >= 1.3x PgBouncer", targetShardproxy1, "1.30x met"},
		{"select-extended TPS >= 1.3x PgBouncer", targetShardproxy2, "n/a (failed via shardproxy-2shard)"},
		{"select-prepared TPS >= 0.75x direct", targetShardproxy1, "0.75x met"},
		{"select-prepared TPS >= 0.75x direct", targetShardproxy2, "0.72x missed"},
		{"select-simple proxy CPU/txn <= PgBouncer's", targetShardproxy1, "1.00x met"},
		{"select-simple proxy CPU/txn <= PgBouncer's", targetShardproxy2, "1.01x missed"},
		{"select-extended proxy CPU/txn <= PgBouncer's", targetShardproxy1, "0.50x met"},
		{"select-extended proxy CPU/txn <= PgBouncer's", targetShardproxy2, "n/a (failed via shardproxy-2shard)"},
		{"select-prepared proxy CPU/txn <= PgBouncer's", targetShardproxy1, "n/a (pgbouncer cannot run it)"},
		{"select-simple TPS >= 1.0x PgBouncer", targetLiteralParams, "1.20x met"},
		{"select-simple proxy CPU/txn <= PgBouncer's", targetLiteralParams, "0.90x met"},
		{"select-extended TPS >= 1.3x PgBouncer", targetPipelined1, "1.40x met"},
		{"select-extended proxy CPU/txn <= PgBouncer's", targetPipelined1, "0.75x met"},
		{"select-simple TPS >= 1.0x PgBouncer", targetPipelined2, "n/a (not run)"},
		{"idle client memory (plain TCP, VmRSS) <= 32 KiB", targetShardproxy1, "32.00 KiB met"},
		{"idle client memory (TLS, VmRSS) <= 32 KiB", targetShardproxy1, "n/a (failed)"},
	} {
		t.Run(tc.goal+"/"+tc.target, func(t *testing.T) {
			g, ok := byKey[tc.goal+"/"+tc.target]
			if !ok {
				t.Fatalf("no such goal; have %v", keys(byKey))
			}
			if got := g.result(); got != tc.want {
				t.Errorf("result %q, want %q", got, tc.want)
			}
		})
	}
	// tpcb was not run: no goal for it.
	if _, ok := byKey["tpcb TPS >= 1.0x PgBouncer/"+targetShardproxy1]; ok {
		t.Error("a goal for a workload that was not run")
	}
	// Per target: 3 TPS goals and 3 CPU goals for the 3 workloads run
	// (litparams: select-simple only), the pipelined targets' 3 TPS goals
	// each (their CPU goals come from cells: one here), and the 2 idle
	// goals.
	if n := len(goals); n != 2*3+2*3+2+2*3+1+2 {
		t.Errorf("%d goals", n)
	}
}

func TestGoalResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		value  *float64
		limit  float64
		atMost bool
		want   string
	}{
		{"above a minimum", ptr(1.304), 1.3, false, "1.30x met"},
		{"just under a minimum", ptr(1.2999), 1.3, false, "1.29x missed"},
		{"just over a maximum", ptr(1.001), 1, true, "1.01x missed"},
		{"under a maximum", ptr(0.4), 1, true, "0.40x met"},
		{"well under a minimum", ptr(0.666), 1, false, "0.67x missed"},
		{"no value", nil, 1, false, "n/a (not run)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGoal("g", targetShardproxy1, tc.value, tc.limit, tc.atMost, "x", "not run")
			if got := g.result(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func keys(m map[string]goal) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFactor(t *testing.T) {
	for in, want := range map[float64]string{1: "1.0", 1.3: "1.3", 0.75: "0.75", 2: "2.0"} {
		if got := factor(in); got != want {
			t.Errorf("factor(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	rep := report{
		Versions: map[string]string{},
		Split:    []shardRows{{Shard: "s1", Accounts: 5, Tellers: 5, Branches: 5}, {Shard: "s2", Accounts: 5, Tellers: 5, Branches: 5}},
		Cells: []cell{
			summaryCell("tpcb", targetDirect, 3000, nil),
			summaryCell("tpcb", targetPgBouncer, 2000, ptr(150)),
			summaryCell("tpcb", targetShardproxy1, 2100, ptr(140)),
			summaryCell("tpcb", targetShardproxy2, 600, ptr(900)),
		},
		Idle: []idleResult{{Clients: 100, Before: memory{RSSKiB: 1000}, After: memory{RSSKiB: 3000}, Settled: true}},
	}
	rep.Goals = evaluateGoals(rep.Cells, rep.Idle)
	var b strings.Builder
	rep.writeMarkdown(&b)
	md := b.String()
	for _, want := range []string{
		"| tpcb | shardproxy-2shard[^2pc] | 600 |",
		"[^2pc]: TPC-B via shardproxy-2shard",
		"so 75% of the transactions",
		"| tpcb TPS >= 1.0x PgBouncer | 1.05x met | 0.30x missed |",
		"| tpcb proxy CPU/txn <= PgBouncer's | 0.93x met | 6.00x missed |",
		"| idle client memory (plain TCP, VmRSS) <= 32 KiB | 20.00 KiB met | - |",
		"3 of 5 measured targets met.",
		"| plain TCP | 100 | 0.0 | 1000 | 3000 | 20.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}
