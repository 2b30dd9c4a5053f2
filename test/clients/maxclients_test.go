package clients_test

// The client limit at full scale: a shardproxy process with
// limits.max_client_connections = 10000 holds 10,000 logged-in clients of
// another process, and the 10,001st is refused with 53300. The proxy and
// the clients run as separate processes so that neither needs more than
// about 10,000 file descriptors, and the clients log in as the trust user
// so that no SCRAM derivation slows the test down.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/test/testenv"
)

const (
	// helperEnv selects the client-helper mode of this test binary (see
	// TestMain); its value is the proxy's address.
	helperEnv = "SHARDPROXY_TEST_CLIENTS_HELPER"
	// helperCountEnv is how many connections the helper opens.
	helperCountEnv = "SHARDPROXY_TEST_CLIENTS_COUNT"

	maxClients = 10000
	proxyPool  = 20
)

func TestMaxClientConnections(t *testing.T) {
	raiseFileLimit(t, 2*maxClients+1000)
	proxy := testenv.ServeBinary(t, testenv.BuildBinary(t), fmt.Sprintf(`node_id: n1
users:
  - {name: %s, trust: true}
shards:
  - {id: s1, primary: %q}
pool: {mode: transaction, size: %d, wait_timeout: 60s}
limits: {max_client_connections: %d, client_login_timeout: 60s}
log: {level: warn, format: text}
`, testenv.TrustUser, cluster.Shards[0].Primary.Addr(), proxyPool, maxClients))
	addr := proxy.Addr
	ctx := testenv.TestCtx(t, 3*time.Minute)

	// While the clients log in, the pool must never open more than its
	// size: an idle client in transaction pooling holds no server.
	super := testenv.Connect(t, ctx, superURL())
	pollCtx, stopPoll := context.WithCancel(ctx)
	maxServers := make(chan int, 1)
	go func() {
		most := 0
		for pollCtx.Err() == nil {
			var n int
			if err := super.QueryRow(pollCtx, `select count(*) from pg_stat_activity
				where usename = $1 and backend_type = 'client backend'`, testenv.TrustUser).Scan(&n); err == nil {
				most = max(most, n)
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		maxServers <- most
	}()

	helperCmd := exec.Command(os.Args[0], "-test.run=^$")
	helperCmd.Env = append(os.Environ(), helperEnv+"="+addr, helperCountEnv+"="+strconv.Itoa(maxClients))
	helperIn, err := helperCmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	helperOut, err := helperCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper := testenv.StartProcess(t, "client helper", helperCmd, 0)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(helperOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expectLine := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || l != want {
				t.Fatalf("client helper said %q (open %v), want %q\nhelper stderr:\n%s\nproxy log:\n%s",
					l, ok, want, helper.Stderr(), proxy.LogTail(4000))
			}
		case <-ctx.Done():
			t.Fatalf("waiting for the client helper to say %q: %v\nhelper stderr:\n%s", want, ctx.Err(), helper.Stderr())
		}
	}
	started := time.Now()
	expectLine(fmt.Sprintf("READY %d", maxClients))
	t.Logf("%d clients logged in after %s", maxClients, time.Since(started).Round(time.Millisecond))

	// The 10,001st client.
	url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=10", testenv.TrustUser, addr, testenv.Database)
	c, err := pgconn.Connect(ctx, url)
	if err == nil {
		_ = c.Close(ctx)
		t.Fatalf("client %d connected over limits.max_client_connections = %d", maxClients+1, maxClients)
	}
	pe := testenv.RequireCode(t, err, "53300")
	if !strings.Contains(pe.Hint, "max_client_connections") {
		t.Errorf("the refusal's hint %q does not name limits.max_client_connections", pe.Hint)
	}

	// One client leaves: a new one gets in (once the proxy has noticed).
	if _, err := io.WriteString(helperIn, "close 1\n"); err != nil {
		t.Fatal(err)
	}
	expectLine("CLOSED 1")
	testenv.WaitFor(t, ctx, "a free client slot", func() (bool, error) {
		c, err := pgconn.Connect(ctx, url)
		if err == nil {
			err = c.Exec(ctx, "select 1").Close()
			_ = c.Close(ctx)
			return err == nil, err
		}
		if testenv.PGCode(err) == "53300" {
			return false, nil
		}
		return false, err
	})

	stopPoll()
	if most := <-maxServers; most > proxyPool {
		t.Errorf("the proxy opened %d server connections, more than pool.size = %d", most, proxyPool)
	} else {
		t.Logf("at most %d server connections while %d clients logged in", most, maxClients)
	}
	_ = helperIn.Close()
}

// raiseFileLimit raises RLIMIT_NOFILE of this process (and so of the
// processes it starts) to want, or to the hard limit when it may not go
// that high.
func raiseFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	old := lim
	if lim.Max < want {
		// Root may raise the hard limit too.
		try := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			lim = try
		} else {
			t.Logf("RLIMIT_NOFILE hard limit is %d, below %d, and cannot be raised: %v", lim.Max, want, err)
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("raising RLIMIT_NOFILE to %d: %v", lim.Max, err)
		}
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	if lim.Cur < maxClients+500 {
		t.Fatalf("RLIMIT_NOFILE is %d; each process needs more than %d", lim.Cur, maxClients+500)
	}
}

// runClientHelper is the helper process: it opens the connections, logs
// each in, says READY n on stdout and holds them; "close k" on stdin closes
// k of them (answered CLOSED k); end of stdin ends the process.
func runClientHelper() int {
	addr := os.Getenv(helperEnv)
	count, err := strconv.Atoi(os.Getenv(helperCountEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: bad count:", err)
		return 2
	}
	conns := make([]net.Conn, count)
	var wg sync.WaitGroup
	errs := make(chan error, count)
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				c, err := rawLogin(addr, testenv.TrustUser, testenv.Database, 60*time.Second)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 5 {
			fmt.Fprintln(os.Stderr, "helper:", err)
		}
		failed++
	}
	if failed > 0 {
		fmt.Printf("ERROR %d of %d connections failed\n", failed, count)
		return 1
	}
	fmt.Printf("READY %d\n", count)
	in := bufio.NewScanner(os.Stdin)
	next := 0
	for in.Scan() {
		var k int
		if _, err := fmt.Sscanf(in.Text(), "close %d", &k); err != nil {
			fmt.Fprintln(os.Stderr, "helper: unknown command", in.Text())
			return 2
		}
		for range k {
			_ = conns[next].Close()
			next++
		}
		fmt.Printf("CLOSED %d\n", k)
	}
	return 0
}

// rawLogin opens a connection and logs in as a trust user with a bare
// StartupMessage, reading until ReadyForQuery.
func rawLogin(addr, user, database string, timeout time.Duration) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	msg := binary.BigEndian.AppendUint32(nil, 0)
	msg = binary.BigEndian.AppendUint32(msg, 3<<16)
	msg = append(msg, "user\x00"+user+"\x00database\x00"+database+"\x00\x00"...)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	if _, err := nc.Write(msg); err != nil {
		_ = nc.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(nc, 1024)
	for {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("reading login answer: %w", err)
		}
		body := make([]byte, int(binary.BigEndian.Uint32(h[1:]))-4)
		if _, err := io.ReadFull(r, body); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("reading login answer: %w", err)
		}
		switch h[0] {
		case 'Z':
			if r.Buffered() > 0 {
				_ = nc.Close()
				return nil, errors.New("bytes after ReadyForQuery")
			}
			_ = nc.SetDeadline(time.Time{})
			return nc, nil
		case 'E':
			_ = nc.Close()
			code, msg := decodeError(append(h[:], body...))
			return nil, fmt.Errorf("login refused: %s %s", code, msg)
		case 'R':
			if len(body) < 4 || binary.BigEndian.Uint32(body) != 0 {
				_ = nc.Close()
				return nil, errors.New("the proxy asked a trust user for a password")
			}
		}
	}
}
