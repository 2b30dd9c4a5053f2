package twopc

// FileLog keeps commit decisions in a file of their own under the node's
// data directory until they move into the Raft log. It is the only thing
// standing between a crash after the decision and a partial commit, so it
// fsyncs before it answers, survives a torn last write, and stops
// answering at all once a write has failed.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// DirName is the directory under data_dir that holds the decision log:
// OpenFileLog(filepath.Join(dataDir, twopc.DirName)).
const DirName = "twopc"

const (
	logName  = "decisions.log"
	tmpName  = "decisions.log.tmp"
	lockName = "LOCK"

	// fileMagic starts the file; its last byte is the format version.
	fileMagic = "SP2PCLG1"

	recCommit byte = 'C'
	recDone   byte = 'D'
	// A record is type, gid length, gid, CRC-32C of the three.
	recOverhead = 1 + 1 + 4

	defaultCompactMin = 4096
	// maxUnsynced bounds the bytes written without fsync (Done records), and
	// tornTolerance the damaged tail replay forgives when valid records
	// follow the damage: a crash can only tear what was not yet synced.
	maxUnsynced   = 1 << 20
	tornTolerance = 4 << 20
)

// castagnoli is read-only after initialisation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FileLog is a DecisionLog in one directory: an append-only file of
// COMMIT and DONE records, each with a CRC, compacted when DONE records
// dominate. A lock file keeps a second FileLog (in this process or
// another) out of the directory. Safe for concurrent use; concurrent
// Commits share one fsync.
type FileLog struct {
	dir, path  string
	compactMin int

	mu   sync.Mutex
	cond sync.Cond // signalled when busy clears
	f    *os.File
	lock *os.File
	// commits maps each gid with a COMMIT record to whether that record is
	// known durable (Decided reports only those). Compaction keeps both
	// kinds: a record may already be written, just not yet synced.
	commits map[string]bool
	records int // records in the file and in buf, for the compaction rule

	buf, spare []byte // encoded records not yet written; spare is reused
	seq        uint64 // records appended to buf so far
	written    uint64 // records written to the file (maybe not synced)
	synced     uint64 // records known durable
	unsynced   int    // bytes written since the last fsync
	busy       bool   // a goroutine is writing outside mu
	failed     error  // sticky: a write or sync failed
	closed     bool
}

var _ DecisionLog = (*FileLog)(nil)

// OpenFileLog opens (creating if needed) the decision log in dir, which the
// node places at <data_dir>/twopc. A torn last record, left by a crash in
// the middle of a write, is cut off; damage followed by intact records
// further back than any unsynced write could reach is refused as
// corruption, because guessing could turn a recorded COMMIT into a
// rollback.
func OpenFileLog(dir string) (*FileLog, error) {
	return openFileLog(dir, defaultCompactMin)
}

func openFileLog(dir string, compactMin int) (_ *FileLog, err error) {
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, unusable(dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("twopc: decision log %s is in use by another FileLog (in this process or another)", dir)
		}
		return nil, unusable(dir, err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	// A compaction that did not reach its rename left this behind; the
	// log itself is intact.
	if err := os.Remove(filepath.Join(dir, tmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, unusable(dir, err)
	}
	l := &FileLog{
		dir: dir, path: filepath.Join(dir, logName), compactMin: compactMin,
		lock: lock, commits: make(map[string]bool),
	}
	l.cond.L = &l.mu
	if err := l.load(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shouldCompact() {
		if err := l.compactLocked(); err != nil {
			l.f.Close()
			return nil, err
		}
	}
	return l, nil
}

// prepareDir makes sure dir is a directory, creating it if missing.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("twopc: decision log directory %s is unusable: not a directory", dir)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return unusable(dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unusable(dir, err)
	}
	// The new directory must survive a crash as surely as the file in it.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return unusable(dir, err)
	}
	return nil
}

func unusable(dir string, err error) error {
	return fmt.Errorf("twopc: decision log directory %s is unusable: %w", dir, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// load reads the file, replays it and cuts off a torn tail.
func (l *FileLog) load() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return unusable(l.dir, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return unusable(l.dir, err)
	}
	good, err := l.replay(data)
	if err != nil {
		f.Close()
		return err
	}
	if good < len(fileMagic) || good < len(data) {
		err := f.Truncate(int64(good))
		if err == nil && good == 0 {
			_, err = f.WriteString(fileMagic)
		}
		if err == nil {
			err = f.Sync()
		}
		if err == nil && good == 0 {
			// A new file: its directory entry must be durable too.
			err = syncDir(l.dir)
		}
		if err != nil {
			f.Close()
			return unusable(l.dir, err)
		}
	}
	l.f = f
	return nil
}

// replay applies the records in data and returns the length of its intact
// prefix.
func (l *FileLog) replay(data []byte) (int, error) {
	if len(data) < len(fileMagic) {
		if !strings.HasPrefix(fileMagic, string(data)) {
			return 0, fmt.Errorf("twopc: %s is not a shardproxy decision log", l.path)
		}
		return 0, nil // new, or torn while its header was written
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return 0, fmt.Errorf("twopc: %s is not a shardproxy decision log (or of another version)", l.path)
	}
	off := len(fileMagic)
	for off < len(data) {
		typ, gid, n, ok := decodeRecord(data[off:])
		if !ok {
			if validRecordAfter(data, off) && len(data)-off > tornTolerance {
				return 0, fmt.Errorf("twopc: %s: damaged record at offset %d followed by intact ones; refusing to guess which decisions were recorded (restore the file or move it aside knowingly)", l.path, off)
			}
			return off, nil
		}
		if typ == recCommit {
			l.commits[gid] = true
		} else {
			delete(l.commits, gid)
		}
		l.records++
		off += n
	}
	return off, nil
}

func decodeRecord(b []byte) (typ byte, gid string, n int, ok bool) {
	if len(b) < recOverhead {
		return 0, "", 0, false
	}
	typ = b[0]
	glen := int(b[1])
	end := 2 + glen
	if (typ != recCommit && typ != recDone) || glen == 0 || glen > MaxGIDLen || len(b) < end+4 {
		return 0, "", 0, false
	}
	if crc32.Checksum(b[:end], castagnoli) != binary.BigEndian.Uint32(b[end:]) {
		return 0, "", 0, false
	}
	return typ, string(b[2:end]), end + 4, true
}

// validRecordAfter reports whether an intact record starts anywhere after
// off: a torn tail has none, damage in the middle of the log has.
func validRecordAfter(data []byte, off int) bool {
	for i := off + 1; i+recOverhead <= len(data); i++ {
		if _, _, _, ok := decodeRecord(data[i:]); ok {
			return true
		}
	}
	return false
}

func appendRecord(b []byte, typ byte, gid string) []byte {
	start := len(b)
	b = append(b, typ, byte(len(gid)))
	b = append(b, gid...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// Commit implements DecisionLog: it returns once the record is fsynced.
func (l *FileLog) Commit(ctx context.Context, gid string) error {
	if err := checkGID(gid); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	if l.commits[gid] {
		return nil
	}
	l.commits[gid] = false
	l.appendLocked(recCommit, gid)
	if err := l.flushLocked(l.seq, true); err != nil {
		return err
	}
	if _, ok := l.commits[gid]; ok {
		l.commits[gid] = true
	}
	return nil
}

// Done implements DecisionLog. The record is written but fsynced only with
// the next Commit (or when unsynced bytes pile up): losing it costs
// recovery one more look.
func (l *FileLog) Done(ctx context.Context, gid string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if !l.commits[gid] {
		return nil
	}
	delete(l.commits, gid)
	l.appendLocked(recDone, gid)
	if err := l.flushLocked(l.seq, l.unsynced+len(l.buf) >= maxUnsynced); err != nil {
		return err
	}
	if l.shouldCompact() {
		return l.compactLocked()
	}
	return nil
}

// Decided implements DecisionLog.
func (l *FileLog) Decided(gid string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return false, err
	}
	return l.commits[gid], nil
}

// Pending implements DecisionLog; the gids come sorted.
func (l *FileLog) Pending() ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return nil, err
	}
	var gids []string
	for gid, durable := range l.commits {
		if durable {
			gids = append(gids, gid)
		}
	}
	slices.Sort(gids)
	return gids, nil
}

// Close writes and syncs what is buffered and releases the directory.
func (l *FileLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	var err error
	if l.failed == nil && l.seq > l.synced {
		err = l.flushLocked(l.seq, true)
	}
	for l.busy {
		l.cond.Wait()
	}
	l.closed = true
	l.cond.Broadcast()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *FileLog) usableLocked() error {
	if l.closed {
		return fmt.Errorf("twopc: decision log %s is closed", l.path)
	}
	return l.failed
}

func (l *FileLog) fail(err error) {
	if l.failed == nil {
		l.failed = fmt.Errorf("twopc: decision log %s failed and refuses further use until it is reopened: %w", l.path, err)
	}
}

func (l *FileLog) appendLocked(typ byte, gid string) {
	l.buf = appendRecord(l.buf, typ, gid)
	l.seq++
	l.records++
}

// flushLocked returns once record number target is written (and synced,
// if durable). One caller at a time does the I/O, outside mu, for every
// record buffered so far; the others wait for it: group commit.
func (l *FileLog) flushLocked(target uint64, durable bool) error {
	for {
		if err := l.usableLocked(); err != nil {
			return err
		}
		if l.synced >= target || (!durable && l.written >= target) {
			return nil
		}
		if l.busy {
			l.cond.Wait()
			continue
		}
		l.busy = true
		data, upto := l.buf, l.seq
		l.buf, l.spare = l.spare[:0], nil
		// l.f changes only under mu while nobody is busy (compaction,
		// Close), so it is safe to use here.
		f := l.f
		l.mu.Unlock()
		var err error
		if len(data) > 0 {
			_, err = f.Write(data)
		}
		if err == nil && durable {
			err = f.Sync()
		}
		l.mu.Lock()
		l.spare = data[:0]
		l.busy = false
		l.cond.Broadcast()
		if err != nil {
			l.fail(err)
			return l.failed
		}
		l.written = upto
		l.unsynced += len(data)
		if durable {
			l.synced = upto
			l.unsynced = 0
		}
	}
}

func (l *FileLog) shouldCompact() bool {
	return l.records >= l.compactMin && l.records > 4*len(l.commits)
}

// compactLocked rewrites the file with one COMMIT record per decision still
// open (durable or in flight) and renames it over the old one.
func (l *FileLog) compactLocked() error {
	for l.busy {
		l.cond.Wait()
	}
	if err := l.usableLocked(); err != nil {
		return err
	}
	gids := make([]string, 0, len(l.commits))
	for gid := range l.commits {
		gids = append(gids, gid)
	}
	slices.Sort(gids)
	data := []byte(fileMagic)
	for _, gid := range gids {
		data = appendRecord(data, recCommit, gid)
	}
	tmp := filepath.Join(l.dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = os.Rename(tmp, l.path)
		}
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}
	if err != nil {
		// The old file is untouched and still complete; try again later.
		l.compactMin = l.records + defaultCompactMin
		return fmt.Errorf("twopc: compacting %s: %w", l.path, err)
	}
	// From here on the new file is the log: if the rename cannot be made
	// durable, records appended now could vanish with it after a crash.
	if err := syncDir(l.dir); err != nil {
		f.Close()
		l.fail(err)
		return l.failed
	}
	l.f.Close()
	l.f = f
	l.records = len(gids)
	// Everything written so far is reflected in the new, synced file.
	l.synced = l.written
	l.unsynced = 0
	return nil
}
