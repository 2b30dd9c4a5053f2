// The differential runner: every case runs against PostgreSQL directly and
// through proxy nodes, and each proxied transcript must equal the direct
// one line for line.
package protocol_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// showTranscripts logs every transcript, for writing and debugging cases:
// go test ./test/protocol/ -run 'TestDifferential/copy_in$' -v -args -transcripts
var showTranscripts = flag.Bool("transcripts", false, "log every run's transcript")

// A target is where a run's client connects.
type target struct {
	name string
	// addr returns the address to dial, starting what the target needs
	// for this one run.
	addr func(t *testing.T) string
}

func directTarget() target {
	return target{name: "direct", addr: func(*testing.T) string { return primary().Addr() }}
}

// proxyTarget starts a node of its own for every run, so that one case's
// leftovers (a session stuck on a server, a statement cached on a pooled
// connection) never change another case's answers.
func proxyTarget(name string, adjust func(*config.Config)) target {
	return target{name: name, addr: func(t *testing.T) string {
		cfg := testenv.Config(cluster)
		// testenv.Config leaves data_dir empty, which config.Validate
		// refuses; the node keeps nothing there yet.
		cfg.DataDir = t.TempDir()
		adjust(cfg)
		n := testenv.StartNode(t, cfg, node.Options{})
		// Registered after StartNode's cleanup, so it runs first: a run
		// left stuck costs a short drain, not StartNode's five seconds.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_ = n.Shutdown(ctx)
		})
		return n.Addr()
	}}
}

func proxyTargets() []target {
	return []target{
		proxyTarget("session", func(c *config.Config) {
			c.Pool.Mode = config.PoolSession
			c.Pool.Size = 4
		}),
		proxyTarget("transaction", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 2
		}),
		// Every transaction on a new server connection (a lifetime of 1ns
		// expires a connection as soon as it is idle): what the proxy keeps
		// per client (statements, settings) must be replayed each time,
		// which a warm LIFO pool with one client would never exercise.
		proxyTarget("transaction-fresh-server", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 2
			c.Pool.ServerLifetime = time.Nanosecond
		}),
		// One-statement reads share a pipelined connection (pipeline.go
		// in router). Pipelining follows the routing plan, so a table is
		// declared (one no case uses): the cases' own tables are then
		// unsharded ones, planned and routed to the one shard.
		proxyTarget("transaction-pipelined", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 3
			c.Pool.PipelineConnections = 1
			c.Tables = []config.Table{{Name: "dp_pipeline_marker", Key: "id"}}
		}),
		// The same without sharding: statements are planned for
		// pipelining only.
		proxyTarget("transaction-pipelined-unsharded", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 3
			c.Pool.PipelineConnections = 1
		}),
	}
}

// transcript plays steps on a fresh connection to addr and returns every
// normalised answer, with a header line per step.
func transcript(t *testing.T, addr string, steps []step) []string {
	t.Helper()
	c, _, err := dialRaw(addr, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.close()
	var out []string
	for i, st := range steps {
		out = append(out, fmt.Sprintf("-- step %d: %s", i+1, describeStep(st)))
		out = append(out, c.run(st)...)
	}
	if *showTranscripts {
		t.Logf("transcript:\n%s", strings.Join(out, "\n"))
	}
	return out
}

func describeStep(st step) string {
	names := make([]string, len(st.Send))
	for i, m := range st.Send {
		names[i] = strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
	}
	return strings.Join(names, " ")
}

// TestStartup compares what a client gets at login (every ParameterStatus,
// in sorted order) and what its startup parameters leave in force, with
// plain parameters, an application_name, and settings passed in options.
func TestStartup(t *testing.T) {
	show := batch(1, query("SHOW application_name; SHOW work_mem; SHOW DateStyle; SHOW search_path"))
	variants := []struct {
		name   string
		params map[string]string
	}{
		{"plain", nil},
		{"application_name", map[string]string{"application_name": "dp_startup"}},
		{"options", map[string]string{"options": `-c work_mem=7MB -c DateStyle=German --search_path=dp_a,\ public`}},
	}
	login := func(t *testing.T, addr string, params map[string]string) []string {
		t.Helper()
		c, lines, err := dialRaw(addr, params)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		lines = append(lines, "-- "+describeStep(show))
		lines = append(lines, c.run(show)...)
		if *showTranscripts {
			t.Logf("transcript:\n%s", strings.Join(lines, "\n"))
		}
		return lines
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			want := login(t, primary().Addr(), v.params)
			for _, tg := range proxyTargets() {
				t.Run(tg.name, func(t *testing.T) {
					got := login(t, tg.addr(t), v.params)
					if d := diffLines(want, got); d != "" {
						t.Errorf("login answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
					}
				})
			}
		})
	}
}

func TestDifferential(t *testing.T) {
	seen := map[string]bool{}
	for _, pc := range cases() {
		if seen[pc.name] {
			t.Fatalf("duplicate case name %q", pc.name)
		}
		seen[pc.name] = true
		t.Run(pc.name, func(t *testing.T) { runCase(t, pc) })
	}
}

// runCase runs one case against PostgreSQL and every proxy target and
// requires the same transcript. Cases share nothing (own tables, own
// nodes), so they run in parallel; a case's own runs stay in order, around
// its resets.
func runCase(t *testing.T, pc protoCase) {
	t.Parallel()
	directSQL(t, pc.setup...)
	directSQL(t, pc.reset...)
	want := transcript(t, directTarget().addr(t), pc.steps)
	for _, l := range want {
		if strings.HasPrefix(l, "<") {
			// A step waits for answers PostgreSQL does not send: the
			// case is wrong, not the proxy.
			t.Fatalf("the case does not fit PostgreSQL itself:\n%s", strings.Join(want, "\n"))
		}
	}
	for _, tg := range proxyTargets() {
		t.Run(tg.name, func(t *testing.T) {
			directSQL(t, pc.reset...)
			got := transcript(t, tg.addr(t), pc.steps)
			if d := diffLines(want, got); d != "" {
				t.Errorf("answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
			}
		})
	}
}

// diffLines returns a line diff of a and b ("" when equal): the longest
// common subsequence, with unchanged lines kept as context near changes.
func diffLines(a, b []string) string {
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return ""
	}
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', b[j]})
			j++
		default:
			lines = append(lines, line{'-', a[i]})
			i++
		}
	}
	// Keep step headers and lines within two of a change.
	const ctx = 2
	keep := make([]bool, len(lines))
	for k, l := range lines {
		if l.op != ' ' {
			for d := max(0, k-ctx); d <= min(len(lines)-1, k+ctx); d++ {
				keep[d] = true
			}
		}
	}
	var sb strings.Builder
	skipped := false
	for k, l := range lines {
		if !keep[k] && !strings.HasPrefix(l.text, "-- step") {
			skipped = true
			continue
		}
		if skipped {
			sb.WriteString("  ...\n")
			skipped = false
		}
		fmt.Fprintf(&sb, "%c %s\n", l.op, l.text)
	}
	return sb.String()
}
