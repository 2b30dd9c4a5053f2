package main

// This file starts the two proxies under test, PgBouncer and shardproxy, as
// child processes that cannot outlive the benchmark, and measures the CPU
// time they (and PostgreSQL) spend, from /proc.

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

// cpuOfTree returns the CPU time of a process, of its live children, and
// what it has reaped from children that exited. For a postmaster that is
// everything PostgreSQL has spent: every backend and auxiliary process is
// its direct child (each in a session of its own, so the process group does
// not find them), backends still connected count themselves, and one that
// has exited was added to the postmaster's cutime/cstime.
func cpuOfTree(pid int) (time.Duration, error) {
	parent, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := parent.utime + parent.stime + parent.cutime + parent.cstime
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(child)
		if err != nil || st.ppid != pid {
			continue // gone meanwhile, or not ours
		}
		total += st.utime + st.stime
	}
	return ticks(total), nil
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

// pgbouncerVersion returns the installed PgBouncer's major and minor version.
func pgbouncerVersion(bin string) (string, int, int, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", 0, 0, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := regexp.MustCompile(`PgBouncer ([0-9]+)\.([0-9]+)(\.[0-9]+)?`).FindStringSubmatch(string(out))
	if m == nil {
		return "", 0, 0, fmt.Errorf("%s --version: unexpected output %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return strings.TrimPrefix(m[0], "PgBouncer "), major, minor, nil
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

// shardproxyConfig is what startShardproxy needs.
type shardproxyConfig struct {
	Bin      string
	Dir      string
	Port     int
	Backend  string
	User     string
	Password string
	PoolSize int
}

// startShardproxy writes a one-shard configuration and runs `shardproxy
// serve` with it.
func startShardproxy(c shardproxyConfig) (*proc, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf(`# Written by shardproxy's bench/cmd/pgbench-compare for one benchmark run.
listen: 127.0.0.1:%d
http_listen: ""
data_dir: %s
node_id: bench
users:
  - {name: %q, password: %q, backend_user: %q, backend_password: %q}
shards:
  - {id: s1, primary: %q}
pool: {mode: transaction, size: %d}
log: {level: warn}
`, c.Port, filepath.Join(c.Dir, "data"), c.User, c.Password, c.User, c.Password, c.Backend, c.PoolSize)
	path := filepath.Join(c.Dir, "shardproxy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, "serve", "--config", path)
	cmd.Dir = c.Dir
	return startProc("shardproxy", cmd, filepath.Join(c.Dir, "shardproxy.log"), nil)
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
