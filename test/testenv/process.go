package testenv

// This file runs shardproxy the way an operator does: the binary built from
// this module, started as `shardproxy serve --config FILE`, as a child
// process of the test. Tests use it where the in-process node of StartNode
// would hide something (flags, configuration loading, signals, file
// descriptor limits), or where the issue asks for the real binary.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// binaryPackage is the command BuildBinary builds.
	binaryPackage = "github.com/shardproxy/shardproxy/cmd/shardproxy"
	// proxyStopGrace is how long a proxy gets to drain after SIGTERM at
	// cleanup before it is killed.
	proxyStopGrace = 10 * time.Second
	// readyTimeout bounds the wait for a started proxy's /readyz.
	readyTimeout = time.Minute
	// serveAttempts is how often ServeBinary starts the proxy when the free
	// ports it picked were taken before the proxy could bind them.
	serveAttempts = 3
)

// BuildBinary builds the shardproxy command of this module into a directory
// of tb's and returns the binary's path. There is no cache of our own: each
// call builds, and Go's build cache reduces a repeated build to a link of
// about a second. A test that starts several proxies builds once and passes
// the path to each ServeBinary.
func BuildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "shardproxy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A package path resolves against the module of the working directory,
	// which for a test is its package's directory inside this module.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, binaryPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", binaryPackage, err, out)
	}
	return bin
}

// Proxy is a shardproxy process started by ServeBinary.
type Proxy struct {
	Addr     string // PostgreSQL protocol, host:port
	HTTPAddr string // /readyz, /metrics
	proc     *Process
}

// PID is the proxy process's id (for SIGSTOP/SIGCONT in tests).
func (p *Proxy) PID() int { return p.proc.cmd.Process.Pid }

// Stop stops the proxy (SIGTERM, then SIGKILL after the grace period) and
// waits for it to exit.
func (p *Proxy) Stop(tb testing.TB) { p.proc.stop(tb, proxyStopGrace) }

// Exited reports whether the proxy process has ended.
func (p *Proxy) Exited() bool {
	exited, _ := p.proc.Exited()
	return exited
}

// Log is everything the proxy has written to stderr so far.
func (p *Proxy) Log() string { return p.proc.Stderr() }

// LogTail is the last n bytes of Log.
func (p *Proxy) LogTail(n int) string { return p.proc.StderrTail(n) }

// ServeBinary runs `bin serve --config FILE` until tb's cleanup and returns
// once the proxy's /readyz says ready. yaml is the configuration without
// listen, http_listen and data_dir: ServeBinary adds those, with free
// loopback ports and a data directory of tb's. SHARDPROXY_* variables are
// removed from the proxy's environment so that the file alone decides. At
// cleanup the proxy gets SIGTERM and, if it has not exited within 10 s,
// SIGKILL; a proxy that exited on its own before then fails the test.
func ServeBinary(tb testing.TB, bin, yaml string) *Proxy {
	tb.Helper()
	return ServeBinaryWith(tb, bin, yaml, ServeOptions{})
}

// ServeOptions adjust ServeBinaryWith.
type ServeOptions struct {
	// DataDir is kept across restarts when set (default: a new one).
	DataDir string
	// Env adds SHARDPROXY_* variables (fault injection).
	Env []string
	// MayExit: the test expects the proxy to die (a crash test); its
	// exit is not an error.
	MayExit bool
	// NoWait returns as soon as the process runs; call WaitReady. Nodes
	// of a Raft cluster become ready only together (a quorum elects the
	// leader that seeds the map).
	NoWait bool
}

// WaitReady waits until /readyz answers 200 (see ServeOptions.NoWait).
func (p *Proxy) WaitReady() error { return p.waitReady() }

// ServeBinaryWith is ServeBinary with options.
func ServeBinaryWith(tb testing.TB, bin, yaml string, opts ServeOptions) *Proxy {
	tb.Helper()
	dir := tb.TempDir()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHARDPROXY_") {
			env = append(env, kv)
		}
	}
	env = append(env, opts.Env...)
	for attempt := 1; ; attempt++ {
		p := &Proxy{Addr: FreeAddr(tb), HTTPAddr: FreeAddr(tb)}
		cfgFile := filepath.Join(dir, fmt.Sprintf("shardproxy-%d.yaml", attempt))
		full := fmt.Sprintf("listen: %s\nhttp_listen: %s\ndata_dir: %s\n%s",
			p.Addr, p.HTTPAddr, dataDir, yaml)
		if err := os.WriteFile(cfgFile, []byte(full), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", cfgFile)
		cmd.Env = env
		p.proc = StartProcess(tb, "shardproxy", cmd, proxyStopGrace)
		if opts.NoWait {
			return p
		}
		err := p.waitReady()
		if err == nil {
			tb.Cleanup(func() {
				// Runs before StartProcess's cleanup stops the process.
				if exited, err := p.proc.Exited(); exited && !opts.MayExit {
					tb.Errorf("shardproxy exited during the test: %v\n%s", err, p.LogTail(4000))
				}
			})
			return p
		}
		// freeAddr's ports are free only until it returns; another
		// process may take one before the proxy binds it.
		if attempt < serveAttempts && strings.Contains(p.Log(), "address already in use") {
			tb.Logf("shardproxy could not bind its ports, trying others: %v", err)
			continue
		}
		tb.Fatalf("starting shardproxy with\n%s\n%v\n%s", full, err, p.LogTail(4000))
	}
}

// waitReady polls /readyz until it answers 200, the process exits or
// readyTimeout passes.
func (p *Proxy) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		if exited, err := p.proc.Exited(); exited {
			return fmt.Errorf("shardproxy exited before it was ready: %v", err)
		}
		resp, err := client.Get("http://" + p.HTTPAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not ready after %s (last: %v)", readyTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Process is a child process started by StartProcess.
type Process struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // its exit status, once done is closed
}

// StartProcess starts cmd with SIGKILL as its parent-death signal, so that
// it cannot outlive a killed test binary, and stops it at tb's cleanup:
// with SIGKILL at once when grace is 0, otherwise with SIGTERM and SIGKILL
// after grace. Its stderr is kept for Stderr (and copied to the test's
// stderr when SHARDPROXY_TEST_DEBUG is set); cmd's other streams are the
// caller's to set.
func StartProcess(tb testing.TB, name string, cmd *exec.Cmd, grace time.Duration) *Process {
	tb.Helper()
	p := &Process{name: name, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stderr = p.stderr
	if os.Getenv("SHARDPROXY_TEST_DEBUG") != "" {
		cmd.Stderr = io.MultiWriter(p.stderr, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() { p.stop(tb, grace) })
	return p
}

// Exited reports whether the process has ended and, if so, its exit status.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stderr is everything the process has written to stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// StderrTail is the last n bytes of Stderr.
func (p *Process) StderrTail(n int) string {
	s := p.Stderr()
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func (p *Process) stop(tb testing.TB, grace time.Duration) {
	if exited, _ := p.Exited(); exited {
		return
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
			tb.Logf("%s (pid %d) still running %s after SIGTERM; killing it\n%s",
				p.name, p.cmd.Process.Pid, grace, p.StderrTail(4000))
		}
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

var _ io.Writer = (*syncBuffer)(nil)

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
