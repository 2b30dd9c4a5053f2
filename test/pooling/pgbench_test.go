package pooling_test

// pgbench through `shardproxy serve` (the binary, as the issue asks) in
// transaction pooling with 4 server connections and 16 clients, in each
// query protocol and with the TPC-B-like default script: no transaction may
// fail, and PostgreSQL must never see more than 4 connections of the app
// user. The runs last 5 s each to keep the suite fast;
// SHARDPROXY_TEST_PGBENCH_SECONDS=10 gives the issue's -T 10.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/test/testenv"
)

const benchPool = 4

// benchSeconds is pgbench's -T.
func benchSeconds() string {
	if s := os.Getenv("SHARDPROXY_TEST_PGBENCH_SECONDS"); s != "" {
		return s
	}
	return "5"
}

func TestPgbench(t *testing.T) {
	proxy := testenv.ServeBinary(t, testenv.BuildBinary(t), fmt.Sprintf(`users:
  - {name: %s, password: %s}
shards:
  - {id: %s, primary: %q}
pool: {mode: transaction, size: %d}
log: {level: warn, format: text}
`, testenv.AppUser, testenv.AppPassword, cluster.Shards[0].ID, cluster.Shards[0].Primary.Addr(), benchPool))
	ctx := testenv.TestCtx(t, 3*time.Minute)
	super := testenv.Connect(t, ctx, superURL())

	// Sample the app user's server connections all along.
	pollCtx, stopPoll := context.WithCancel(ctx)
	most := make(chan int, 1)
	go func() {
		m := 0
		for pollCtx.Err() == nil {
			var c int
			if err := super.QueryRow(pollCtx, `select count(*) from pg_stat_activity
				where usename = 'app' and backend_type = 'client backend'`).Scan(&c); err == nil {
				m = max(m, c)
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		most <- m
	}()

	host, port, _ := strings.Cut(proxy.Addr, ":")
	pgbench := func(t *testing.T, args ...string) string {
		t.Helper()
		all := append([]string{"-h", host, "-p", port, "-U", testenv.AppUser}, args...)
		all = append(all, testenv.Database)
		cmd := exec.CommandContext(ctx, "pgbench", all...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+testenv.AppPassword, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
		cmd.WaitDelay = 5 * time.Second
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil {
			t.Fatalf("pgbench %s: %v\n%s\nproxy log:\n%s", strings.Join(args, " "), err, out.String(), proxy.LogTail(4000))
		}
		return out.String()
	}

	t.Run("init", func(t *testing.T) {
		out := pgbench(t, "-i", "-s", "10", "-q")
		if !strings.Contains(out, "done in") {
			t.Fatalf("pgbench -i did not finish:\n%s", out)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"select-only simple", []string{"-S", "-M", "simple"}},
		{"select-only extended", []string{"-S", "-M", "extended"}},
		{"select-only prepared", []string{"-S", "-M", "prepared"}},
		{"tpcb-like", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "-c", "16", "-j", "2", "-T", benchSeconds())
			out := pgbench(t, args...)
			processed, failed := pgbenchCounts(t, out)
			if failed != 0 || processed == 0 {
				t.Errorf("%d transactions processed, %d failed; want some and none:\n%s", processed, failed, out)
			}
			if strings.Contains(out, "aborted") {
				t.Errorf("a client aborted:\n%s", out)
			}
			t.Logf("pgbench %s: %d transactions, %s", strings.Join(args, " "), processed, tpsLine(out))
		})
	}
	stopPoll()
	if m := <-most; m > benchPool {
		t.Errorf("PostgreSQL saw up to %d connections of the app user, more than pool.size = %d", m, benchPool)
	} else {
		t.Logf("at most %d server connections of the app user", m)
	}
}

var (
	processedRE = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	failedRE    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
)

// pgbenchCounts reads pgbench's summary.
func pgbenchCounts(t *testing.T, out string) (processed, failed int) {
	t.Helper()
	p := processedRE.FindStringSubmatch(out)
	f := failedRE.FindStringSubmatch(out)
	if p == nil || f == nil {
		t.Fatalf("pgbench printed no summary:\n%s", out)
	}
	processed, _ = strconv.Atoi(p[1])
	failed, _ = strconv.Atoi(f[1])
	return processed, failed
}

func tpsLine(out string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "tps") {
			return l
		}
	}
	return ""
}
