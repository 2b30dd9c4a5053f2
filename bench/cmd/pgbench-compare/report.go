package main

// This file turns the raw runs into the summary `make bench` prints: per
// workload and target the median TPS and latency, the ratios to direct and
// to PgBouncer, and CPU per transaction; and it writes the Markdown and the
// raw JSON under bench/results/.

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
	targetDirect     = "direct"
	targetPgBouncer  = "pgbouncer"
	targetShardproxy = "shardproxy"
)

var targetNames = []string{targetDirect, targetPgBouncer, targetShardproxy}

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
	Cells       []cell            `json:"summary"`
	Runs        []run             `json:"runs"`
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

// writeMarkdown writes the summary table and notes.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## pgbench: direct vs PgBouncer vs shardproxy, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	if r.Interrupted {
		fmt.Fprintf(w, "**Interrupted: partial results.**\n\n")
	}
	fmt.Fprintf(w, "Host %s, %d CPUs shared by pgbench, the proxy under test and PostgreSQL, so compare ratios within one run rather than absolute numbers. ", r.Host, r.CPUs)
	fmt.Fprintf(w, "PostgreSQL %s (fsync off), PgBouncer %s, shardproxy %s. ", r.Versions["postgres"], r.Versions["pgbouncer"], r.Versions["shardproxy"])
	fmt.Fprintf(w, "pgbench scale %d; each cell is the median of %d runs of %s, the three targets interleaved in an order that rotates from run to run. ", r.Scale, r.Repeats, r.Duration)
	fmt.Fprintf(w, "select-by-key (-S): 16 clients, 2 threads; tpcb (tpcb-like): 8 clients, 2 threads. Both proxies: transaction pooling, 20 server connections, SCRAM. ")
	fmt.Fprintf(w, "CPU per transaction is user+sys CPU seconds of the process (PostgreSQL: all its processes) over the transactions pgbench processed. ")
	fmt.Fprintf(w, "Other CPUs: how many of the %d CPUs were busy outside PostgreSQL, the proxy and pgbench (other processes, kernel work charged to nobody); high values mean a noisy cell.\n\n", r.CPUs)

	fmt.Fprintln(w, "| workload | target | TPS | TPS min-max | latency ms | vs direct | vs PgBouncer | proxy CPU µs/txn | Postgres CPU µs/txn | other CPUs | failed/aborted |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	ratio := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *v)
	}
	for _, c := range r.Cells {
		switch {
		case c.NA != "":
			fmt.Fprintf(w, "| %s | %s | n/a | | | | | | | | |\n", c.Workload, c.Target)
			continue
		case c.Attempts == 0:
			fmt.Fprintf(w, "| %s | %s | not run | | | | | | | | |\n", c.Workload, c.Target)
			continue
		case c.Runs == 0:
			fmt.Fprintf(w, "| %s | %s | failed | | | | | | | | %d/%d |\n", c.Workload, c.Target, c.Failed, c.Aborted)
			continue
		}
		proxy := "-"
		if c.ProxyCPUus != nil {
			proxy = fmt.Sprintf("%.1f", *c.ProxyCPUus)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f-%.0f | %.3f | %s | %s | %s | %.1f | %.2f | %d/%d |\n",
			c.Workload, c.Target, c.TPS, c.TPSMin, c.TPSMax, c.LatencyMs,
			ratio(c.VsDirect), ratio(c.VsBouncer), proxy, c.PostgresCPUus, c.OtherCPUs, c.Failed, c.Aborted)
	}
	var notes []string
	notes = append(notes, r.Notes...)
	for _, c := range r.Cells {
		if c.NA != "" {
			notes = append(notes, fmt.Sprintf("%s via %s: n/a, %s.", c.Workload, c.Target, c.NA))
		}
		for _, e := range c.Errors {
			notes = append(notes, fmt.Sprintf("%s via %s: `%s`", c.Workload, c.Target, e))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
}

// save writes <dir>/<stamp>.md and .json (each through a .tmp file, so a
// half-written result never looks finished) and returns the Markdown path.
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
