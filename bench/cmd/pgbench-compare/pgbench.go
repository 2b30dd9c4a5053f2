package main

// This file knows pgbench: the workloads we compare, the command line for
// each, and how to read the numbers (and the errors) out of its report.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// workload is one pgbench script and protocol, run with a fixed client count.
type workload struct {
	Name    string
	Args    []string // script and protocol options
	Clients int
	Threads int
	// Prepared marks -M prepared, which needs prepared-statement support in
	// a transaction-mode pooler (PgBouncer >= 1.21, max_prepared_statements).
	Prepared bool
}

// workloads are the benchmark's cells, in the order they run within a repeat.
// select-by-key is pgbench's builtin select-only script (-S): one
// `SELECT abalance FROM pgbench_accounts WHERE aid = :aid` per transaction,
// which is all proxy overhead and no database work; TPC-B (tpcb-like) is
// five statements in BEGIN/END and contends on the branch rows.
var workloads = []workload{
	{Name: "select-simple", Args: []string{"-S", "-M", "simple"}, Clients: 16, Threads: 2},
	{Name: "select-extended", Args: []string{"-S", "-M", "extended"}, Clients: 16, Threads: 2},
	{Name: "select-prepared", Args: []string{"-S", "-M", "prepared"}, Clients: 16, Threads: 2, Prepared: true},
	{Name: "tpcb", Args: []string{"-b", "tpcb-like", "-M", "simple"}, Clients: 8, Threads: 2},
}

func findWorkload(name string) (workload, bool) {
	for _, w := range workloads {
		if w.Name == name {
			return w, true
		}
	}
	return workload{}, false
}

// pgbenchResult is what one pgbench run reports.
type pgbenchResult struct {
	TPS          float64  `json:"tps"`
	LatencyMs    float64  `json:"latency_ms"`
	Transactions int64    `json:"transactions"`
	Failed       int64    `json:"failed"`
	Aborted      bool     `json:"aborted"`          // some client gave up (exit status 2)
	Errors       []string `json:"errors,omitempty"` // pgbench's error lines, deduplicated
	// ClientCPU is pgbench's own user+sys CPU time.
	ClientCPU time.Duration `json:"client_cpu_ns"`
}

// pgbench runs the pgbench binary against one server.
type pgbench struct {
	bin      string
	host     string
	user     string
	password string
	db       string
}

func (p pgbench) command(ctx context.Context, port int, args ...string) *exec.Cmd {
	full := append([]string{"-h", p.host, "-p", strconv.Itoa(port), "-U", p.user}, args...)
	full = append(full, p.db)
	cmd := exec.CommandContext(ctx, p.bin, full...)
	cmd.Env = append(os.Environ(),
		"PGPASSWORD="+p.password,
		"PGSSLMODE=disable", // neither proxy is given a certificate
		"PGAPPNAME=pgbench-compare",
	)
	// Its own process group, so that a Ctrl-C at the terminal reaches only
	// us and we end the run. The parent-death signal works because main
	// locks its goroutine to the main thread (see main.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// initialize creates and fills the pgbench tables (-i).
func (p pgbench) initialize(ctx context.Context, port, scale int) error {
	cmd := p.command(ctx, port, "-i", "-q", "-s", strconv.Itoa(scale))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

// run runs w for d. Only an error that leaves no report at all (pgbench
// could not start, a bad option, or ctx ended) is returned as an error;
// clients that fail or abort are reported in the result.
func (p pgbench) run(ctx context.Context, port int, w workload, d time.Duration) (pgbenchResult, error) {
	args := append([]string{"-n", "-T", strconv.Itoa(int(d.Round(time.Second) / time.Second)),
		"-c", strconv.Itoa(w.Clients), "-j", strconv.Itoa(w.Threads)}, w.Args...)
	cmd := p.command(ctx, port, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return pgbenchResult{}, ctx.Err()
	}
	res, perr := parsePgbench(stdout.String(), stderr.String())
	if cmd.ProcessState != nil {
		res.ClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 2 && perr == nil:
		// Exit status 2: some clients aborted; the report covers the rest.
		res.Aborted = true
	default:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return res, fmt.Errorf("pgbench %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	if perr != nil {
		return res, fmt.Errorf("pgbench %s: %w", strings.Join(args, " "), perr)
	}
	return res, nil
}

var (
	reTPS     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	reLatency = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	reTxns    = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	reFailed  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// maxErrorLines bounds the error lines kept per run; a broken proxy makes
// every client print the same one.
const maxErrorLines = 5

// parsePgbench reads pgbench's (PostgreSQL 15) final report from stdout and
// its error lines from stderr.
func parsePgbench(stdout, stderr string) (pgbenchResult, error) {
	var r pgbenchResult
	var err error
	num := func(re *regexp.Regexp, what string, set func(string) error) {
		m := re.FindStringSubmatch(stdout)
		if m == nil {
			if err == nil {
				err = fmt.Errorf("no %q in pgbench's report", what)
			}
			return
		}
		if e := set(m[1]); e != nil && err == nil {
			err = fmt.Errorf("pgbench's %s: %w", what, e)
		}
	}
	num(reTPS, "tps", func(s string) (e error) { r.TPS, e = strconv.ParseFloat(s, 64); return })
	num(reLatency, "latency average", func(s string) (e error) { r.LatencyMs, e = strconv.ParseFloat(s, 64); return })
	num(reTxns, "number of transactions actually processed", func(s string) (e error) {
		r.Transactions, e = strconv.ParseInt(s, 10, 64)
		return
	})
	if m := reFailed.FindStringSubmatch(stdout); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	r.Errors = errorLines(stderr)
	return r, err
}

// errorLines returns the distinct lines of pgbench's stderr that report a
// failure, with client numbers masked so that sixteen clients hitting the
// same bug count once.
func errorLines(stderr string) []string {
	reClient := regexp.MustCompile(`client [0-9]+`)
	seen := make(map[string]bool)
	var out []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "pgbench: warning: ") && !strings.Contains(line, "abort") {
			continue
		}
		line = reClient.ReplaceAllString(line, "client N")
		if seen[line] {
			continue
		}
		seen[line] = true
		if len(out) < maxErrorLines {
			out = append(out, line)
		}
	}
	return out
}
