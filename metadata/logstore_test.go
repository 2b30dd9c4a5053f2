package metadata_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

// testdata/boltdb-datadir was written by the store of commit 131876e, the
// last with a raft-boltdb log: a single node "solo" (in-memory transport
// address "solo") bootstrapped with testSeed, 23 splits at 1000..23000
// with a snapshot after the ninth entry (so the log starts after index 1),
// and a pending commit decision for sp_fixture_1: map version 28, 25
// ranges.
const (
	fixtureVersion = 28
	fixtureRanges  = 25
	fixtureGID     = "sp_fixture_1"
)

func copyFixture(t *testing.T, dst string) {
	t.Helper()
	src := filepath.Join("testdata", "boltdb-datadir")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openSolo(t *testing.T, dir string) (*metadata.Store, error) {
	t.Helper()
	_, transport := raft.NewInmemTransport("solo")
	return metadata.OpenStore(context.Background(), metadata.StoreConfig{
		NodeID: "solo", Bootstrap: true, DataDir: dir, Seed: testSeed(t),
		Logger: testLogger(t), Transport: transport, Tuning: testTuning,
	})
}

// A data directory written with the raft-boltdb log opens with everything
// in it, once migrated, and keeps what is written after.
func TestStoreMigratesBoltLog(t *testing.T) {
	cases := []struct {
		name string
		// prepare runs on the data directory after the fixture is copied
		// and, when migrateFirst, opened and closed once with a split
		// applied (one range more).
		migrateFirst bool
		prepare      func(t *testing.T, dir string)
		wantRanges   int
	}{
		{name: "first open", wantRanges: fixtureRanges},
		{
			name: "interrupted migration left a partial copy",
			prepare: func(t *testing.T, dir string) {
				partial := filepath.Join(dir, "wal.migrating")
				if err := os.MkdirAll(partial, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(partial, "00000000000000000001-0000000000000001.wal"), []byte("torn"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantRanges: fixtureRanges,
		},
		{
			// A crash after the new log was renamed into place but
			// before raft.db was: the new log, with what was written
			// after the migration, wins; the old one is not copied again.
			name:         "crash before the old log was retired",
			migrateFirst: true,
			prepare: func(t *testing.T, dir string) {
				if err := os.Rename(filepath.Join(dir, "raft.db.migrated"), filepath.Join(dir, "raft.db")); err != nil {
					t.Fatal(err)
				}
			},
			wantRanges: fixtureRanges + 1,
		},
		{name: "second open", migrateFirst: true, wantRanges: fixtureRanges + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dir := t.TempDir()
			copyFixture(t, dir)
			if tc.migrateFirst {
				s, err := openSolo(t, dir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.WaitForMap(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: keyspace.ID(50_000)}); err != nil {
					t.Fatal(err)
				}
				if err := s.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}

			s, err := openSolo(t, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			if err := s.WaitForLeader(ctx); err != nil {
				t.Fatal(err)
			}
			// The version also moves when the node registers itself as
			// leader; the ranges count the splits.
			eventually(t, 10*time.Second, "the log replayed", func() bool { return s.Map().Version >= fixtureVersion })
			if m := s.Map(); len(m.Ranges) != tc.wantRanges {
				t.Fatalf("map version %d with %d ranges, want %d", m.Version, len(m.Ranges), tc.wantRanges)
			}
			if got := s.PendingDecisions(); !slices.Equal(got, []string{fixtureGID}) {
				t.Fatalf("pending decisions %v, want [%s]", got, fixtureGID)
			}
			if _, err := os.Stat(filepath.Join(dir, "raft.db")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("raft.db still in place: %v", err)
			}
			for _, kept := range []string{"raft.db.migrated", "wal"} {
				if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "wal.migrating")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("wal.migrating left behind: %v", err)
			}
			// The migrated log takes new entries and keeps them.
			if _, err := s.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: keyspace.ID(60_000)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			s, err = openSolo(t, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			eventually(t, 10*time.Second, "the new entry replayed", func() bool { return len(s.Map().Ranges) == tc.wantRanges+1 })
		})
	}
}

// A second store on a data directory in use fails at open, with a message
// that says why, instead of writing one log from two Raft members.
func TestStoreRefusesDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first, err := openSolo(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	second, err := openSolo(t, dir)
	if err == nil {
		second.Shutdown(context.Background())
		t.Fatal("a second store opened a data directory in use")
	}
	if !strings.Contains(err.Error(), "is another node using this data directory?") {
		t.Fatalf("error %q does not say the directory is in use", err)
	}
	if waited := time.Since(started); waited > 10*time.Second {
		t.Fatalf("refusing took %s", waited)
	}
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Released at shutdown: the next open succeeds.
	again, err := openSolo(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
