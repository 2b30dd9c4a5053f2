package main

// This file starts the proxies under test, PgBouncer and shardproxy (with
// the pgbench tables configured), as child processes that cannot outlive
// the benchmark, and measures the CPU time they (and PostgreSQL) spend,
// from /proc.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is sysconf(_SC_CLK_TCK), the unit of /proc/PID/stat's CPU
// times. It is 100 on every Linux architecture Go supports (USER_HZ).
const clockTicks = 100

// proc is a child process we started and must stop.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done is closed
}

// startProc starts cmd in its own process group (so a Ctrl-C at the
// terminal reaches us, and we stop it in order) with SIGKILL as its
// parent-death signal (so it dies with us even when we are killed), stderr
// and stdout going to logPath.
func startProc(name string, cmd *exec.Cmd, logPath string, cred *syscall.Credential) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited returns the reason the process is gone, or nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its log: %s", p.name, p.err, p.logTail(20))
	default:
		return nil
	}
}

// stop sends SIGTERM (both proxies shut down on it) and kills the process
// group if it is still there after timeout.
func (p *proc) stop(timeout time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procStat is the part of /proc/PID/stat we use.
type procStat struct {
	ppid           int
	utime, stime   uint64 // this process's CPU, all threads, in clock ticks
	cutime, cstime uint64 // CPU of its exited, waited-for children
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var st procStat
	var errs []error
	u := func(k int) uint64 {
		v, err := strconv.ParseUint(f[k-3], 10, 64)
		errs = append(errs, err)
		return v
	}
	st.ppid = int(u(4))
	st.utime, st.stime, st.cutime, st.cstime = u(14), u(15), u(16), u(17)
	return st, errors.Join(errs...)
}

// cpuOf returns the user+sys CPU time of one process, all threads.
func cpuOf(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(st.utime + st.stime), nil
}

// cpuOfTrees returns the CPU time of some processes, of their live
// children, and what they have reaped from children that exited. For
// postmasters that is everything those PostgreSQL servers have spent: every
// backend and auxiliary process is a postmaster's direct child (each in a
// session of its own, so the process group does not find them), backends
// still connected count themselves, and one that has exited was added to
// the postmaster's cutime/cstime.
//
// Right after a pgbench run its backends exit and are reaped while we
// look: one reaped after we read its parent but before we reach it in
// /proc would be counted nowhere (and, reading the other way round, twice).
// So the parents are read again after the scan, and the scan repeated when
// they have reaped anything meanwhile.
func cpuOfTrees(pids ...int) (time.Duration, error) {
	reaped := func() (uint64, uint64, error) {
		var own, children uint64
		for _, pid := range pids {
			st, err := readProcStat(pid)
			if err != nil {
				return 0, 0, err
			}
			own += st.utime + st.stime
			children += st.cutime + st.cstime
		}
		return own, children, nil
	}
	parents := make(map[int]bool, len(pids))
	for _, pid := range pids {
		parents[pid] = true
	}
	for attempt := 0; ; attempt++ {
		own, before, err := reaped()
		if err != nil {
			return 0, err
		}
		live, err := cpuOfChildren(parents)
		if err != nil {
			return 0, err
		}
		_, after, err := reaped()
		if err != nil {
			return 0, err
		}
		if after == before || attempt == 100 {
			return ticks(own + after + live), nil
		}
	}
}

// cpuOfChildren returns the CPU time of the live children of parents.
func cpuOfChildren(parents map[int]bool) (uint64, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(child)
		if err != nil || !parents[st.ppid] {
			continue // gone meanwhile, or not ours
		}
		total += st.utime + st.stime
	}
	return total, nil
}

// machineCPU returns the busy CPU time of the whole machine, all CPUs
// (everything in /proc/stat's cpu line but idle and iowait).
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return ticks(busy), nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// postgresUser returns the credentials of the postgres OS user when we are
// root (PgBouncer refuses to run as root), or nil to run as ourselves.
func postgresUser() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root, so PgBouncer must run as the postgres OS user: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, 0, 0, fmt.Errorf("postgres OS user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// pgbouncerBinary is the installed PgBouncer.
type pgbouncerBinary struct {
	path         string
	version      string // "1.18.0"
	major, minor int
}

// keepsPrepared reports whether this PgBouncer can keep prepared
// statements in transaction mode (max_prepared_statements, 1.21 and newer).
func (b pgbouncerBinary) keepsPrepared() bool { return b.major > 1 || b.minor >= 21 }

// maxPrepared is the max_prepared_statements to configure, 0 for none.
func (b pgbouncerBinary) maxPrepared() int {
	if b.keepsPrepared() {
		return 100
	}
	return 0
}

// findPgBouncer finds pgbouncer on the PATH or in /usr/sbin (Debian) and
// asks its version.
func findPgBouncer() (pgbouncerBinary, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pgbouncer"); err != nil {
			return pgbouncerBinary{}, errors.New("pgbouncer not found: install the Debian package pgbouncer (scripts/deps.sh bench)")
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return pgbouncerBinary{}, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := regexp.MustCompile(`PgBouncer ([0-9]+)\.([0-9]+)(\.[0-9]+)?`).FindStringSubmatch(string(out))
	if m == nil {
		return pgbouncerBinary{}, fmt.Errorf("%s --version: unexpected output %q", bin, out)
	}
	b := pgbouncerBinary{path: bin, version: strings.TrimPrefix(m[0], "PgBouncer ")}
	b.major, _ = strconv.Atoi(m[1])
	b.minor, _ = strconv.Atoi(m[2])
	return b, nil
}

// pgbouncerConfig is what startPgBouncer needs.
type pgbouncerConfig struct {
	Bin        string
	Dir        string // created, and handed to the postgres OS user
	Port       int
	Backend    string // host:port of PostgreSQL
	DB         string
	User       string
	SCRAM      string // the user's SCRAM secret, from pg_authid
	PoolSize   int
	MaxPrepped int // max_prepared_statements; 0 leaves it out (PgBouncer < 1.21)
}

// startPgBouncer writes a PgBouncer configuration (transaction pooling,
// SCRAM with the secret copied from the server, so PgBouncer can log in to
// PostgreSQL with the client's proof) and runs PgBouncer in the foreground.
func startPgBouncer(c pgbouncerConfig) (*proc, error) {
	cred, uid, gid, err := postgresUser()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(c.Backend, ":")
	ini := fmt.Sprintf(`;; Written by shardproxy's bench/cmd/pgbench-compare for one benchmark run.
[databases]
%s = host=%s port=%s dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
server_tls_sslmode = disable
client_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
log_stats = 0
`, c.DB, host, port, c.DB, c.Port, filepath.Join(c.Dir, "userlist.txt"), c.PoolSize)
	if c.MaxPrepped > 0 {
		ini += fmt.Sprintf("max_prepared_statements = %d\n", c.MaxPrepped)
	}
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  fmt.Sprintf("\"%s\" \"%s\"\n", c.User, c.SCRAM),
	}
	for name, body := range files {
		path := filepath.Join(c.Dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return nil, err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(c.Dir, uid, gid); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, filepath.Join(c.Dir, "pgbouncer.ini"))
	cmd.Dir = c.Dir
	return startProc("pgbouncer", cmd, filepath.Join(c.Dir, "pgbouncer.log"), cred)
}

// benchTables is the tables: section of every shardproxy the benchmark
// starts, so that pgbench's statements are routed by key (planned, not
// passed through as they would be for unconfigured tables on one shard).
// Each pgbench table is sharded by its own key rather than made a
// reference table: accounts and history by aid (a history row lands with
// its account), branches by bid, tellers by tid. A TPC-B transaction then
// writes each row it touches on one shard, and every transaction locks
// account, teller and branch in that order, so waits across shards cannot
// form a cycle. Reference tables would put every teller and branch update
// on every shard (each TPC-B transaction two-phase, and its branch row, the
// hot spot at scale 10, locked on both servers), which is not how anyone
// would shard this schema. The select-by-key workloads read accounts only.
var benchTables = []struct{ name, key string }{
	{"pgbench_accounts", "aid"},
	{"pgbench_history", "aid"},
	{"pgbench_branches", "bid"},
	{"pgbench_tellers", "tid"},
}

// shardproxyConfig is what startShardproxy needs.
type shardproxyConfig struct {
	Name     string // of the process, in logs and reports
	Bin      string
	Dir      string
	Port     int
	Shards   []string // the shards' primaries, host:port
	User     string   // a SCRAM user, also the backend login of idleUser
	Password string
	PoolSize int
	// MaxClients is limits.max_client_connections; 0 keeps the default.
	MaxClients int
	// TLSCert and TLSKey are PEM files; empty: clients cannot use TLS.
	TLSCert, TLSKey string
	// LiteralParams turns on pool.literal_parameters.
	LiteralParams bool
	// Pipelined turns on pool.pipeline_connections (pipelineConnections)
	// and sets runtime.gomaxprocs to tunedGOMAXPROCS.
	Pipelined bool
}

// pipelineConnections is pool.pipeline_connections of the pipelined
// targets: one per core of the 2-core machine the issue measures on (2 and
// 4 were within noise of each other in a rig run, 1 a little behind).
const pipelineConnections = 2

// tunedGOMAXPROCS is runtime.gomaxprocs of the pipelined targets. The
// proxy shares the 2 cores with PostgreSQL and pgbench, and a second
// scheduler thread mostly hands goroutines back and forth between cores:
// on the rig (2026-11-27, 3 interleaved pairs) 1 instead of 2 took proxy
// CPU per transaction from 240 to 179-208 µs in TPC-B and from 29 to 22-23
// µs in pipelined selects, TPS equal or better.
const tunedGOMAXPROCS = 1

// nodeID names a target's node after the target. The targets run at the
// same time and the 2-shard ones share their shards: with one node id,
// each one's two-phase-commit recovery took the other's prepared
// transactions for its own leftovers and rolled them back (the "COMMIT
// PREPARED failed ... does not exist" warnings of earlier runs).
func nodeID(name string) string {
	if name == "" {
		return "bench"
	}
	return name
}

// startShardproxy writes a configuration (the shards, benchTables, the
// bench user with SCRAM and idleUser with trust) and runs `shardproxy
// serve` with it.
func startShardproxy(c shardproxyConfig) (*proc, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by shardproxy's bench/cmd/pgbench-compare for one benchmark run.
listen: 127.0.0.1:%d
http_listen: ""
data_dir: %s
node_id: %s
users:
  - {name: %q, password: %q, backend_user: %q, backend_password: %q}
  - {name: %q, trust: true, backend_user: %q, backend_password: %q}
shards:
`, c.Port, filepath.Join(c.Dir, "data"), nodeID(c.Name), c.User, c.Password, c.User, c.Password, idleUser, c.User, c.Password)
	for i, addr := range c.Shards {
		fmt.Fprintf(&b, "  - {id: s%d, primary: %q}\n", i+1, addr)
	}
	b.WriteString("tables:\n")
	for _, t := range benchTables {
		fmt.Fprintf(&b, "  - {name: %s, key: %s}\n", t.name, t.key)
	}
	pipes := 0
	if c.Pipelined {
		pipes = pipelineConnections
	}
	fmt.Fprintf(&b, "pool: {mode: transaction, size: %d, literal_parameters: %t, pipeline_connections: %d}\nlog: {level: warn}\n",
		c.PoolSize, c.LiteralParams, pipes)
	if c.Pipelined {
		fmt.Fprintf(&b, "runtime: {gomaxprocs: %d}\n", tunedGOMAXPROCS)
	}
	if c.MaxClients > 0 {
		fmt.Fprintf(&b, "limits: {max_client_connections: %d}\n", c.MaxClients)
	}
	if c.TLSCert != "" {
		fmt.Fprintf(&b, "tls: {cert: %q, key: %q}\n", c.TLSCert, c.TLSKey)
	}
	path := filepath.Join(c.Dir, "shardproxy.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, "serve", "--config", path)
	cmd.Dir = c.Dir
	return startProc(c.Name, cmd, filepath.Join(c.Dir, "shardproxy.log"), nil)
}

// waitReady connects through url until a query succeeds, the process
// exits, or timeout passes.
func waitReady(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ping(ctx, url)
		if err == nil {
			return nil
		}
		if perr := p.exited(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %s: %w; its log: %s", p.name, timeout, err, p.logTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping opens a connection to url and runs SELECT 1.
func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	// One round trip, nothing prepared: safe through transaction pooling.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}
