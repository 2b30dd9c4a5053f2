package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// lowestPort is where the search starts: above the well-known and the
// common registered services a machine may run.
const lowestPort = 10000

// defaultEphemeralLow is Linux's default start of the ephemeral range.
const defaultEphemeralLow = 32768

// FreePort returns a port on 127.0.0.1 that nothing listens on now, below
// the ephemeral range when that leaves room (else one the kernel picks).
func FreePort() (int, error) {
	if low := ephemeralLow(); low > lowestPort+1000 {
		for range 200 {
			port := lowestPort + rand.IntN(low-lowestPort)
			if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				if err := ln.Close(); err != nil {
					return 0, fmt.Errorf("loopback: %w", err)
				}
				return port, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback: finding a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("loopback: %w", err)
	}
	return port, nil
}

// FreeAddr is FreePort as "127.0.0.1:port".
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

// ephemeralLow is the first port of the ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeralLow
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		return defaultEphemeralLow
	}
	return low
}
