package localpg

// This file runs one PostgreSQL server: its configuration files, start with
// port retry and readiness wait, fast shutdown, kill.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Server is one PostgreSQL server (a primary or a replica) of a Cluster.
// Its data directory is <Dir>/<name> and its processes are titled
// "postgres: <base of Dir>/<name>: ..." (cluster_name), so ps tells them
// apart.
type Server struct {
	Host    string // always 127.0.0.1
	Port    int
	DataDir string // also the Unix socket directory

	name    string // "s1" for a primary, "s1r1" for its first replica
	c       *Cluster
	replica bool

	mu   sync.Mutex // serialises Start, Stop and Kill
	proc *process   // the running postmaster; nil when stopped
}

// process is a started postmaster.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the postmaster has been reaped
	err  error         // cmd.Wait's result; read only after done is closed
}

// exitErr turns a nil Wait result into an error to report.
func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("port already in use")

// confFile is included by every server's postgresql.conf (see the template).
const confFile = "shardproxy.conf"

// logFile is where a server's stderr goes, inside its data directory.
const logFile = "postgres.log"

// Addr returns host:port, e.g. "127.0.0.1:54321".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Name returns the server's name: "s1" for the primary of shard s1, "s1r1"
// for its first replica. Replicas use it as application_name.
func (s *Server) Name() string { return s.name }

// IsReplica reports whether the server is a streaming replica.
func (s *Server) IsReplica() bool { return s.replica }

// LogFile returns the path of the server's log (its stderr).
func (s *Server) LogFile() string { return filepath.Join(s.DataDir, logFile) }

// clusterName is the server's cluster_name, which PostgreSQL puts in its
// processes' titles: "postgres: <base of Dir>/<name>: checkpointer".
func (s *Server) clusterName() string {
	n := filepath.Base(s.c.Dir) + "/" + s.name
	if len(n) > 63 {
		n = n[len(n)-63:]
	}
	return n
}

// PID returns the postmaster's process id (also its process group id), or 0
// when the server is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Start starts a stopped or killed server again on the same port and waits
// until it accepts connections. A restarted replica reconnects to its
// primary by itself; Shard.WaitStreaming waits for that.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("localpg: server %s is already running", s.name)
	}
	if s.c.sp.closed() {
		return errClusterStopped
	}
	return s.launch(ctx)
}

// startNew starts the server for the first time on a free port, trying
// other ports while the chosen one turns out to be taken (between the probe
// and the bind another process may take it).
func (s *Server) startNew(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	const attempts = 5
	for i := 1; ; i++ {
		port, err := s.c.cfg.pickPort()
		if err != nil {
			return err
		}
		s.Port = port
		err = s.launch(ctx)
		if err == nil || !errors.Is(err, errPortInUse) || i == attempts {
			return err
		}
		s.c.log.Warn("localpg: port taken, retrying", "server", s.name, "port", port)
	}
}

// launch writes the configuration, starts the postmaster and waits until it
// accepts connections. s.mu is held.
func (s *Server) launch(ctx context.Context) error {
	began := time.Now()
	if err := s.writeConfig(); err != nil {
		return err
	}
	f, err := os.OpenFile(s.LogFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("localpg: server %s: %w", s.name, err)
	}
	logOffset, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		err = s.c.ident.chown(f.Name())
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("localpg: server %s: %w", s.name, err)
	}

	// No context: the server outlives Start's ctx; Stop and Kill end it.
	cmd := s.c.command(nil, filepath.Join(s.c.binDir, "postgres"), "-D", s.DataDir)
	cmd.Stdout = f
	cmd.Stderr = f
	err = s.c.sp.start(ctx, cmd)
	f.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("localpg: server %s: starting postgres: %w", s.name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	if err := s.waitReady(ctx, p, logOffset); err != nil {
		s.kill(p)
		s.proc = nil
		return err
	}
	s.c.log.Info("localpg: server ready", "server", s.name, "addr", s.Addr(), "pid", cmd.Process.Pid, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitReady polls until the server accepts a connection as the superuser,
// the postmaster exits, or StartTimeout passes.
func (s *Server) waitReady(ctx context.Context, p *process, logOffset int64) error {
	timeout := s.c.cfg.StartTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := pgconn.ParseConfig(s.c.SuperConnString(s, "postgres"))
	if err != nil {
		return fmt.Errorf("localpg: server %s: %w", s.name, err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return s.startError(fmt.Errorf("postgres exited during start-up: %w", exitErr(p.err)), logOffset)
		default:
		}
		// An attempt ends early if the postmaster exits: whatever holds the
		// port then may accept the connection and never answer.
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		go func() {
			select {
			case <-p.done:
				acancel()
			case <-actx.Done():
			}
		}()
		conn, err := pgconn.ConnectConfig(actx, cfg)
		acancel()
		if err == nil {
			return conn.Close(ctx)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" { // 57P03: starting up, not yet consistent
			return s.startError(fmt.Errorf("connecting as postgres: %w", err), logOffset)
		}
		select {
		case <-p.done:
		case <-tick.C:
		case <-ctx.Done():
			return s.startError(fmt.Errorf("not accepting connections after %v: %w", timeout, err), logOffset)
		}
	}
}

// startError wraps err with the server's identity and the log written since
// logOffset, and marks a failure to bind the port with errPortInUse.
func (s *Server) startError(err error, logOffset int64) error {
	log := s.logSince(logOffset)
	if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("localpg: server %s (port %d, %s): %w\n--- tail of %s ---\n%s", s.name, s.Port, s.DataDir, err, s.LogFile(), tail(log, 3000))
}

// logSince returns the server log from offset on.
func (s *Server) logSince(offset int64) string {
	f, err := os.Open(s.LogFile())
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(b)
}

// Stop shuts the server down (fast shutdown: SIGINT), waits up to
// Config.StopTimeout or until ctx is done, then kills it like Kill. It
// returns once no process of the server is left. Stopping a stopped server
// does nothing; a server that had exited on its own reports how.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	select {
	case <-p.done:
		return fmt.Errorf("localpg: server %s had exited by itself: %w\n--- tail of %s ---\n%s", s.name, exitErr(p.err), s.LogFile(), tail(s.logSince(0), 3000))
	default:
	}
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.c.log.Warn("localpg: cannot signal server", "server", s.name, "err", err)
	}
	timer := time.NewTimer(s.c.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		// A postmaster exits from a shutdown only after all its children.
		s.c.log.Info("localpg: server stopped", "server", s.name, "took", time.Since(began).Round(time.Millisecond))
		return nil
	case <-timer.C:
		s.c.log.Warn("localpg: fast shutdown timed out, killing", "server", s.name, "timeout", s.c.cfg.StopTimeout)
	case <-ctx.Done():
		s.c.log.Warn("localpg: stop cancelled, killing", "server", s.name, "err", ctx.Err())
	}
	s.kill(p)
	return nil
}

// Kill kills the postmaster, its process group and its children with
// SIGKILL (a crash, as far as PostgreSQL is concerned) and waits until no
// process of the server is left.
// Start brings it back (with crash recovery).
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return fmt.Errorf("localpg: server %s is not running", s.name)
	}
	s.proc = nil
	s.kill(p)
	s.c.log.Info("localpg: server killed", "server", s.name)
	return nil
}

// kill ends p for good and waits until none of its processes is left.
//
// The postmaster's process group is not enough: PostgreSQL's child
// processes make themselves session leaders (setsid), and once the
// postmaster is dead they belong to PID 1 and cannot be found by parentage
// any more. So the postmaster is frozen first (it forks nothing new and
// reaps nothing, so its children's pids cannot be reused), its children are
// listed and killed, then the postmaster itself.
func (s *Server) kill(p *process) {
	pid := p.cmd.Process.Pid
	var children []int
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		children = childrenOf(pid)
		for _, c := range children {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			s.c.log.Warn("localpg: cannot kill server", "server", s.name, "err", err)
		}
	}
	<-p.done
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range children {
		for alive(c) {
			if time.Now().After(deadline) {
				s.c.log.Warn("localpg: a process of a killed server lingers", "server", s.name, "pid", c)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var children []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(child); ok && st.ppid == pid && st.state != 'Z' && st.state != 'X' {
			children = append(children, child)
		}
	}
	return children
}

// alive reports whether pid exists and is not a zombie (PID 1 in a
// container may be slow to reap, or never reap, orphans).
func alive(pid int) bool {
	st, ok := procStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

type stat struct {
	state byte
	ppid  int
}

// procStat reads the state and parent of pid from /proc/pid/stat.
func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return stat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return stat{}, false
	}
	return stat{state: f[0][0], ppid: ppid}, true
}

// writeConfig writes the server's own settings (shardproxy.conf, included by
// postgresql.conf) and pg_hba.conf. They are rewritten at every start, so a
// copied template or base backup gets its own port and socket directory.
func (s *Server) writeConfig() error {
	cfg := s.c.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by shardproxy's localpg for server %s; rewritten at every start.\n", s.name)
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quoteConf(v)) }
	set("listen_addresses", s.Host)
	set("port", strconv.Itoa(s.Port))
	set("unix_socket_directories", s.DataDir)
	set("cluster_name", s.clusterName())
	set("wal_level", "logical")
	// Each pg_basebackup -X stream takes two senders while it runs.
	set("max_wal_senders", strconv.Itoa(max(10, 3*cfg.Replicas+4)))
	set("max_replication_slots", "10")
	set("max_prepared_transactions", "64")
	set("max_connections", "500")
	set("shared_buffers", "32MB")
	set("password_encryption", "scram-sha-256")
	set("logging_collector", "off")
	set("log_destination", "stderr")
	set("log_line_prefix", "%m [%p] %q%u@%d ")
	set("hot_standby", "on")
	// A restarted primary is found again quickly by its replicas.
	set("wal_retrieve_retry_interval", "100ms")
	// A replica stopped for a while can catch up without a slot.
	set("wal_keep_size", "128MB")
	if !cfg.Durable {
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	keys := make([]string, 0, len(cfg.Settings))
	for k := range cfg.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		b.WriteString("# Config.Settings\n")
	}
	for _, k := range keys {
		set(k, cfg.Settings[k])
	}
	if err := s.c.writeFile(filepath.Join(s.DataDir, confFile), b.String()); err != nil {
		return err
	}

	b.Reset()
	b.WriteString("# Written by shardproxy's localpg; rewritten at every start.\n")
	b.WriteString("local  all          all                  trust\n")
	b.WriteString("local  replication  all                  trust\n")
	b.WriteString("host   replication  all   127.0.0.1/32   scram-sha-256\n")
	for _, u := range cfg.TrustUsers {
		fmt.Fprintf(&b, "host   all          %s   127.0.0.1/32   trust\n", quoteIdent(u))
	}
	b.WriteString("host   all          all   127.0.0.1/32   scram-sha-256\n")
	return s.c.writeFile(filepath.Join(s.DataDir, "pg_hba.conf"), b.String())
}

// quoteConf quotes a postgresql.conf value; any type may be quoted.
func quoteConf(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
}

// quoteIdent quotes an SQL identifier (also valid in pg_hba.conf, where
// names are checked not to contain double quotes).
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes an SQL string literal (standard_conforming_strings
// is on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// tail returns about the last n bytes of s, starting at a line boundary.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}
