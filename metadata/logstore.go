package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The Raft log and stable store live in a raft-wal directory. Every
// decision of a distributed commit is a write to it that the client waits
// for; raft-wal appends a batch with one fsync where bbolt made two
// fdatasyncs and copied B-tree pages (2-shard TPC-B on the rig: 1.41
// fdatasyncs and 3.64 pwrites per transaction with bbolt, 0.70 fsyncs and
// 0.70 pwrites with raft-wal). Data directories written by earlier
// versions hold a raft-boltdb file instead, migrated once at open.
const (
	walDirName      = "wal"
	walMigratingDir = "wal.migrating"
	boltFileName    = "raft.db"
	boltRetiredName = "raft.db.migrated"
	lockFileName    = "LOCK"

	// walSegmentSize bounds a log segment. Segments are preallocated, and
	// a test process runs many stores; decisions are ~100 bytes, so a
	// segment still holds tens of thousands of them.
	walSegmentSize = 8 << 20
	// migrateBatchBytes groups the migration's appends.
	migrateBatchBytes = 1 << 20
	// dataDirLockTimeout is how long opening waits for a stopping process
	// (or a store in this process) to release the data directory.
	dataDirLockTimeout = 2 * time.Second
)

// raftLog is a raft-wal log (and stable store) with the metadata database
// it was opened with and, for the store's own log, the lock that keeps a
// second process out of the data directory. raft-wal v0.4.0's Close
// leaves its metadata database (a bbolt file) open and flocked, and bbolt
// waits for that lock without a timeout: a store reopened in the same
// process would hang. So the database is ours to close.
type raftLog struct {
	*raftwal.WAL
	meta *metadb.BoltMetaDB
	lock *os.File // nil for the migration's copy
}

// Close closes the log, its metadata, and then releases the data directory.
func (l *raftLog) Close() error {
	errs := []error{l.WAL.Close()}
	if err := l.meta.Close(); err != nil {
		errs = append(errs, fmt.Errorf("metadata: closing the raft log's metadata: %w", err))
	}
	if l.lock != nil {
		if err := l.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("metadata: releasing the data directory lock: %w", err))
		}
	}
	return errors.Join(errs...)
}

// openRaftLog locks dir (which exists), migrates a raft-boltdb log found
// there, and opens the raft-wal log.
func openRaftLog(ctx context.Context, dir string, segmentBytes int, logger *slog.Logger) (*raftLog, error) {
	lock, err := lockDataDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*raftLog, error) {
		_ = lock.Close()
		return nil, err
	}
	if err := migrateBoltLog(ctx, dir, logger); err != nil {
		return fail(err)
	}
	walDir := filepath.Join(dir, walDirName)
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return fail(fmt.Errorf("metadata: creating the raft log directory: %w", err))
	}
	l, err := openWAL(walDir, segmentBytes, logger)
	if err != nil {
		return fail(err)
	}
	l.lock = lock
	return l, nil
}

func openWAL(dir string, segmentBytes int, logger *slog.Logger) (*raftLog, error) {
	if segmentBytes <= 0 {
		segmentBytes = walSegmentSize
	}
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(dir, raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(segmentBytes),
		raftwal.WithLogger(newHCLogAdapter(logger, "raft-wal")))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("metadata: opening the raft log in %s: %w", dir, err)
	}
	return &raftLog{WAL: w, meta: meta}, nil
}

// lockDataDir takes an exclusive flock on dir/LOCK, waiting up to
// dataDirLockTimeout. Two nodes on one data directory would write one log
// from two Raft members; the lock makes the second fail at open instead.
// The kernel releases it when the process dies, so a crash leaves nothing
// to clean up.
func lockDataDir(ctx context.Context, dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("metadata: opening %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, dataDirLockTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("metadata: locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("metadata: the data directory %s is in use (is another node using this data directory?): %w", dir, unix.EWOULDBLOCK)
		case <-tick.C:
		}
	}
}

// migrateBoltLog moves a raft-boltdb log (raft.db) into a new raft-wal
// directory. It is built beside the final one and renamed into place, so
// a crash leaves either the old log alone or the complete new one; a
// raft.db left beside a complete wal directory was migrated already and is
// only renamed out of the way. The old file is kept (raft.db.migrated) for
// the operator to delete.
func migrateBoltLog(ctx context.Context, dir string, logger *slog.Logger) error {
	boltPath := filepath.Join(dir, boltFileName)
	if _, err := os.Stat(boltPath); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	walDir := filepath.Join(dir, walDirName)
	if _, err := os.Stat(walDir); err == nil {
		return retireBoltLog(dir)
	}
	started := time.Now()
	tmp := filepath.Join(dir, walMigratingDir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("metadata: removing an interrupted migration: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	entries, err := copyBoltLog(ctx, tmp, boltPath, logger)
	if err != nil {
		return fmt.Errorf("metadata: migrating the raft log from %s: %w", boltPath, err)
	}
	if err := os.Rename(tmp, walDir); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := retireBoltLog(dir); err != nil {
		return err
	}
	logger.Info("metadata: migrated the raft log from raft-boltdb to raft-wal",
		"dir", dir, "entries", entries, "took", time.Since(started),
		"old_file", filepath.Join(dir, boltRetiredName))
	return nil
}

// copyBoltLog copies the entries and the stable keys of the raft-boltdb
// file at boltPath into a new raft-wal log in walDir.
func copyBoltLog(ctx context.Context, walDir, boltPath string, logger *slog.Logger) (uint64, error) {
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: boltPath,
		BoltOptions: &bbolt.Options{Timeout: dataDirLockTimeout, ReadOnly: true}})
	if err != nil {
		return 0, fmt.Errorf("opening: %w", err)
	}
	defer bolt.Close()
	w, err := openWAL(walDir, 0, logger)
	if err != nil {
		return 0, err
	}
	first, last, err := logBounds(bolt)
	if err != nil {
		_ = w.Close()
		return 0, err
	}
	var entries uint64
	if last > 0 {
		entries = last - first + 1
		if err := migrate.CopyLogs(ctx, w, bolt, migrateBatchBytes, nil); err != nil {
			_ = w.Close()
			return 0, err
		}
	}
	if err := copyStable(w, bolt); err != nil {
		_ = w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("closing the new log: %w", err)
	}
	return entries, nil
}

func logBounds(logs raft.LogStore) (first, last uint64, err error) {
	if first, err = logs.FirstIndex(); err != nil {
		return 0, 0, fmt.Errorf("reading the first index: %w", err)
	}
	if last, err = logs.LastIndex(); err != nil {
		return 0, 0, fmt.Errorf("reading the last index: %w", err)
	}
	return first, last, nil
}

// copyStable copies raft's term and vote: the keys hashicorp/raft keeps
// in its stable store (one cannot be listed). A key never written (a node
// that never voted) stays unwritten.
func copyStable(dst raft.StableStore, src raft.StableStore) error {
	for _, k := range [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm")} {
		v, err := src.GetUint64(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
		if err := dst.SetUint64(k, v); err != nil {
			return fmt.Errorf("writing %s: %w", k, err)
		}
	}
	for _, k := range [][]byte{[]byte("LastVoteCand")} {
		v, err := src.Get(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
		if err := dst.Set(k, v); err != nil {
			return fmt.Errorf("writing %s: %w", k, err)
		}
	}
	return nil
}

func retireBoltLog(dir string) error {
	if err := os.Rename(filepath.Join(dir, boltFileName), filepath.Join(dir, boltRetiredName)); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("metadata: syncing %s: %w", dir, err)
	}
	return nil
}
