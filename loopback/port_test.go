package loopback

import (
	"net"
	"strconv"
	"testing"
)

// The ports are bindable and, when the ephemeral range leaves room below
// it, below it: where no outgoing connection takes its source port.
func TestFreePort(t *testing.T) {
	low := ephemeralLow()
	below := low > lowestPort+1000
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if below && (port < lowestPort || port >= low) {
			t.Fatalf("port %d outside [%d, %d)", port, lowestPort, low)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		ln.Close()
	}
}
