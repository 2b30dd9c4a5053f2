package main

// This file measures what an idle client costs shardproxy in memory (the
// idle-clients workload): a fresh proxy (one shard, the bench tables), its
// resident set once it has warmed up and has no clients, then again once
// N clients (10,000 by default) have logged in and wait idle, from this
// process, which is not the proxy's. The clients speak just enough of the
// protocol to be real sessions: a StartupMessage as the trust user, then
// everything up to ReadyForQuery. Once in plain TCP and once with TLS.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/loopback"
	"github.com/shardproxy/shardproxy/testcert"
)

const (
	// idleParallel bounds the logins in flight: enough to open 10,000
	// clients in seconds, few enough not to overflow the listen backlog
	// or to queue logins behind the proxy's 20 server connections for long
	// (each login reads the server's settings on one of them).
	idleParallel = 64
	// idleSpareFiles is descriptors beyond one per client, here and in the
	// proxy: server connections, listeners, log files.
	idleSpareFiles = 256
	// idleLoginTimeout bounds one client's connect, TLS handshake and login.
	idleLoginTimeout = 30 * time.Second
	// How the resident set is judged settled: sampled every
	// memPollInterval, it has moved by at most memTolerance over the last
	// memWindow samples; memDeadline bounds the wait.
	memPollInterval = 100 * time.Millisecond
	memWindow       = 10
	memDeadline     = 15 * time.Second
)

// idleTarget is the goal of issue 6 for an idle client's memory.
const idleTargetKiB = 32

// memory is a process's resident set, from /proc/PID/status.
type memory struct {
	RSSKiB  int64 `json:"vm_rss_kib"`   // VmRSS: all resident pages
	AnonKiB int64 `json:"rss_anon_kib"` // RssAnon: heap and stacks, no mapped files
}

// idleResult is one idle-client measurement.
type idleResult struct {
	Clients int    `json:"clients"`
	TLS     bool   `json:"tls"`
	Before  memory `json:"before"` // warmed up, no clients
	After   memory `json:"after"`  // every client idle after ReadyForQuery
	// Settled is false when the resident set was still moving at the
	// deadline (the last sample is used then).
	Settled     bool    `json:"settled"`
	OpenSeconds float64 `json:"open_seconds"` // to log every client in
	Error       string  `json:"error,omitempty"`
}

func (r idleResult) ok() bool { return r.Error == "" && r.Clients > 0 }

// perClientKiB is the growth of VmRSS and RssAnon per idle client.
func (r idleResult) perClientKiB() (rss, anon float64) {
	n := float64(r.Clients)
	return float64(r.After.RSSKiB-r.Before.RSSKiB) / n, float64(r.After.AnonKiB-r.Before.AnonKiB) / n
}

func (r idleResult) label() string {
	if r.TLS {
		return "TLS"
	}
	return "plain TCP"
}

// raiseNoFile raises RLIMIT_NOFILE's soft limit to the hard one (children
// inherit it) and returns both.
func raiseNoFile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, fmt.Errorf("setrlimit NOFILE to %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, lim.Max, nil
}

// idlePhase measures idle clients in plain TCP and, with -idle-tls, TLS,
// each against a proxy of its own.
func (b *bench) idlePhase(ctx context.Context) {
	variants := []bool{false}
	if b.o.idleTLS {
		variants = append(variants, true)
	}
	for _, useTLS := range variants {
		r := b.measureIdle(ctx, useTLS)
		if ctx.Err() != nil {
			return
		}
		b.rep.Idle = append(b.rep.Idle, r)
		if r.Error != "" {
			fmt.Fprintf(os.Stderr, "  idle clients (%s): ERROR %s\n", r.label(), r.Error)
			continue
		}
		rss, anon := r.perClientKiB()
		fmt.Fprintf(os.Stderr, "  idle clients (%s): %d clients in %.1fs, VmRSS %d -> %d KiB (%.1f KiB/client), RssAnon %d -> %d KiB (%.1f KiB/client)\n",
			r.label(), r.Clients, r.OpenSeconds, r.Before.RSSKiB, r.After.RSSKiB, rss, r.Before.AnonKiB, r.After.AnonKiB, anon)
	}
}

func (b *bench) measureIdle(ctx context.Context, useTLS bool) idleResult {
	n := b.o.idleClients
	res := idleResult{Clients: n, TLS: useTLS}
	fail := func(err error) idleResult {
		res.Error = err.Error()
		return res
	}
	name := "shardproxy-idle"
	if useTLS {
		name += "-tls"
	}
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	cfg := shardproxyConfig{
		Name: name, Bin: b.proxyBin, Dir: dir, Shards: []string{b.cluster.Shards[0].Primary.Addr()},
		User: benchUser, Password: benchUser, PoolSize: poolSize,
		MaxClients: n + 2*poolSize + idleSpareFiles,
	}
	var tlsConf *tls.Config
	if useTLS {
		var err error
		cfg.TLSCert, cfg.TLSKey, tlsConf, err = selfSignedCert(dir)
		if err != nil {
			return fail(err)
		}
	}
	var err error
	if cfg.Port, err = loopback.FreePort(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "idle clients (%s): starting %s...\n", res.label(), name)
	p, err := startShardproxy(cfg)
	if err != nil {
		return fail(err)
	}
	defer b.stopAndKeepLogs(p)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", idleUser, addr, benchDB)
	if err := waitReady(ctx, p, url, 15*time.Second); err != nil {
		return fail(err)
	}

	// Warm up: as many clients as the pool has server connections, twice
	// over, log in at once and leave, so that the server connections, the
	// login path and the catalog are in place before the first sample.
	warm, err := openClients(ctx, addr, tlsConf, 2*poolSize)
	closeClients(warm)
	if err != nil {
		return fail(fmt.Errorf("warming up: %w", err))
	}
	before, settled, err := waitSettled(ctx, p)
	if err != nil {
		return fail(err)
	}
	res.Before = before

	fmt.Fprintf(os.Stderr, "idle clients (%s): opening %d...\n", res.label(), n)
	began := time.Now()
	conns, err := openClients(ctx, addr, tlsConf, n)
	defer closeClients(conns)
	res.OpenSeconds = time.Since(began).Seconds()
	if err != nil {
		return fail(err)
	}
	after, settled2, err := waitSettled(ctx, p)
	if err != nil {
		return fail(err)
	}
	if perr := p.exited(); perr != nil {
		return fail(perr)
	}
	res.After, res.Settled = after, settled && settled2
	return res
}

// openClients logs n clients in to the proxy at addr, idleParallel at a
// time, over TLS when conf is not nil. On the first failure it stops,
// closes what it opened and returns the error, saying how many were open.
func openClients(ctx context.Context, addr string, conf *tls.Config, n int) ([]net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]net.Conn, n)
	var next, opened atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(idleParallel, n) {
		wg.Go(func() {
			buf := make([]byte, 512)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := login(ctx, addr, conf, buf)
				if err != nil {
					once.Do(func() {
						firstErr = fmt.Errorf("client %d of %d (%d logged in): %w", i+1, n, opened.Load(), err)
						cancel()
					})
					return
				}
				conns[i] = c
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeClients(conns)
		return nil, firstErr
	}
	return conns, nil
}

// closeClients says Terminate and hangs up.
func closeClients(conns []net.Conn) {
	terminate := []byte{'X', 0, 0, 0, 4}
	for _, c := range conns {
		if c != nil {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(terminate)
			_ = c.Close()
		}
	}
}

// login opens one client session: connect, TLS if conf is set, a
// StartupMessage as the trust user, then messages until ReadyForQuery.
// buf is scratch space for message bodies.
func login(ctx context.Context, addr string, conf *tls.Config, buf []byte) (_ net.Conn, err error) {
	d := net.Dialer{Timeout: idleLoginTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			nc.Close()
		}
	}()
	if err := nc.SetDeadline(time.Now().Add(idleLoginTimeout)); err != nil {
		return nil, err
	}
	var c net.Conn = nc
	if conf != nil {
		// SSLRequest: length 8, code 1234.5679.
		if _, err := nc.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
			return nil, err
		}
		var answer [1]byte
		if _, err := io.ReadFull(nc, answer[:]); err != nil {
			return nil, fmt.Errorf("SSLRequest: %w", err)
		}
		if answer[0] != 'S' {
			return nil, fmt.Errorf("SSLRequest answered %q, not 'S'", answer[0])
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if _, err := c.Write(startupMessage(idleUser, benchDB)); err != nil {
		return nil, err
	}
	// The login's messages are small; a reader the size of buf sees them
	// all and is dropped with this function.
	r := bufio.NewReaderSize(c, len(buf))
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("reading the login's messages: %w", err)
		}
		size := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		if size < 0 || size > 1<<20 {
			return nil, fmt.Errorf("message %q of length %d", hdr[0], size+4)
		}
		if size > len(buf) {
			buf = make([]byte, size)
		}
		body := buf[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("reading message %q: %w", hdr[0], err)
		}
		switch hdr[0] {
		case 'R':
			if size < 4 || binary.BigEndian.Uint32(body) != 0 {
				return nil, fmt.Errorf("the proxy asked for authentication (request %v), not trust's AuthenticationOk", body[:min(4, size)])
			}
		case 'E':
			return nil, errors.New(errorResponseText(body))
		case 'Z':
			if r.Buffered() > 0 {
				return nil, fmt.Errorf("%d bytes after ReadyForQuery", r.Buffered())
			}
			return c, c.SetDeadline(time.Time{})
		}
		// ParameterStatus, BackendKeyData, NoticeResponse: nothing to do.
	}
}

// startupMessage is a protocol 3.0 StartupMessage for user and database.
func startupMessage(user, db string) []byte {
	params := "user\x00" + user + "\x00database\x00" + db + "\x00application_name\x00pgbench-compare idle\x00\x00"
	msg := make([]byte, 8, 8+len(params))
	binary.BigEndian.PutUint32(msg, uint32(8+len(params)))
	binary.BigEndian.PutUint32(msg[4:], 3<<16)
	return append(msg, params...)
}

// errorResponseText renders an ErrorResponse body as "SEVERITY SQLSTATE:
// message (detail)".
func errorResponseText(body []byte) string {
	fields := map[byte]string{}
	for len(body) > 0 && body[0] != 0 {
		code := body[0]
		v, rest, ok := strings.Cut(string(body[1:]), "\x00")
		if !ok {
			break
		}
		fields[code] = v
		body = []byte(rest)
	}
	s := fmt.Sprintf("%s %s: %s", fields['S'], fields['C'], fields['M'])
	if d := fields['D']; d != "" {
		s += " (" + d + ")"
	}
	return s
}

// readMemory reads VmRSS and RssAnon of a process.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(string(b))
}

// parseStatus reads VmRSS and RssAnon (in kB, which the kernel means as
// KiB) from the text of /proc/PID/status.
func parseStatus(status string) (memory, error) {
	var m memory
	found := 0
	for _, line := range strings.Split(status, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "RssAnon" {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc status: unexpected %s line %q", key, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSSKiB = n
		} else {
			m.AnonKiB = n
		}
		found++
	}
	if found != 2 {
		return m, errors.New("/proc status: no VmRSS and RssAnon lines")
	}
	return m, nil
}

// waitSettled samples the proxy's memory until it has settled (see
// settled) or memDeadline passes, and returns the last sample and whether
// it had settled.
func waitSettled(ctx context.Context, p *proc) (memory, bool, error) {
	deadline := time.Now().Add(memDeadline)
	var window []int64
	for {
		m, err := readMemory(p.pid())
		if err != nil {
			if perr := p.exited(); perr != nil {
				return m, false, perr
			}
			return m, false, err
		}
		window = append(window, m.RSSKiB)
		if len(window) > memWindow {
			window = window[1:]
		}
		if len(window) == memWindow && settled(window) {
			return m, true, nil
		}
		if time.Now().After(deadline) {
			return m, false, nil
		}
		select {
		case <-ctx.Done():
			return m, false, ctx.Err()
		case <-time.After(memPollInterval):
		}
	}
}

// settled reports whether the resident set samples (KiB) stay within
// memTolerance of the newest: 0.5% of it, or 256 KiB, whichever is more.
func settled(samples []int64) bool {
	if len(samples) == 0 {
		return false
	}
	lo, hi := samples[0], samples[0]
	for _, s := range samples {
		lo, hi = min(lo, s), max(hi, s)
	}
	return hi-lo <= memTolerance(samples[len(samples)-1])
}

func memTolerance(kib int64) int64 { return max(kib/200, 256) }

// selfSignedCert writes a certificate for 127.0.0.1 and its key (PEM)
// into dir for the proxy, and returns a client configuration that trusts
// only that certificate.
func selfSignedCert(dir string) (certPath, keyPath string, _ *tls.Config, _ error) {
	c, err := testcert.New("pgbench-compare")
	if err != nil {
		return "", "", nil, err
	}
	certPath, keyPath, err = c.WriteFiles(dir)
	if err != nil {
		return "", "", nil, err
	}
	return certPath, keyPath, &tls.Config{RootCAs: c.Roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}
