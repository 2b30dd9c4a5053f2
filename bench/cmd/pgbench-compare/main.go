// Command pgbench-compare is what `make bench` runs (through
// scripts/bench.sh). It exists to answer two questions with numbers: what
// does shardproxy cost compared with talking to PostgreSQL directly and
// compared with PgBouncer, the pooler people would otherwise use; and how
// much memory does an idle client cost it?
//
// It starts local PostgreSQL 15 servers (package localpg): one that holds
// all the pgbench data, filled with `pgbench -i`, and two more that
// shardproxy splits the same data over. Four targets serve pgbench: the
// single server directly; PgBouncer in front of it (transaction pooling,
// pool size 20, SCRAM); shardproxy in front of it with the pgbench tables
// configured as sharded (shardproxy-1shard); and shardproxy over the two
// other servers, the data loaded by `pgbench -i` through it so that every
// row lands on the shard its key hashes to (shardproxy-2shard). It runs
// pgbench's select-by-key script in the simple, extended and prepared
// protocols, and TPC-B, against all four, interleaved, the order rotating
// from run to run, several times. It prints per workload and target the
// median TPS and latency, the ratios to direct and to PgBouncer, and the
// CPU each proxy (and PostgreSQL, all of a target's servers) spent per
// transaction, checks the numbers against the performance targets of
// issue 6, and keeps the table and the raw numbers under bench/results/.
//
// The idle-clients workload starts a fresh shardproxy (one shard, the same
// tables) and measures its resident memory before and after 10,000 clients
// have logged in (trust authentication) and sit idle; once in plain TCP and
// once with TLS.
//
// Everything shares the machine's cores: pgbench, the proxy and PostgreSQL
// compete for them, so the ratios within one run mean more than absolute
// numbers, and a proxy's CPU per transaction is taken from PostgreSQL and
// pgbench too.
//
// Usage: pgbench-compare [-duration 10s] [-repeats 5] [-workloads a,b]
// [-scale 10] [-warmup 2s] [-idle-clients 10000] [-idle-tls=true]
// [-proxy bin/shardproxy] [-results bench/results] [-keep]. BENCH_DURATION
// and BENCH_REPEATS set the defaults of -duration and -repeats.
//
// Every process it starts stops when it exits, is interrupted, or is killed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/loopback"
)

func init() {
	// Children get SIGKILL as their parent-death signal so that a killed
	// benchmark leaves nothing running. Linux sends it when the *thread*
	// that forked the child exits, not the process. Locked here, the main
	// goroutine stays on the main thread, which lives as long as the
	// process; every child (pgbench, PgBouncer, shardproxy) is started from
	// the main goroutine. localpg starts PostgreSQL from a thread of its own.
	runtime.LockOSThread()
}

// idleWorkload is the name of the idle-client memory measurement in
// -workloads; the other names are pgbench workloads.
const idleWorkload = "idle-clients"

type options struct {
	duration    time.Duration
	warmup      time.Duration
	repeats     int
	scale       int
	workloads   []workload // pgbench workloads
	idle        bool       // measure idle clients' memory
	idleClients int
	idleTLS     bool
	proxyBin    string
	results     string
	keep        bool
	render      string
}

func parseOptions(args []string, getenv func(string) string) (options, error) {
	o := options{duration: 10 * time.Second, repeats: 5}
	if s := getenv("BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return o, fmt.Errorf("BENCH_DURATION: %w", err)
		}
		o.duration = d
	}
	if s := getenv("BENCH_REPEATS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return o, fmt.Errorf("BENCH_REPEATS: %w", err)
		}
		o.repeats = n
	}
	var names []string
	for _, w := range workloads {
		names = append(names, w.Name)
	}
	names = append(names, idleWorkload)
	fs := flag.NewFlagSet("pgbench-compare", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", o.duration, "length of each pgbench run, whole seconds (default from BENCH_DURATION)")
	fs.IntVar(&o.repeats, "repeats", o.repeats, "runs per workload and target (default from BENCH_REPEATS)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "an unrecorded select-simple run per target before measuring (0: none)")
	fs.IntVar(&o.scale, "scale", 10, "pgbench scale factor (100,000 accounts each)")
	wl := fs.String("workloads", strings.Join(names, ","), "comma-separated workloads to run")
	fs.IntVar(&o.idleClients, "idle-clients", 10000, "idle clients the "+idleWorkload+" workload opens")
	fs.BoolVar(&o.idleTLS, "idle-tls", true, "measure idle clients over TLS too")
	fs.StringVar(&o.proxyBin, "proxy", "bin/shardproxy", "shardproxy binary (make build)")
	fs.StringVar(&o.results, "results", "bench/results", "directory for the results")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (data, configurations, logs)")
	fs.StringVar(&o.render, "render", "", "write the markdown of a saved results JSON again (after a report change) and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return o, fmt.Errorf("-duration %s: whole seconds, at least 1s (pgbench -T)", o.duration)
	}
	if o.repeats < 1 || o.scale < 1 || o.warmup < 0 {
		return o, errors.New("-repeats and -scale must be at least 1, -warmup not negative")
	}
	if o.idleClients < 1 {
		return o, errors.New("-idle-clients must be at least 1")
	}
	for _, n := range strings.Split(*wl, ",") {
		n = strings.TrimSpace(n)
		if n == idleWorkload {
			o.idle = true
			continue
		}
		w, ok := findWorkload(n)
		if !ok {
			return o, fmt.Errorf("unknown workload %q (known: %s)", n, strings.Join(names, ", "))
		}
		o.workloads = append(o.workloads, w)
	}
	return o, nil
}

func main() {
	opts, err := parseOptions(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgbench-compare:", err)
		os.Exit(2)
	}
	if opts.render != "" {
		if err := render(opts.render); err != nil {
			fmt.Fprintln(os.Stderr, "pgbench-compare:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		// After the first signal, a second one kills us at once; the
		// parent-death signal then takes the children with us.
		<-ctx.Done()
		stop()
	}()
	if err := benchmark(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "pgbench-compare:", err)
		os.Exit(1)
	}
}

// target is one way for pgbench to reach PostgreSQL.
type target struct {
	name   string
	port   int
	proc   *proc // nil for direct
	pgPIDs []int // the postmasters of the PostgreSQL servers behind it
}

const (
	benchUser = "app"
	benchDB   = "app"
	// idleUser is a shardproxy user authenticated by trust (the proxy logs
	// into the shards as benchUser), so that 10,000 idle clients cost the
	// client side no SCRAM work.
	idleUser = "idle"
	poolSize = 20
)

// bench is what the phases of one benchmark share.
type bench struct {
	o        options
	rep      *report
	pb       pgbench
	cluster  *localpg.Cluster
	work     string // the work directory: configurations, logs, data
	proxyBin string
}

func benchmark(ctx context.Context, o options) (err error) {
	rep := &report{
		Started:  time.Now().UTC(),
		CPUs:     runtime.NumCPU(),
		Versions: map[string]string{},
		Duration: o.duration.String(),
		Repeats:  o.repeats,
		Scale:    o.scale,
	}
	rep.Host, _ = os.Hostname()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Find every binary before starting anything.
	pgBinDir, err := localpg.FindBinDir("")
	if err != nil {
		return err
	}
	pb := pgbench{bin: filepath.Join(pgBinDir, "pgbench"), host: "127.0.0.1", user: benchUser, password: benchUser, db: benchDB}
	if out, err := exec.Command(pb.bin, "--version").Output(); err == nil {
		rep.Versions["pgbench"] = strings.TrimSpace(string(out))
	}
	na := map[string]string{}
	var bouncer pgbouncerBinary
	if len(o.workloads) > 0 {
		if bouncer, err = findPgBouncer(); err != nil {
			return err
		}
		rep.Versions["pgbouncer"] = bouncer.version
		if !bouncer.keepsPrepared() {
			na["select-prepared/"+targetPgBouncer] = fmt.Sprintf("PgBouncer %s cannot keep prepared statements in transaction mode (max_prepared_statements needs 1.21 or newer), so pgbench -M prepared fails through it", bouncer.version)
		}
	}
	proxyBin, err := filepath.Abs(o.proxyBin)
	if err != nil {
		return err
	}
	out, err := exec.Command(proxyBin, "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w (run make build)", proxyBin, err)
	}
	rep.Versions["shardproxy"] = strings.TrimPrefix(strings.TrimSpace(string(out)), "shardproxy ")
	if commit, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		// The binary was built from the work tree; say when that differs
		// from the commit outside bench/ (changes to the benchmark itself
		// do not change what it measures).
		dirty := ""
		if out, err := exec.Command("git", "status", "--porcelain", "--", ".", ":(exclude)bench").Output(); err == nil && len(out) > 0 {
			dirty = " with uncommitted changes"
		}
		rep.Versions["shardproxy"] += " (commit " + strings.TrimSpace(string(commit)) + dirty + ")"
	}
	if o.idle {
		// 10,000 clients need 10,000 descriptors here and as many in the
		// proxy, which inherits our limit.
		soft, hard, err := raiseNoFile()
		if err != nil {
			return err
		}
		if need := uint64(o.idleClients) + idleSpareFiles; soft < need {
			return fmt.Errorf("-idle-clients %d needs %d open files, the hard limit (ulimit -Hn) is %d", o.idleClients, need, hard)
		}
	}

	// A work directory the postgres OS user can reach (PostgreSQL and
	// PgBouncer run as that user when we are root).
	work, err := os.MkdirTemp("", "shardbench-")
	if err != nil {
		return err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Fprintln(os.Stderr, "work directory kept:", work)
			return
		}
		_ = os.RemoveAll(work)
	}()

	// Server s1 serves direct, PgBouncer and shardproxy-1shard; s2 and s3
	// are the two shards of shardproxy-2shard. The idle clients need s1
	// only.
	servers := 1
	if len(o.workloads) > 0 {
		servers = 3
	}
	fmt.Fprintf(os.Stderr, "starting %d PostgreSQL servers...\n", servers)
	cluster, err := localpg.Start(ctx, localpg.Config{
		Dir:       filepath.Join(work, "pg"),
		Shards:    servers,
		Logger:    logger,
		Roles:     []localpg.Role{{Name: benchUser, Password: benchUser}},
		Databases: []string{benchDB},
		// The pgbench tables at scale 10 (about 160 MB) stay in memory.
		Settings: map[string]string{"shared_buffers": "256MB"},
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "stopping PostgreSQL...")
		if serr := cluster.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	b := &bench{o: o, rep: rep, pb: pb, cluster: cluster, work: work, proxyBin: proxyBin}
	if rep.Versions["postgres"], err = serverVersion(ctx, cluster, cluster.Shards[0].Primary); err != nil {
		return err
	}
	// The idle clients' proxy, too, finds the tables it is configured with.
	scram, err := prepareDatabase(ctx, cluster, cluster.Shards[0].Primary, pb, o.scale)
	if err != nil {
		return err
	}

	if len(o.workloads) > 0 {
		if err := b.pgbenchPhase(ctx, bouncer, scram, na); err != nil {
			return err
		}
	}
	if o.idle && ctx.Err() == nil {
		b.idlePhase(ctx)
	}
	if ctx.Err() != nil {
		rep.Interrupted = true
	}
	rep.Finished = time.Now().UTC()
	rep.summarize(o.workloads, na)
	rep.Goals = evaluateGoals(rep.Cells, rep.Idle)

	fmt.Println()
	rep.writeMarkdown(os.Stdout)
	path, err := rep.save(o.results)
	if err != nil {
		return fmt.Errorf("saving results: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\nresults: %s and %s\n", path, strings.TrimSuffix(path, ".md")+".json")
	if rep.Interrupted {
		return errors.New("interrupted")
	}
	return nil
}

// pgbenchPhase starts the proxies, fills shardproxy-2shard's servers, and
// runs the pgbench workloads against the four targets.
// scram is the bench user's SCRAM secret, for PgBouncer.
func (b *bench) pgbenchPhase(ctx context.Context, bouncerBin pgbouncerBinary, scram string, na map[string]string) (err error) {
	o, rep := b.o, b.rep
	single := b.cluster.Shards[0].Primary
	split := []*localpg.Server{b.cluster.Shards[1].Primary, b.cluster.Shards[2].Primary}

	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop(5 * time.Second)
		}
	}()
	fmt.Fprintln(os.Stderr, "starting PgBouncer", bouncerBin.version, "and shardproxy (1 and 2 shards)...")
	bouncerPort, err := loopback.FreePort()
	if err != nil {
		return err
	}
	bouncer, err := startPgBouncer(pgbouncerConfig{
		Bin: bouncerBin.path, Dir: filepath.Join(b.work, "pgbouncer"), Port: bouncerPort,
		Backend: single.Addr(), DB: benchDB, User: benchUser, SCRAM: scram,
		PoolSize: poolSize, MaxPrepped: bouncerBin.maxPrepared(),
	})
	if err != nil {
		return err
	}
	procs = append(procs, bouncer)
	targets := []target{
		{name: targetDirect, port: single.Port, pgPIDs: []int{single.PID()}},
		{name: targetPgBouncer, port: bouncerPort, proc: bouncer, pgPIDs: []int{single.PID()}},
	}
	for _, sp := range []struct {
		name          string
		servers       []*localpg.Server
		literalParams bool
		pipelined     bool
	}{
		{targetShardproxy1, []*localpg.Server{single}, false, false},
		{targetShardproxy2, split, false, false},
		{targetLiteralParams, []*localpg.Server{single}, true, false},
		{targetPipelined1, []*localpg.Server{single}, true, true},
		{targetPipelined2, split, true, true},
	} {
		port, err := loopback.FreePort()
		if err != nil {
			return err
		}
		var addrs []string
		var pids []int
		for _, s := range sp.servers {
			addrs = append(addrs, s.Addr())
			pids = append(pids, s.PID())
		}
		p, err := startShardproxy(shardproxyConfig{
			Name: sp.name, Bin: b.proxyBin, Dir: filepath.Join(b.work, sp.name), Port: port,
			Shards: addrs, User: benchUser, Password: benchUser, PoolSize: poolSize,
			LiteralParams: sp.literalParams, Pipelined: sp.pipelined,
		})
		if err != nil {
			return err
		}
		procs = append(procs, p)
		targets = append(targets, target{name: sp.name, port: port, proc: p, pgPIDs: pids})
	}
	for _, t := range targets[1:] {
		url := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", benchUser, benchUser, t.port, benchDB)
		if err := waitReady(ctx, t.proc, url, 15*time.Second); err != nil {
			return err
		}
	}
	rep.Split, err = loadSharded(ctx, b.cluster, split, b.pb, targets[3].port, o.scale)
	if err != nil {
		return fmt.Errorf("loading the pgbench tables through %s: %w", targetShardproxy2, err)
	}

	m := measurer{pb: b.pb}
	if o.warmup > 0 {
		fmt.Fprintf(os.Stderr, "warming up (%s per target)...\n", o.warmup)
		for _, t := range targets {
			r := m.measure(ctx, t, workloads[0], o.warmup.Round(time.Second))
			if ctx.Err() != nil {
				break
			}
			if r.Error != "" {
				fmt.Fprintf(os.Stderr, "  warm-up via %s failed: %s\n", t.name, r.Error)
			}
		}
	}

	for _, w := range o.workloads {
		for _, t := range targets {
			if runs, why := targetRuns(t.name, w.Name); !runs {
				na[w.Name+"/"+t.name] = why
			}
		}
	}
	cells := 0
	for _, w := range o.workloads {
		for _, t := range targets {
			if na[w.Name+"/"+t.name] == "" {
				cells++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "measuring: %d repeats x %d runs of %s (about %s)\n",
		o.repeats, cells, o.duration, (time.Duration(o.repeats*cells) * (o.duration + time.Second)).Round(time.Second))
measure:
	for i := range o.repeats {
		for wi, w := range o.workloads {
			shift := (i + wi) % len(targets)
			order := append(append([]target(nil), targets[shift:]...), targets[:shift]...)
			for pos, t := range order {
				if na[w.Name+"/"+t.name] != "" {
					continue
				}
				r := m.measure(ctx, t, w, o.duration)
				if ctx.Err() != nil {
					break measure
				}
				r.Repeat, r.Position = i+1, pos
				rep.Runs = append(rep.Runs, r)
				progress(os.Stderr, o.repeats, r)
			}
		}
	}
	b.stopAndKeepLogs(procs...)
	return nil
}

// stopAndKeepLogs notes a proxy that died, keeps a proxy's log next to
// the results when it says more than routine lines (see notableLog), and
// stops the proxies.
func (b *bench) stopAndKeepLogs(procs ...*proc) {
	stamp := b.rep.Started.Format("20060102T150405Z")
	for _, p := range procs {
		if err := p.exited(); err != nil {
			b.rep.Notes = append(b.rep.Notes, err.Error())
		}
		if data, err := os.ReadFile(p.logPath); err == nil && notableLog(string(data)) {
			dst := filepath.Join(b.o.results, stamp+"-"+p.name+".log")
			if os.MkdirAll(b.o.results, 0o755) == nil && os.WriteFile(dst, data, 0o644) == nil {
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s logged %d lines, kept in %s.", p.name, strings.Count(string(data), "\n"), dst))
			}
		}
		p.stop(5 * time.Second)
	}
}

// serverVersion returns PostgreSQL's server_version.
func serverVersion(ctx context.Context, c *localpg.Cluster, s *localpg.Server) (string, error) {
	conn, err := pgx.Connect(ctx, c.SuperConnString(s, benchDB))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	return conn.PgConn().ParameterStatus("server_version"), nil
}

// prepareDatabase fills the pgbench tables of one server, checkpoints, and
// returns the bench user's SCRAM secret for PgBouncer's auth_file.
func prepareDatabase(ctx context.Context, c *localpg.Cluster, s *localpg.Server, pb pgbench, scale int) (string, error) {
	fmt.Fprintf(os.Stderr, "pgbench -i -s %d (direct)...\n", scale)
	if err := pb.initialize(ctx, s.Port, scale); err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, c.SuperConnString(s, benchDB))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return "", err
	}
	var scram string
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", benchUser).Scan(&scram); err != nil {
		return "", fmt.Errorf("reading %s's SCRAM secret: %w", benchUser, err)
	}
	if !strings.HasPrefix(scram, "SCRAM-SHA-256$") {
		return "", fmt.Errorf("%s's password is not stored as SCRAM", benchUser)
	}
	return scram, nil
}

// measurer runs pgbench against a target and takes the CPU the proxy and
// PostgreSQL spent meanwhile.
type measurer struct {
	pb pgbench
}

func (m measurer) measure(ctx context.Context, t target, w workload, d time.Duration) run {
	r := run{Workload: w.Name, Target: t.name, Started: time.Now().UTC()}
	if t.proc != nil {
		if err := t.proc.exited(); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	began := time.Now()
	machineBefore, err5 := machineCPU()
	pgBefore, err1 := cpuOfTrees(t.pgPIDs...)
	var proxyBefore time.Duration
	var err2 error
	if t.proc != nil {
		proxyBefore, err2 = cpuOf(t.proc.pid())
	}
	res, err := m.pb.run(ctx, t.port, w, d)
	pgAfter, err3 := cpuOfTrees(t.pgPIDs...)
	machineAfter, err6 := machineCPU()
	r.Elapsed = time.Since(began)
	r.MachineCPU = machineAfter - machineBefore
	var proxyAfter time.Duration
	var err4 error
	if t.proc != nil {
		proxyAfter, err4 = cpuOf(t.proc.pid())
	}
	r.pgbenchResult = res
	r.ProxyCPU, r.PostgresCPU = proxyAfter-proxyBefore, pgAfter-pgBefore
	if err != nil {
		r.Error = err.Error()
		if t.proc != nil && t.proc.exited() != nil {
			r.Error += "; " + t.proc.exited().Error()
		}
	} else if cerr := errors.Join(err1, err2, err3, err4, err5, err6); cerr != nil {
		r.Error = "reading CPU times: " + cerr.Error()
	}
	return r
}

func progress(w io.Writer, repeats int, r run) {
	if r.Error != "" {
		fmt.Fprintf(w, "  [%d/%d] %-16s %-17s ERROR %s\n", r.Repeat, repeats, r.Workload, r.Target, r.Error)
		return
	}
	proxy := ""
	if r.Target != targetDirect && r.Transactions > 0 {
		proxy = fmt.Sprintf("  proxy %.1f µs/txn", float64(r.ProxyCPU.Microseconds())/float64(r.Transactions))
	}
	// CPUs busy during the run, machine-wide and by whom, to show how
	// saturated the shared machine was.
	busy := func(d time.Duration) float64 { return d.Seconds() / r.Elapsed.Seconds() }
	fmt.Fprintf(w, "  [%d/%d] %-16s %-17s %8.0f tps %7.3f ms%s  (CPUs busy %.2f: postgres %.2f, proxy %.2f, pgbench %.2f)\n",
		r.Repeat, repeats, r.Workload, r.Target, r.TPS, r.LatencyMs, proxy,
		busy(r.MachineCPU), busy(r.PostgresCPU), busy(r.ProxyCPU), busy(r.ClientCPU))
	for _, e := range r.Errors {
		fmt.Fprintf(w, "      pgbench: %s\n", e)
	}
	if r.Aborted || r.Failed > 0 {
		fmt.Fprintf(w, "      %d failed transactions, aborted=%v\n", r.Failed, r.Aborted)
	}
}

// routineLog are the lines a healthy run logs: PgBouncer's informational
// ones, and the warning with which shardproxy's one-node Raft cluster
// elects itself at start-up.
var routineLog = []string{
	"] LOG ",
	`msg="heartbeat timeout reached, starting election" component=raft last-leader-addr="" last-leader-id=""`,
}

// notableLog reports whether a proxy's log has a line other than routine
// ones.
func notableLog(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.TrimSpace(line) != "" && !slices.ContainsFunc(routineLog, func(r string) bool { return strings.Contains(line, r) }) {
			return true
		}
	}
	return false
}
