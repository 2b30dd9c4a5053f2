package localpg

// This file starts child processes: as which OS user, with which environment,
// and from which OS thread.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// errClusterStopped is returned when a process is started after Cluster.Stop.
var errClusterStopped = errors.New("localpg: cluster is stopped")

// spawner starts every child process of one cluster from a single goroutine
// that holds a locked OS thread for the whole life of the cluster.
//
// Why: the children get Pdeathsig=SIGKILL so that a killed test binary leaves
// no server behind. Linux sends that signal when the *thread* that forked the
// child exits, not when the process does. The Go runtime exits an OS thread
// when a goroutine that locked it returns without unlocking, and any goroutine
// may run on the thread that happened to call fork. Locking the thread only
// around cmd.Start is not enough: after UnlockOSThread the thread goes back to
// the pool, and a later LockOSThread-and-return elsewhere (in this process or
// in a library) would kill our servers at a random moment. A thread that stays
// locked to a goroutine of ours, which never returns while the cluster lives,
// cannot be taken over or terminated by anyone else. When the cluster stops,
// the goroutine returns still locked, so the thread exits and any child that
// somehow survived Stop receives SIGKILL too.
type spawner struct {
	reqs chan spawnReq
	quit chan struct{}
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{
		reqs: make(chan spawnReq),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread()
	// Deliberately never unlocked: see the type comment.
	defer close(s.done)
	for {
		select {
		case r := <-s.reqs:
			r.errc <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

// start runs cmd.Start on the spawner's thread.
func (s *spawner) start(ctx context.Context, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd: cmd, errc: errc}:
		return <-errc
	case <-s.quit:
		return errClusterStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closed reports whether close has been called.
func (s *spawner) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// close stops the spawner's goroutine and waits until its thread is gone.
// Only call it once every child has exited.
func (s *spawner) close() {
	close(s.quit)
	<-s.done
}

// identity is the OS user the server binaries run as.
type identity struct {
	cred *syscall.Credential // nil: run as ourselves
	uid  int
	gid  int
}

// lookupIdentity returns ourselves, or the `postgres` user when running as
// root (initdb and postgres refuse to run as root).
func lookupIdentity() (identity, error) {
	if os.Geteuid() != 0 {
		return identity{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return identity{}, fmt.Errorf("localpg: running as root, so servers must run as the postgres OS user, which was not found (install the Debian package postgresql-15): %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return identity{}, fmt.Errorf("localpg: postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return identity{}, fmt.Errorf("localpg: postgres user: gid %q: %w", u.Gid, err)
	}
	return identity{
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		uid:  uid,
		gid:  gid,
	}, nil
}

// chown gives path to the server user (a no-op when not running as root).
func (id identity) chown(path string) error {
	if id.cred == nil {
		return nil
	}
	if err := os.Lchown(path, id.uid, id.gid); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return nil
}

// checkReachable reports whether the server user can reach dir: every
// ancestor must be searchable by it. t.TempDir() for example is under a
// root-only directory.
func (id identity) checkReachable(dir string) error {
	if id.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		searchable := perm&0o001 != 0 ||
			(ok && int(st.Uid) == id.uid && perm&0o100 != 0) ||
			(ok && int(st.Gid) == id.gid && perm&0o010 != 0)
		if !searchable {
			return fmt.Errorf("localpg: directory %s is not reachable by the postgres OS user (%s is mode %v); use a directory under /tmp (leave Config.Dir empty for one)", dir, d, perm)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// command builds a command for one of the PostgreSQL binaries. It runs as
// the server user, in its own process group, dies with its parent thread
// (see spawner), and sees a clean environment: PG* variables of the caller
// (PGHOST, PGPORT, PGDATA...) must not leak into initdb or pg_basebackup.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = c.Dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: c.ident.cred,
	}
	return cmd
}

// run starts cmd on the spawner's thread and waits for it, returning its
// combined output in the error.
func (c *Cluster) run(ctx context.Context, cmd *exec.Cmd) error {
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := c.sp.start(ctx, cmd); err != nil {
		return fmt.Errorf("localpg: %s: %w", filepath.Base(cmd.Path), err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("localpg: %s: %w\n%s", filepath.Base(cmd.Path), err, tail(out.String(), 2048))
	}
	return nil
}

func childEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}
