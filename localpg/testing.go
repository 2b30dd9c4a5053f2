package localpg

// This file holds the helpers for tests (like hashicorp/raft's testing.go):
// it imports package testing in a non-test file so that every package's
// tests can share them.

import (
	"context"
	"errors"
	"testing"
)

// StartForTest starts a cluster, registers its Stop with tb.Cleanup (so it
// also runs when the test fails), and fails the test if the cluster cannot
// start. It calls RequirePostgres first, so a missing installation is
// reported as such.
func StartForTest(tb testing.TB, cfg Config) *Cluster {
	tb.Helper()
	requirePostgres(tb, cfg.BinDir)
	// Every wait inside Start is bounded by cfg.StartTimeout.
	c, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("localpg: starting the test cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("localpg: stopping the test cluster: %v", err)
		}
	})
	return c
}

// RequirePostgres fails the test (it does not skip it: a test that cannot
// run must not pass silently) when the PostgreSQL server binaries are
// missing, naming the Debian package to install, or when running as root
// without a postgres OS user to run them as.
func RequirePostgres(tb testing.TB) {
	tb.Helper()
	requirePostgres(tb, "")
}

func requirePostgres(tb testing.TB, binDir string) {
	tb.Helper()
	if _, err := FindBinDir(binDir); err != nil {
		if errors.Is(err, ErrNoPostgres) {
			tb.Fatalf("%v\nThe integration tests need PostgreSQL %d servers: run `scripts/deps.sh test` or `apt-get install %s`.", err, PreferredVersion, DebianPackage)
		}
		tb.Fatal(err)
	}
	if _, err := lookupIdentity(); err != nil {
		tb.Fatal(err)
	}
}
