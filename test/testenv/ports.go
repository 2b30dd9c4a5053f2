package testenv

import (
	"testing"

	"github.com/shardproxy/shardproxy/loopback"
)

// FreeAddr returns a loopback address nothing listens on now, for a
// process the test starts next and may restart on the same address
// (package loopback says why it is not simply port 0).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := loopback.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}
