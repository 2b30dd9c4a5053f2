// Package demo_test runs `shardproxy demo` the way a new user does: it
// prints a postgres:// URL on a line of its own, psql can create, fill and
// read a table through it, and Ctrl-C (SIGINT) stops every process the demo
// started.
package demo_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/loopback"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestDemo(t *testing.T) {
	bin := testenv.BuildBinary(t)
	port := freePort(t)
	// A directory the postgres OS user can reach (t.TempDir is root-only).
	dir, err := os.MkdirTemp("/tmp", "shardproxy-demo-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(dir) // the demo creates it
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	cmd := exec.Command(bin, "demo", "--port", fmt.Sprint(port), "--shards", "2", "--replicas", "1", "--dir", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proc := testenv.StartProcess(t, "shardproxy demo", cmd, 30*time.Second)
	ctx := testenv.TestCtx(t, 2*time.Minute)

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "postgres://") {
				urls <- sc.Text()
			}
		}
		close(urls)
	}()
	var url string
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatalf("the demo ended without printing a URL:\n%s", proc.StderrTail(4000))
		}
		url = u
	case <-ctx.Done():
		t.Fatalf("no URL within the deadline:\n%s", proc.StderrTail(4000))
	}

	out, err := exec.CommandContext(ctx, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", url,
		"-c", "create table t(id int primary key, v text)",
		"-c", "insert into t values (1,'a')",
		"-c", "select * from t").CombinedOutput()
	if err != nil {
		t.Fatalf("psql through the demo: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "1|a") {
		t.Fatalf("psql printed %q, want the row 1|a", got)
	}
	// The README's sharding walk-through: accounts is sharded by id over
	// the two shards.
	out, err = exec.CommandContext(ctx, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", url,
		"-c", "create table accounts(id bigint primary key, owner text, balance numeric(12,2))",
		"-c", "insert into accounts values (1, 'ann', 10), (2, 'bob', 20.5), (3, 'cy', 30), (4, 'di', 28)",
		"-c", "insert into accounts values (5, 'ed', 0), (6, 'flo', 0)",
		"-c", "select count(*), sum(balance) from accounts",
		"-c", "/* shard: s1 */ select count(*) > 0 and count(*) < 6 from accounts",
		"-c", "explain (route) select * from accounts where id = 7").CombinedOutput()
	if err != nil {
		t.Fatalf("psql through the demo: %v\n%s", err, out)
	}
	for _, want := range []string{"6|88.50", "\nt\n", "Route shards owning keys 7"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("psql printed\n%s\nwithout %q", out, want)
		}
	}

	pids := postgresPIDs(t, dir)
	if len(pids) == 0 {
		t.Fatalf("found no PostgreSQL process of the demo under %s", dir)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	testenv.WaitFor(t, ctx, "the demo to stop after SIGINT", func() (bool, error) {
		exited, err := proc.Exited()
		exitErr = err
		return exited, nil
	})
	if exitErr != nil {
		t.Fatalf("the demo exited with %v after SIGINT:\n%s", exitErr, proc.StderrTail(4000))
	}
	testenv.WaitFor(t, ctx, "every process of the demo to end", func() (bool, error) {
		return len(postgresPIDs(t, dir)) == 0, nil
	})
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the demo's port still accepts connections after it stopped")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// postgresPIDs lists live (non-zombie) processes whose command line names
// a data directory under dir.
func postgresPIDs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	base := filepath.Base(dir)
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil || !strings.Contains(string(b), base) {
			continue
		}
		pid := filepath.Base(filepath.Dir(e))
		if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil && isZombie(string(stat)) {
			continue
		}
		if pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
