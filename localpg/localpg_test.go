package localpg_test

// These tests start real PostgreSQL servers: they need the Debian package
// postgresql-15 and fail (not skip) without it.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/localpg"
)

// testLogger sends the harness's log to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// query runs sql and returns the first column of the first row ("" if none).
func query(ctx context.Context, connString, sql string) (string, error) {
	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	for _, r := range results {
		if len(r.Rows) > 0 {
			return string(r.Rows[0][0]), nil
		}
	}
	return "", nil
}

func mustQuery(t *testing.T, connString, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := query(ctx, connString, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procsMatching lists the live processes whose command line (split into
// arguments) satisfies match. Zombies and kernel threads have none.
func procsMatching(match func(args []string) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// serverProcs lists a server's processes: the postmaster, whose arguments
// name its data directory, and its children, whose titles carry the
// cluster_name "<base of Dir>/<name>".
func serverProcs(c *localpg.Cluster, s *localpg.Server) []int {
	title := "postgres: " + filepath.Base(c.Dir) + "/" + s.Name() + ":"
	return procsMatching(func(args []string) bool {
		return strings.HasPrefix(args[0], title) || slices.Contains(args, s.DataDir)
	})
}

// clusterProcs lists every process of the cluster in dir.
func clusterProcs(dir string) []int {
	title := "postgres: " + filepath.Base(dir) + "/"
	return procsMatching(func(args []string) bool {
		if strings.HasPrefix(args[0], title) {
			return true
		}
		for _, a := range args {
			if strings.HasPrefix(a, dir+"/") {
				return true
			}
		}
		return false
	})
}

func TestCluster(t *testing.T) {
	began := time.Now()
	c := localpg.StartForTest(t, localpg.Config{
		Shards:     2,
		Replicas:   1,
		Logger:     testLogger(t),
		Roles:      []localpg.Role{{Name: "app", Password: "app"}},
		Databases:  []string{"app"},
		TrustUsers: []string{"bench"},
	})
	t.Logf("2 shards x 1 replica ready in %v", time.Since(began).Round(time.Millisecond))

	if len(c.Shards) != 2 {
		t.Fatalf("got %d shards, want 2", len(c.Shards))
	}
	for i, sh := range c.Shards {
		if want := "s" + strconv.Itoa(i+1); sh.ID != want {
			t.Errorf("shard %d: ID %q, want %q", i, sh.ID, want)
		}
		if len(sh.Replicas) != 1 {
			t.Fatalf("shard %s: %d replicas, want 1", sh.ID, len(sh.Replicas))
		}
	}
	if len(c.Dir) > 40 || !strings.HasPrefix(c.Dir, "/tmp/") {
		t.Errorf("default Dir %q: want a short directory under /tmp", c.Dir)
	}

	t.Run("primaries answer app over SCRAM", func(t *testing.T) {
		for _, sh := range c.Shards {
			p := sh.Primary
			if got := mustQuery(t, c.ConnString(p, "app", "app", "app"), "select 1"); got != "1" {
				t.Errorf("%s: select 1 = %q", sh.ID, got)
			}
			// The password is checked, and stored as SCRAM.
			_, err := query(context.Background(), c.ConnString(p, "app", "wrong", "app"), "select 1")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
				t.Errorf("%s: wrong password: err %v, want SQLSTATE 28P01", sh.ID, err)
			}
			got := mustQuery(t, c.SuperConnString(p, "postgres"), "select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'app'")
			if got != "t" {
				t.Errorf("%s: app's password is not stored as SCRAM", sh.ID)
			}
			got = mustQuery(t, c.SuperConnString(p, "postgres"), "select pg_get_userbyid(datdba) from pg_database where datname = 'app'")
			if got != "app" {
				t.Errorf("%s: database app owned by %q, want app", sh.ID, got)
			}
			for setting, want := range map[string]string{
				"wal_level": "logical", "max_prepared_transactions": "64", "max_connections": "500",
				"shared_buffers": "32MB", "fsync": "off", "listen_addresses": "127.0.0.1",
				"password_encryption": "scram-sha-256", "lc_collate": "C", "server_encoding": "UTF8",
			} {
				if got := mustQuery(t, c.SuperConnString(p, "postgres"), "show "+setting); got != want {
					t.Errorf("%s: %s = %q, want %q", sh.ID, setting, got, want)
				}
			}
		}
	})

	t.Run("trust user logs in without password", func(t *testing.T) {
		for _, s := range c.Servers() {
			if got := mustQuery(t, c.ConnString(s, "bench", "", "app"), "select current_user"); got != "bench" {
				t.Errorf("%s: current_user = %q", s.Name(), got)
			}
		}
		// Others still need their password.
		_, err := query(context.Background(), c.ConnString(c.Shards[0].Primary, "app", "", "app"), "select 1")
		if err == nil {
			t.Error("app logged in without a password")
		}
	})

	t.Run("replicas are in recovery and replicate", func(t *testing.T) {
		for _, sh := range c.Shards {
			p, r := sh.Primary, sh.Replicas[0]
			if got := mustQuery(t, c.SuperConnString(p, "postgres"), "select pg_is_in_recovery()"); got != "f" {
				t.Errorf("%s: primary in recovery: %q", sh.ID, got)
			}
			if got := mustQuery(t, c.SuperConnString(r, "postgres"), "select pg_is_in_recovery()"); got != "t" {
				t.Errorf("%s: replica in recovery: %q", sh.ID, got)
			}
			if got := mustQuery(t, c.SuperConnString(p, "postgres"), "select application_name from pg_stat_replication where state = 'streaming'"); got != r.Name() {
				t.Errorf("%s: streaming replica %q, want %q", sh.ID, got, r.Name())
			}
			mustQuery(t, c.ConnString(p, "app", "app", "app"), "create table t_"+sh.ID+" (k int primary key, v text); insert into t_"+sh.ID+" values (1, 'one')")
			eventually(t, 10*time.Second, func() error {
				got, err := query(context.Background(), c.ConnString(r, "app", "app", "app"), "select v from t_"+sh.ID+" where k = 1")
				if err == nil && got != "one" {
					err = fmt.Errorf("got %q", got)
				}
				return err
			})
		}
	})

	t.Run("kill and restart", func(t *testing.T) {
		sh := c.Shards[1]
		for _, s := range []*localpg.Server{sh.Replicas[0], sh.Primary} {
			if procs := serverProcs(c, s); len(procs) < 3 || !slices.Contains(procs, s.PID()) {
				t.Fatalf("%s: processes %v: want the postmaster %d and its children", s.Name(), procs, s.PID())
			}
			if err := s.Kill(); err != nil {
				t.Fatal(err)
			}
			if procs := serverProcs(c, s); len(procs) > 0 {
				t.Errorf("%s: processes left after Kill: %v", s.Name(), procs)
			}
			if s.PID() != 0 {
				t.Errorf("%s: PID after Kill = %d", s.Name(), s.PID())
			}
			if _, err := query(context.Background(), c.SuperConnString(s, "postgres"), "select 1"); err == nil {
				t.Errorf("%s: answers after Kill", s.Name())
			}
		}
		ctx := context.Background()
		if err := sh.Primary.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sh.Replicas[0].Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sh.Primary.Start(ctx); err == nil {
			t.Error("starting a running server succeeded")
		}
		if err := sh.WaitStreaming(ctx); err != nil {
			t.Fatal(err)
		}
		// Data written before the crash survived (synchronous_commit=off
		// loses at most the last moments; the table was created long ago).
		if got := mustQuery(t, c.ConnString(sh.Primary, "app", "app", "app"), "select v from t_s2"); got != "one" {
			t.Errorf("after restart: %q", got)
		}
		mustQuery(t, c.ConnString(sh.Primary, "app", "app", "app"), "insert into t_s2 values (2, 'two')")
		eventually(t, 10*time.Second, func() error {
			got, err := query(ctx, c.ConnString(sh.Replicas[0], "app", "app", "app"), "select v from t_s2 where k = 2")
			if err == nil && got != "two" {
				err = fmt.Errorf("got %q", got)
			}
			return err
		})
		// Stop and Start (clean shutdown) as well.
		if err := sh.Replicas[0].Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sh.Replicas[0].Stop(ctx); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := sh.Replicas[0].Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sh.WaitStreaming(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		pids := map[string]int{}
		for _, s := range c.Servers() {
			pids[s.Name()] = s.PID()
		}
		began := time.Now()
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped in %v", time.Since(began).Round(time.Millisecond))
		if procs := clusterProcs(c.Dir); len(procs) > 0 {
			t.Errorf("processes left after Stop: %v", procs)
		}
		for name, pid := range pids {
			// The postmaster was our child and has been reaped: not even a
			// zombie is left.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%s: postmaster %d: kill(0) = %v, want ESRCH", name, pid, err)
			}
		}
		if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Dir %s not removed: %v", c.Dir, err)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := c.Shards[0].Primary.Start(context.Background()); err == nil {
			t.Error("Start after cluster Stop succeeded")
		}
	})
}

// TestSharedTemplate starts two clusters at once from one TemplateDir: one
// runs initdb, the other waits and copies.
func TestSharedTemplate(t *testing.T) {
	localpg.RequirePostgres(t)
	tmpl, err := os.MkdirTemp("/tmp", "shardpg-tmpl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmpl) })

	// Start, not StartForTest: t.Fatal must not be called off the test's
	// goroutine.
	var wg sync.WaitGroup
	clusters := make([]*localpg.Cluster, 2)
	errs := make([]error, 2)
	for i := range clusters {
		wg.Go(func() {
			clusters[i], errs[i] = localpg.Start(context.Background(), localpg.Config{TemplateDir: tmpl, Logger: testLogger(t)})
		})
	}
	wg.Wait()
	for i, c := range clusters {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	if clusters[0].SuperPassword != clusters[1].SuperPassword {
		t.Error("clusters sharing a template have different superuser passwords")
	}
	for _, c := range clusters {
		if got := mustQuery(t, c.SuperConnString(c.Shards[0].Primary, "postgres"), "select 1"); got != "1" {
			t.Errorf("select 1 = %q", got)
		}
	}
	began := time.Now()
	c := localpg.StartForTest(t, localpg.Config{TemplateDir: tmpl})
	t.Logf("third cluster from the cached template ready in %v", time.Since(began).Round(time.Millisecond))
	if c.SuperPassword != clusters[0].SuperPassword {
		t.Error("template was made again")
	}
}

// TestTakenPort checks that a server whose port was taken while it was
// stopped fails to start with an error that carries its log.
func TestTakenPort(t *testing.T) {
	c := localpg.StartForTest(t, localpg.Config{Logger: testLogger(t), StartTimeout: 10 * time.Second})
	p := c.Shards[0].Primary
	ctx := context.Background()
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = p.Start(ctx)
	if err == nil {
		t.Fatal("started on a taken port")
	}
	t.Logf("expected error: %v", err)
	if !strings.Contains(err.Error(), "could not bind") || !strings.Contains(err.Error(), p.LogFile()) {
		t.Errorf("error lacks the log tail: %v", err)
	}
	l.Close()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPortRetry checks that a server whose first port turns out to be taken
// is started on another one.
func TestPortRetry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	calls := 0
	cfg := localpg.WithPortPicker(localpg.Config{Logger: testLogger(t)}, func() (int, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return taken, nil
		}
		return localpg.FreePort()
	})
	c := localpg.StartForTest(t, cfg)
	p := c.Shards[0].Primary
	if p.Port == taken || calls != 2 {
		t.Errorf("port %d after %d picks; want a second pick, not the taken %d", p.Port, calls, taken)
	}
	if got := mustQuery(t, c.SuperConnString(p, "postgres"), "select 1"); got != "1" {
		t.Errorf("select 1 = %q", got)
	}
}

// TestParentDeath checks that servers die with a test binary that is killed
// (no Stop, no cleanup): the parent-death signal reaches the postmaster.
func TestParentDeath(t *testing.T) {
	if os.Getenv("LOCALPG_PARENT_DEATH_CHILD") == "1" {
		c, err := localpg.Start(context.Background(), localpg.Config{Replicas: 1})
		if err != nil {
			fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
			os.Exit(1)
		}
		fmt.Println("ready", c.Dir)
		// Start a goroutine that locks its thread and exits, as a
		// careless library might: it must not take a server with it.
		done := make(chan struct{})
		go func() { lockAndExit(); close(done) }()
		<-done
		select {}
	}

	localpg.RequirePostgres(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestParentDeath$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOCALPG_PARENT_DEATH_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	var fields []string
	for sc.Scan() {
		if fields = strings.Fields(sc.Text()); len(fields) > 0 && (fields[0] == "ready" || fields[0] == "error") {
			break
		}
	}
	if len(fields) != 2 || fields[0] != "ready" {
		t.Fatalf("child did not start its cluster: %q", fields)
	}
	dir := fields[1]
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The servers survived the goroutine that locked its thread and exited.
	time.Sleep(100 * time.Millisecond)
	for _, name := range []string{"/s1", "/s1r1"} {
		if procs := procsMatching(func(args []string) bool { return slices.Contains(args, dir+name) }); len(procs) != 1 {
			t.Fatalf("postmaster of %s: found %v", dir+name, procs)
		}
	}
	if procs := clusterProcs(dir); len(procs) < 6 {
		t.Fatalf("cluster processes: %v, want two postmasters and their children", procs)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, 10*time.Second, func() error {
		if procs := clusterProcs(dir); len(procs) > 0 {
			return fmt.Errorf("processes of the killed test's cluster still alive: %v", procs)
		}
		return nil
	})
}

// lockAndExit runs on a goroutine that locks its OS thread and returns
// without unlocking, which makes the Go runtime terminate the thread.
func lockAndExit() {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		runtime.LockOSThread()
	}()
	<-ch
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  localpg.Config
		want string // substring of the error; "" for valid
	}{
		{"zero", localpg.Config{}, ""},
		{"full", localpg.Config{Shards: 2, Replicas: 1, Roles: []localpg.Role{{Name: "app", Password: "app"}}, Databases: []string{"app"}, TrustUsers: []string{"bench"}, Settings: map[string]string{"work_mem": "8MB", "auto_explain.log_min_duration": "0"}}, ""},
		{"negative shards", localpg.Config{Shards: -1}, "Shards"},
		{"negative replicas", localpg.Config{Replicas: -1}, "Replicas"},
		{"empty role", localpg.Config{Roles: []localpg.Role{{}}}, "empty role"},
		{"duplicate role", localpg.Config{Roles: []localpg.Role{{Name: "a"}, {Name: "a"}}}, "twice"},
		{"role postgres", localpg.Config{Roles: []localpg.Role{{Name: "postgres"}}}, "postgres"},
		{"trust user is a role", localpg.Config{Roles: []localpg.Role{{Name: "a"}}, TrustUsers: []string{"a"}}, "also a role"},
		{"quote in name", localpg.Config{Databases: []string{`a"b`}}, "double quote"},
		{"database postgres", localpg.Config{Databases: []string{"postgres"}}, "already exists"},
		{"bad setting", localpg.Config{Settings: map[string]string{"a b": "1"}}, "not valid"},
		{"multi-line value", localpg.Config{Settings: map[string]string{"work_mem": "1\n2"}}, "one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFindBinDir(t *testing.T) {
	_, err := localpg.FindBinDir(t.TempDir())
	if !errors.Is(err, localpg.ErrNoPostgres) {
		t.Errorf("empty override: err %v, want ErrNoPostgres", err)
	}
	t.Setenv(localpg.EnvBinDir, "")
	dir, err := localpg.FindBinDir("")
	if err != nil {
		t.Fatalf("%v (install %s)", err, localpg.DebianPackage)
	}
	if !strings.Contains(dir, "/15/") {
		t.Logf("using %s, not PostgreSQL 15", dir)
	}
}

func TestUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands directories to the postgres user")
	}
	localpg.RequirePostgres(t)
	_, err := localpg.Start(context.Background(), localpg.Config{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("t.TempDir(): err %v, want one saying the postgres user cannot reach it", err)
	}
}
