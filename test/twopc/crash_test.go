package twopc_test

// Crashes of the coordinating process at each crash point. A child process
// (this test binary, re-run with crashEnv set) opens the decision log,
// starts a distributed transaction on both shards and SIGKILLs itself from
// a hook; the test then recovers as a restarted node would: the same node
// id and data directory, a fresh process state.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/test/testenv"
	"github.com/shardproxy/shardproxy/twopc"
)

// The child's instructions, in its environment.
const (
	crashEnv = "SHARDPROXY_TWOPC_CRASH" // after-prepare or after-decision
	dirEnv   = "SHARDPROXY_TWOPC_DIR"   // its data directory's twopc/
	dsnEnv   = "SHARDPROXY_TWOPC_DSN"   // shard URLs, space-separated
	idEnv    = "SHARDPROXY_TWOPC_ID"    // the row to insert on every shard
)

// crashChild is the child's main: it must die in its hook. Its exit code
// says how it failed otherwise.
func crashChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := twopc.OpenFileLog(os.Getenv(dirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kill := func(string) { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	var hooks twopc.Hooks
	switch os.Getenv(crashEnv) {
	case "after-prepare":
		hooks.AfterPrepare = kill
	case "after-decision":
		hooks.AfterDecision = kill
	default:
		fmt.Fprintln(os.Stderr, "unknown crash point", os.Getenv(crashEnv))
		return 2
	}
	c, err := twopc.NewCoordinator(twopc.Config{NodeID: "n1", Log: log, Hooks: hooks})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var ps []twopc.Participant
	for i, dsn := range strings.Fields(os.Getenv(dsnEnv)) {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "BEGIN; "+insert(mustAtoi(os.Getenv(idEnv))))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		ps = append(ps, &participant{name: "s" + strconv.Itoa(i+1), conn: conn})
	}
	gid := c.NewGID()
	fmt.Println(gid)
	err = c.Commit(ctx, gid, ps)
	fmt.Fprintln(os.Stderr, "Commit returned instead of dying:", err)
	return 3
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestCrash(t *testing.T) {
	for _, tc := range []struct {
		point  string
		id     int
		commit bool
	}{
		{"after-prepare", 10, false},
		{"after-decision", 11, true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			ctx := testenv.TestCtx(t, 2*time.Minute)
			defer noneLeft(t, ctx)
			dir := t.TempDir()
			var dsns []string
			for _, sh := range cluster.Shards {
				dsns = append(dsns, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
			}
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+tc.point, dirEnv+"="+dir,
				dsnEnv+"="+strings.Join(dsns, " "), idEnv+"="+strconv.Itoa(tc.id))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed: %v\n%s", err, stderr.String())
			}
			gid := strings.TrimSpace(string(out))
			if node, _, ok := twopc.ParseGID(gid); !ok || node != "n1" {
				t.Fatalf("child printed %q", gid)
			}
			// The crash left the transaction prepared on both shards, its
			// row invisible everywhere.
			if got := prepared(t, ctx); !slices.Equal(got[0], []string{gid}) || !slices.Equal(got[1], []string{gid}) {
				t.Fatalf("prepared after the crash: %q", got)
			}
			if got := has(t, ctx, tc.id); !slices.Equal(got, []bool{false, false}) {
				t.Fatalf("row visible before recovery: %v", got)
			}

			// The restarted node: same id, same directory (its lock died
			// with the child).
			c, log := coordinatorIn(t, dir, "n1", twopc.Hooks{})
			if decided, _ := log.Decided(gid); decided != tc.commit {
				t.Fatalf("Decided after restart = %v, want %v", decided, tc.commit)
			}
			var cs connections
			r, err := twopc.NewRecoverer(twopc.RecovererConfig{Coordinator: c, Shards: cs.access})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []twopc.Resolution{{Shard: "s1", GID: gid, Commit: tc.commit}, {Shard: "s2", GID: gid, Commit: tc.commit}}
			if !slices.Equal(res.Resolved, want) {
				t.Fatalf("Resolved = %+v, want %+v", res.Resolved, want)
			}
			if got := has(t, ctx, tc.id); !slices.Equal(got, []bool{tc.commit, tc.commit}) {
				t.Fatalf("row on shards after recovery: %v, want committed=%v", got, tc.commit)
			}
			if p, _ := log.Pending(); len(p) != 0 {
				t.Fatalf("decisions left after recovery: %q", p)
			}
			// A second pass finds nothing to do.
			if res, err := r.RunOnce(ctx); err != nil || len(res.Resolved)+len(res.Forgotten) != 0 {
				t.Fatalf("second pass: %+v, %v", res, err)
			}
		})
	}
}
