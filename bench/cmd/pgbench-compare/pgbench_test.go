package main

// Tests for reading pgbench's report and for the summary arithmetic, since a
// misread number would silently skew every benchmark.

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// pg15Report is pgbench 15's report for a select-only run.
const pg15Report = `transaction type: <builtin: select only>
scaling factor: 10
query mode: extended
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 45678
number of failed transactions: 2 (0.004%)
latency average = 1.051 ms
initial connection time = 12.345 ms
tps = 15226.123456 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	stderr := "pgbench: error: client 3 aborted in command 1 (SQL) of script 0; ERROR:  boom\n" +
		"pgbench: error: client 7 aborted in command 1 (SQL) of script 0; ERROR:  boom\n" +
		"pgbench: error: Run was aborted; the above results are incomplete.\n"
	r, err := parsePgbench(pg15Report, stderr)
	if err != nil {
		t.Fatal(err)
	}
	if r.TPS != 15226.123456 || r.LatencyMs != 1.051 || r.Transactions != 45678 || r.Failed != 2 {
		t.Errorf("got %+v", r)
	}
	want := []string{
		"pgbench: error: client N aborted in command 1 (SQL) of script 0; ERROR:  boom",
		"pgbench: error: Run was aborted; the above results are incomplete.",
	}
	if !slices.Equal(r.Errors, want) {
		t.Errorf("errors = %q, want %q", r.Errors, want)
	}
	if _, err := parsePgbench("pgbench: error: connection refused\n", ""); err == nil {
		t.Error("a report without numbers parsed without error")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	mk := func(target string, tps float64, txns int64, proxyCPU time.Duration) run {
		return run{Workload: "tpcb", Target: target,
			pgbenchResult: pgbenchResult{TPS: tps, LatencyMs: 1, Transactions: txns}, ProxyCPU: proxyCPU}
	}
	rep := report{Runs: []run{
		mk(targetDirect, 1000, 1000, 0),
		mk(targetPgBouncer, 800, 800, 8*time.Millisecond),
		mk(targetShardproxy1, 600, 600, 12*time.Millisecond),
		{Workload: "tpcb", Target: targetShardproxy1, Error: "connection refused"},
	}}
	rep.summarize([]workload{{Name: "tpcb"}}, nil)
	if len(rep.Cells) != len(targetNames) {
		t.Fatalf("%d cells", len(rep.Cells))
	}
	if c := rep.Cells[3]; c.Target != targetShardproxy2 || c.Attempts != 0 || c.VsDirect != nil {
		t.Errorf("shardproxy-2shard, not run: %+v", c)
	}
	sp := rep.Cells[2]
	if sp.Runs != 1 || *sp.VsDirect != 0.6 || *sp.VsBouncer != 0.75 || *sp.ProxyCPUus != 20 {
		t.Errorf("shardproxy cell %+v", sp)
	}
	if !slices.Equal(sp.Errors, []string{"connection refused"}) {
		t.Errorf("errors %q", sp.Errors)
	}
	if rep.Cells[0].VsDirect != nil || rep.Cells[0].ProxyCPUus != nil {
		t.Error("direct compared with itself")
	}
}

func TestParseOptions(t *testing.T) {
	env := map[string]string{"BENCH_DURATION": "3s", "BENCH_REPEATS": "1"}
	o, err := parseOptions([]string{"-workloads", "tpcb"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 3*time.Second || o.repeats != 1 || len(o.workloads) != 1 || o.workloads[0].Name != "tpcb" {
		t.Errorf("got %+v", o)
	}
	if o.idle {
		t.Error("idle clients selected without being asked for")
	}
	if _, err := parseOptions([]string{"-duration", "1500ms"}, func(string) string { return "" }); err == nil {
		t.Error("fractional seconds accepted")
	}
	for _, tc := range []struct {
		args      []string
		pgbench   int
		idle      bool
		clients   int
		wantError bool
	}{
		{args: nil, pgbench: len(workloads), idle: true, clients: 10000},
		{args: []string{"-workloads", "idle-clients", "-idle-clients", "500"}, idle: true, clients: 500},
		{args: []string{"-workloads", "tpcb, idle-clients"}, pgbench: 1, idle: true, clients: 10000},
		{args: []string{"-idle-clients", "0"}, wantError: true},
		{args: []string{"-workloads", "idle"}, wantError: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseOptions(tc.args, func(string) string { return "" })
			if tc.wantError {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(o.workloads) != tc.pgbench || o.idle != tc.idle || o.idleClients != tc.clients {
				t.Errorf("%d pgbench workloads, idle %v, %d clients", len(o.workloads), o.idle, o.idleClients)
			}
		})
	}
}

func TestNotableLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  string
		want bool
	}{
		{"empty", "", false},
		{"pgbouncer's LOG lines", "2026-11-26 22:23:34.123 UTC [123] LOG kernel file descriptor limit: 1024\n", false},
		{"raft electing itself", `time=2026-11-27T03:19:59.542Z level=WARN msg="heartbeat timeout reached, starting election" component=raft last-leader-addr="" last-leader-id=""` + "\n", false},
		{"a proxy warning", "time=2026-11-27T03:19:59.542Z level=WARN msg=\"server connection lost\"\n", true},
		{"pgbouncer's warning", "2026-11-26 22:23:34.123 UTC [123] WARNING client_login_timeout\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := notableLog(tc.log); got != tc.want {
				t.Errorf("notableLog = %v, want %v", got, tc.want)
			}
		})
	}
}
