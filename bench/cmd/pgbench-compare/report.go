package main

// This file turns the raw runs into the summary `make bench` prints: per
// workload and target the median TPS and latency, the ratios to direct and
// to PgBouncer, and CPU per transaction; the targets met or missed;
// the idle clients' memory; and it writes the Markdown and the raw JSON
// under bench/results/.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Targets, in the order of the first repeat.
const (
	targetDirect      = "direct"
	targetPgBouncer   = "pgbouncer"
	targetShardproxy1 = "shardproxy-1shard" // in front of direct's server
	targetShardproxy2 = "shardproxy-2shard" // over two other servers
	// targetLiteralParams is shardproxy-1shard with pool.literal_parameters
	// on; it changes only simple-protocol statements, so it runs only the
	// workloads in literalParamsWorkloads.
	targetLiteralParams = "shardproxy-1shard-litparams"
	// targetPipelined1 and targetPipelined2 are shardproxy-1shard and
	// -2shard with the options for speed on: pool.pipeline_connections
	// and pool.literal_parameters.
	targetPipelined1 = "shardproxy-1shard-pipelined"
	targetPipelined2 = "shardproxy-2shard-pipelined"
)

var targetNames = []string{targetDirect, targetPgBouncer, targetShardproxy1, targetShardproxy2, targetLiteralParams,
	targetPipelined1, targetPipelined2}

// goalTargets are the shardproxy targets the goals are checked on.
var goalTargets = []string{targetShardproxy1, targetShardproxy2, targetLiteralParams, targetPipelined1, targetPipelined2}

// literalParamsWorkloads are the workloads that send simple queries.
var literalParamsWorkloads = map[string]bool{"select-simple": true, "tpcb": true}

// targetRuns reports whether a target runs a workload at all; the others
// are left out as the same as the target without its option.
func targetRuns(target, workload string) (bool, string) {
	switch target {
	case targetLiteralParams:
		return literalParamsWorkloads[workload], "pool.literal_parameters changes only simple-protocol queries: the same as shardproxy-1shard"
	}
	return true, ""
}

// run is one pgbench run against one target.
type run struct {
	Repeat   int       `json:"repeat"`   // from 1
	Workload string    `json:"workload"` //
	Target   string    `json:"target"`   //
	Position int       `json:"position"` // place in this repeat's order, from 0
	Started  time.Time `json:"started"`
	pgbenchResult
	// ProxyCPU is the proxy process's user+sys CPU during the run (0 for
	// direct); PostgresCPU the same for the whole PostgreSQL server.
	ProxyCPU    time.Duration `json:"proxy_cpu_ns"`
	PostgresCPU time.Duration `json:"postgres_cpu_ns"`
	// MachineCPU is the busy time of all CPUs, whoever used them, and
	// Elapsed the wall time of the pgbench process.
	MachineCPU time.Duration `json:"machine_cpu_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	// Error is set when pgbench produced no report at all (it could not
	// connect, or the proxy died).
	Error string `json:"error,omitempty"`
}

func (r run) ok() bool { return r.Error == "" && r.Transactions > 0 }

// cell is the summary of one workload against one target.
type cell struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// NA says why the cell was not run; the other fields are then empty.
	NA        string   `json:"na,omitempty"`
	Attempts  int      `json:"attempts"` // runs started
	Runs      int      `json:"runs"`     // runs with a report
	TPS       float64  `json:"tps_median"`
	TPSMin    float64  `json:"tps_min"`
	TPSMax    float64  `json:"tps_max"`
	LatencyMs float64  `json:"latency_ms_median"`
	VsDirect  *float64 `json:"vs_direct,omitempty"`
	VsBouncer *float64 `json:"vs_pgbouncer,omitempty"`
	// Microseconds of CPU per transaction, medians over the runs.
	ProxyCPUus    *float64 `json:"proxy_cpu_us_per_txn,omitempty"`
	PostgresCPUus float64  `json:"postgres_cpu_us_per_txn"`
	// OtherCPUs is how many CPUs were busy outside PostgreSQL, the proxy
	// and pgbench (other processes, and kernel work charged to nobody),
	// median over the runs: a high value marks a noisy measurement.
	OtherCPUs float64  `json:"other_cpus_busy"`
	Failed    int64    `json:"failed_transactions"`
	Aborted   int      `json:"aborted_runs"`
	Errors    []string `json:"errors,omitempty"`
}

// report is everything one benchmark produced.
type report struct {
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
	Host        string            `json:"host"`
	CPUs        int               `json:"cpus"`
	Versions    map[string]string `json:"versions"`
	Duration    string            `json:"duration_per_run"`
	Repeats     int               `json:"repeats"`
	Scale       int               `json:"scale"`
	Interrupted bool              `json:"interrupted,omitempty"`
	Notes       []string          `json:"notes,omitempty"`
	// Split is where `pgbench -i` through shardproxy-2shard put the rows.
	Split []shardRows  `json:"shardproxy_2shard_rows,omitempty"`
	Cells []cell       `json:"summary"`
	Goals []goal       `json:"targets,omitempty"`
	Idle  []idleResult `json:"idle_clients,omitempty"`
	Runs  []run        `json:"runs"`
}

// summarize fills r.Cells from r.Runs. na maps "workload/target" to the
// reason a cell was skipped.
func (r *report) summarize(ws []workload, na map[string]string) {
	r.Cells = nil
	for _, w := range ws {
		byTarget := make(map[string]*cell)
		for _, t := range targetNames {
			c := cell{Workload: w.Name, Target: t, NA: na[w.Name+"/"+t]}
			var tps, lat, proxyCPU, pgCPU, other []float64
			for _, x := range r.Runs {
				if x.Workload != w.Name || x.Target != t {
					continue
				}
				c.Attempts++
				c.Errors = appendNew(c.Errors, x.Errors...)
				if x.Error != "" {
					c.Errors = appendNew(c.Errors, x.Error)
				}
				if x.Aborted {
					c.Aborted++
				}
				if !x.ok() {
					continue
				}
				c.Runs++
				c.Failed += x.Failed
				tps = append(tps, x.TPS)
				lat = append(lat, x.LatencyMs)
				n := float64(x.Transactions)
				proxyCPU = append(proxyCPU, float64(x.ProxyCPU.Microseconds())/n)
				pgCPU = append(pgCPU, float64(x.PostgresCPU.Microseconds())/n)
				if x.Elapsed > 0 {
					ours := x.PostgresCPU + x.ProxyCPU + x.ClientCPU
					other = append(other, max(0, (x.MachineCPU-ours).Seconds()/x.Elapsed.Seconds()))
				}
			}
			if c.Runs > 0 {
				c.TPS, c.TPSMin, c.TPSMax = median(tps), slices.Min(tps), slices.Max(tps)
				c.LatencyMs = median(lat)
				c.PostgresCPUus = median(pgCPU)
				if len(other) > 0 {
					c.OtherCPUs = median(other)
				}
				if t != targetDirect {
					v := median(proxyCPU)
					c.ProxyCPUus = &v
				}
			}
			byTarget[t] = &c
		}
		ratio := func(c, base *cell) *float64 {
			if c.Runs == 0 || base.Runs == 0 || base.TPS == 0 || c == base {
				return nil
			}
			v := c.TPS / base.TPS
			return &v
		}
		for _, t := range targetNames {
			c := byTarget[t]
			c.VsDirect = ratio(c, byTarget[targetDirect])
			c.VsBouncer = ratio(c, byTarget[targetPgBouncer])
			r.Cells = append(r.Cells, *c)
		}
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs must not be empty. It does not modify xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func appendNew(list []string, xs ...string) []string {
	for _, x := range xs {
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	return list
}

// writeMarkdown writes the summary table, the targets, the idle clients
// and notes.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## pgbench: direct vs PgBouncer vs shardproxy (1 and 2 shards), %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	if r.Interrupted {
		fmt.Fprintf(w, "**Interrupted: partial results.**\n\n")
	}
	var notes []string
	notes = append(notes, r.Notes...)
	if len(r.Cells) > 0 {
		notes = append(notes, r.writeTable(w)...)
	} else {
		fmt.Fprintf(w, "Host %s, %d CPUs. PostgreSQL %s (fsync off), shardproxy %s.\n", r.Host, r.CPUs, r.Versions["postgres"], r.Versions["shardproxy"])
	}
	if len(r.Goals) > 0 {
		r.writeGoals(w)
	}
	if len(r.Idle) > 0 {
		r.writeIdle(w)
		for _, x := range r.Idle {
			if x.Error != "" {
				notes = append(notes, fmt.Sprintf("idle clients (%s): `%s`", x.label(), x.Error))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
}

// writeTable writes the description and the pgbench table, and returns
// the notes on its cells.
func (r *report) writeTable(w io.Writer) []string {
	fmt.Fprintf(w, "Host %s, %d CPUs shared by pgbench, the proxy under test and PostgreSQL, so compare ratios within one run rather than absolute numbers. ", r.Host, r.CPUs)
	fmt.Fprintf(w, "PostgreSQL %s (fsync off), PgBouncer %s, shardproxy %s. ", r.Versions["postgres"], r.Versions["pgbouncer"], r.Versions["shardproxy"])
	fmt.Fprintf(w, "pgbench scale %d; each cell is the median of %d runs of %s, the targets interleaved in an order that rotates from run to run. ", r.Scale, r.Repeats, r.Duration)
	fmt.Fprintf(w, "select-by-key (-S): 16 clients, 2 threads; tpcb (tpcb-like): 8 clients, 2 threads. The proxies: transaction pooling, 20 server connections per server, SCRAM. ")
	fmt.Fprintf(w, "direct, PgBouncer and shardproxy-1shard use one PostgreSQL server holding all the data; shardproxy-2shard uses two more, filled by `pgbench -i` through it")
	if len(r.Split) > 0 {
		var parts []string
		for _, s := range r.Split {
			parts = append(parts, fmt.Sprintf("%s %d accounts, %d branches, %d tellers", s.Shard, s.Accounts, s.Branches, s.Tellers))
		}
		fmt.Fprintf(w, " (%s; the totals checked against pgbench's)", strings.Join(parts, "; "))
	}
	fmt.Fprintf(w, ". Every shardproxy target routes by key: pgbench_accounts and pgbench_history sharded by aid, pgbench_branches by bid, pgbench_tellers by tid. ")
	fmt.Fprintf(w, "The -litparams target has pool.literal_parameters on; the -pipelined ones have pool.literal_parameters and pool.pipeline_connections: %d on and runtime.gomaxprocs: %d (the settings, not the defaults, that make shardproxy faster on a small host it shares with PostgreSQL). ", pipelineConnections, tunedGOMAXPROCS)
	fmt.Fprintf(w, "CPU per transaction is user+sys CPU seconds of the process (PostgreSQL: all processes of all the target's servers) over the transactions pgbench processed. ")
	fmt.Fprintf(w, "Other CPUs: how many of the %d CPUs were busy outside the target's PostgreSQL, the proxy and pgbench (other processes, kernel work charged to nobody); high values mean a noisy cell.\n\n", r.CPUs)

	fmt.Fprintln(w, "| workload | target | TPS | TPS min-max | latency ms | vs direct | vs PgBouncer | proxy CPU µs/txn | Postgres CPU µs/txn | other CPUs | failed/aborted |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	ratio := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	twoPC := false
	for _, c := range r.Cells {
		tgt := c.Target
		if c.Workload == "tpcb" && c.Target == targetShardproxy2 && c.NA == "" {
			tgt += "[^2pc]"
			twoPC = true
		}
		switch {
		case c.NA != "":
			fmt.Fprintf(w, "| %s | %s | n/a | | | | | | | | |\n", c.Workload, tgt)
			continue
		case c.Attempts == 0:
			fmt.Fprintf(w, "| %s | %s | not run | | | | | | | | |\n", c.Workload, tgt)
			continue
		case c.Runs == 0:
			fmt.Fprintf(w, "| %s | %s | failed | | | | | | | | %d/%d |\n", c.Workload, tgt, c.Failed, c.Aborted)
			continue
		}
		proxy := "-"
		if c.ProxyCPUus != nil {
			proxy = fmt.Sprintf("%.1f", *c.ProxyCPUus)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f-%.0f | %.3f | %s | %s | %s | %.1f | %.2f | %d/%d |\n",
			c.Workload, tgt, c.TPS, c.TPSMin, c.TPSMax, c.LatencyMs,
			ratio(c.VsDirect), ratio(c.VsBouncer), proxy, c.PostgresCPUus, c.OtherCPUs, c.Failed, c.Aborted)
	}
	if twoPC {
		fmt.Fprintf(w, "\n[^2pc]: %s\n", twoPCNote(r.Split))
	}
	var notes []string
	for _, c := range r.Cells {
		if c.NA != "" {
			notes = append(notes, fmt.Sprintf("%s via %s: n/a, %s.", c.Workload, c.Target, c.NA))
		}
		for _, e := range c.Errors {
			notes = append(notes, fmt.Sprintf("%s via %s: `%s`", c.Workload, c.Target, e))
		}
	}
	return notes
}

// twoPCNote explains why TPC-B through two shards is a different workload.
func twoPCNote(split []shardRows) string {
	share := "most"
	if len(split) > 0 {
		share = fmt.Sprintf("%.0f%% of the", 100*multiShardShare(split))
	}
	return "TPC-B via shardproxy-2shard is mostly distributed transactions. pgbench's tpcb-like transaction updates an account, a teller and a branch picked independently (and inserts a history row, which goes with the account); sharded by their own keys, the three rows are on the same shard only by chance, so " +
		share + " transactions (from how the rows fell on the shards) write on both shards, and the proxy commits those with two-phase commit: PREPARE TRANSACTION on each shard, the decision written to the proxy's data_dir, then COMMIT PREPARED on each shard, more round trips and more PostgreSQL work than a commit on one server. " +
		"Its ratios to direct and PgBouncer (one server, local commits) are not like for like; it is reported to show what sharding TPC-B costs."
}

// writeGoals writes the targets, one row per goal and a column per
// shardproxy target.
func (r *report) writeGoals(w io.Writer) {
	fmt.Fprintf(w, "\n### Targets (issue 6)\n\n")
	if len(r.Cells) > 0 {
		fmt.Fprint(w, "Ratios of medians from the table above (TPS: shardproxy's over the base's; CPU: shardproxy's proxy CPU per transaction over PgBouncer's). ")
	}
	if len(r.Idle) > 0 {
		fmt.Fprint(w, "Idle client memory from the section below, measured with one shard.")
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintf(w, "| target | %s |\n|---%s|\n", strings.Join(goalTargets, " | "), strings.Repeat("|---", len(goalTargets)))
	var names []string
	byKey := map[string]goal{}
	for _, g := range r.Goals {
		if !slices.Contains(names, g.Name) {
			names = append(names, g.Name)
		}
		byKey[g.Name+"/"+g.Target] = g
	}
	met, total := 0, 0
	for _, n := range names {
		row := []string{n}
		for _, t := range goalTargets {
			g, ok := byKey[n+"/"+t]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, g.result())
			if g.Value != nil {
				total++
				if g.Met {
					met++
				}
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\n%d of %d measured targets met.\n", met, total)
}

// writeIdle writes the idle clients' memory.
func (r *report) writeIdle(w io.Writer) {
	fmt.Fprintf(w, "\n### Idle clients\n\n")
	fmt.Fprintf(w, "A fresh shardproxy (one shard, the same tables, transaction pooling, %d server connections) per row; clients log in as a trust user from pgbench-compare, %d at a time, and stay idle after ReadyForQuery. ", poolSize, idleParallel)
	fmt.Fprintf(w, "Memory is the proxy's VmRSS and RssAnon (/proc/PID/status) after a warm-up (%d clients logged in and left) with no clients, and again with every client idle, each taken once it has settled (within 0.5%% or 256 KiB over 1 s, sampled every 100 ms; at most %s). Per client: the growth over the client count.\n\n", 2*poolSize, memDeadline)
	fmt.Fprintln(w, "| connection | clients | login time s | VmRSS before KiB | VmRSS after KiB | VmRSS KiB/client | RssAnon before KiB | RssAnon after KiB | RssAnon KiB/client | settled |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, x := range r.Idle {
		if x.Error != "" {
			fmt.Fprintf(w, "| %s | %d | failed | | | | | | | |\n", x.label(), x.Clients)
			continue
		}
		rss, anon := x.perClientKiB()
		settled := "yes"
		if !x.Settled {
			settled = "no (last sample)"
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %d | %d | %.1f | %d | %d | %.1f | %s |\n",
			x.label(), x.Clients, x.OpenSeconds, x.Before.RSSKiB, x.After.RSSKiB, rss, x.Before.AnonKiB, x.After.AnonKiB, anon, settled)
	}
}

// save writes <dir>/<stamp>.md and .json (each through a .tmp file, so a
// half-written result never looks finished) and returns the Markdown path.
// render writes the markdown of the results in a saved JSON file next to
// it (the .md of the same name).
func render(jsonPath string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	var md strings.Builder
	r.writeMarkdown(&md)
	return os.WriteFile(strings.TrimSuffix(jsonPath, ".json")+".md", []byte(md.String()), 0o644)
}

func (r *report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stamp := r.Started.UTC().Format("20060102T150405Z")
	var md strings.Builder
	r.writeMarkdown(&md)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	mdPath := filepath.Join(dir, stamp+".md")
	for path, body := range map[string][]byte{mdPath: []byte(md.String()), filepath.Join(dir, stamp+".json"): append(js, '\n')} {
		if err := os.WriteFile(path+".tmp", body, 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return "", err
		}
	}
	return mdPath, nil
}
