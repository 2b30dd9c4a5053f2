package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// lowestFreePort is where FreeAddr starts looking: above the well-known
// and registered services a test machine may run.
const lowestFreePort = 10000

// FreeAddr returns a loopback address whose port nothing listens on now,
// for a process the test starts next, and possibly restarts on the same
// address. The port is taken below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), because a port from there (what
// listening on port 0 gives) can be taken meanwhile by any outgoing
// connection as its source port: a node of TestClusterLifecycle once
// failed to start with "bind: address already in use" on its Raft port.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	if low := ephemeralLow(); low > lowestFreePort+1000 {
		for range 200 {
			addr := fmt.Sprintf("127.0.0.1:%d", lowestFreePort+rand.IntN(low-lowestFreePort))
			if ln, err := net.Listen("tcp", addr); err == nil {
				_ = ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ephemeralLow is the first port of the ephemeral range (Linux's default
// when it cannot be read).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var hi int
		if _, err := fmt.Sscan(string(b), &low, &hi); err != nil {
			return 32768
		}
	}
	return low
}
