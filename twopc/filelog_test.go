package twopc_test

// FileLog: what survives a reopen, what a crash can leave behind and how
// it is read back, compaction, and the errors an unusable directory gives.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shardproxy/shardproxy/twopc"
)

func openLog(t *testing.T, dir string) *twopc.FileLog {
	t.Helper()
	l, err := twopc.OpenFileLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func pending(t *testing.T, l twopc.DecisionLog) []string {
	t.Helper()
	p, err := l.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestFileLogReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", twopc.DirName)
	l := openLog(t, dir)
	a, b, c := twopc.NewGID("n1"), twopc.NewGID("n1"), twopc.NewGID("n1")
	for _, g := range []string{a, b, c} {
		if err := l.Commit(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Done(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Done(ctx, "never-decided"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l.Decided(a); !ok {
		t.Fatal("Decided(a) = false")
	}
	if ok, _ := l.Decided(b); ok {
		t.Fatal("Decided(b) = true after Done")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, twopc.NewGID("n1")); !errors.Is(err, twopc.ErrNotRecorded) {
		t.Fatalf("Commit after Close = %v, want ErrNotRecorded", err)
	}

	l = openLog(t, dir)
	if got, want := pending(t, l), sorted(a, c); !slices.Equal(got, want) {
		t.Fatalf("after reopen Pending = %q, want %q", got, want)
	}
}

func TestFileLogRefusesWhatItCannotRecord(t *testing.T) {
	l := openLog(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx context.Context
		gid string
	}{
		"cancelled":    {ctx, twopc.NewGID("n1")},
		"too long gid": {context.Background(), strings.Repeat("g", twopc.MaxGIDLen+1)},
		"empty gid":    {context.Background(), ""},
	} {
		if err := l.Commit(tc.ctx, tc.gid); !errors.Is(err, twopc.ErrNotRecorded) {
			t.Errorf("%s: Commit = %v, want ErrNotRecorded", name, err)
		}
	}
}

// A crash in the middle of a write leaves a partial record (or garbage, or
// zeros) at the end; reopening cuts it off and keeps every whole record.
func TestFileLogTornTail(t *testing.T) {
	ctx := context.Background()
	g := twopc.NewGID("n1")
	rec := twopc.EncodeRecord(true, twopc.NewGID("n1"))
	tails := map[string][]byte{
		"one byte":           rec[:1],
		"half a record":      rec[:len(rec)/2],
		"all but the CRC":    rec[:len(rec)-1],
		"bad CRC":            append(slices.Clone(rec[:len(rec)-1]), rec[len(rec)-1]^0xff),
		"zeros":              make([]byte, 4096),
		"garbage":            bytes.Repeat([]byte("garbage!"), 100),
		"hole then a record": append(make([]byte, 100), rec...),
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir)
			if err := l.Commit(ctx, g); err != nil {
				t.Fatal(err)
			}
			l.Close()
			path := filepath.Join(dir, "decisions.log")
			intact, _ := os.ReadFile(path)
			appendFile(t, path, tail)

			l = openLog(t, dir)
			if got := pending(t, l); !slices.Equal(got, []string{g}) {
				t.Fatalf("Pending = %q, want %q", got, g)
			}
			if data, _ := os.ReadFile(path); !bytes.Equal(data, intact) {
				t.Fatalf("the torn tail was not cut off: %d bytes, want %d", len(data), len(intact))
			}
			// And the log goes on from there.
			next := twopc.NewGID("n1")
			if err := l.Commit(ctx, next); err != nil {
				t.Fatal(err)
			}
			l.Close()
			l = openLog(t, dir)
			if got := pending(t, l); !slices.Equal(got, sorted(g, next)) {
				t.Fatalf("Pending = %q", got)
			}
		})
	}
}

func TestFileLogTornHeader(t *testing.T) {
	for _, n := range []int{0, 1, len(twopc.FileMagic) - 1} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "decisions.log"), []byte(twopc.FileMagic[:n]), 0o600)
		l := openLog(t, dir)
		if err := l.Commit(context.Background(), twopc.NewGID("n1")); err != nil {
			t.Fatalf("header of %d bytes: %v", n, err)
		}
	}
}

// Damage followed by intact records further back than a crash can tear is
// not a torn tail: guessing could drop a recorded decision.
func TestFileLogCorruption(t *testing.T) {
	dir := t.TempDir()
	var data []byte
	data = append(data, twopc.FileMagic...)
	data = append(data, twopc.EncodeRecord(true, "shardproxy:n1:first")...)
	bad := len(data)
	data = append(data, twopc.EncodeRecord(true, "shardproxy:n1:damaged")...)
	data[bad+5] ^= 0x55
	intact := twopc.EncodeRecord(true, "shardproxy:n1:intact")
	data = append(data, bytes.Repeat(intact, twopc.TornTolerance/len(intact)+1)...)
	path := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := twopc.OpenFileLog(dir)
	if err == nil || !strings.Contains(err.Error(), "damaged record") {
		t.Fatalf("OpenFileLog = %v, want a damaged-record error", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("a refused log was modified")
	}

	os.WriteFile(path, []byte("not a log at all, but long enough"), 0o600)
	if _, err := twopc.OpenFileLog(dir); err == nil || !strings.Contains(err.Error(), "not a shardproxy decision log") {
		t.Fatalf("OpenFileLog of a foreign file = %v", err)
	}
}

func TestFileLogUnusableDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	taken := filepath.Join(base, "taken")
	os.MkdirAll(filepath.Join(taken, "decisions.log"), 0o700)
	for name, dir := range map[string]string{
		"a file":                  file,
		"under a file":            filepath.Join(file, twopc.DirName),
		"log file is a directory": taken,
	} {
		_, err := twopc.OpenFileLog(dir)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: OpenFileLog(%s) = %v, want an error naming the directory", name, dir, err)
		}
	}
}

func TestFileLogExclusive(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	openLog(t, dir1)
	openLog(t, dir2) // another node in the same process
	if _, err := twopc.OpenFileLog(dir1); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second OpenFileLog of one directory = %v", err)
	}
}

func TestFileLogCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := twopc.OpenFileLogCompactingAt(dir, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var open []string
	for i := range 1000 {
		g := twopc.NewGID("n1")
		if err := l.Commit(ctx, g); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			open = append(open, g)
			continue
		}
		if err := l.Done(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Records(); n >= 100 {
		t.Fatalf("%d records after compaction, want fewer than 100", n)
	}
	fi, _ := os.Stat(filepath.Join(dir, "decisions.log"))
	if fi.Size() > 10_000 {
		t.Fatalf("log is %d bytes after compaction", fi.Size())
	}
	if got := pending(t, l); !slices.Equal(got, sorted(open...)) {
		t.Fatalf("Pending = %q, want %q", got, sorted(open...))
	}
	l.Close()
	l2 := openLog(t, dir)
	if got := pending(t, l2); !slices.Equal(got, sorted(open...)) {
		t.Fatalf("after reopen Pending = %q", got)
	}
}

func TestFileLogConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := twopc.OpenFileLogCompactingAt(dir, 50)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var kept []string
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 40 {
				g := twopc.NewGID("n1")
				if err := l.Commit(ctx, g); err != nil {
					t.Error(err)
					return
				}
				if ok, err := l.Decided(g); !ok || err != nil {
					t.Errorf("Decided right after Commit = %v, %v", ok, err)
				}
				if (w+i)%7 == 0 {
					mu.Lock()
					kept = append(kept, g)
					mu.Unlock()
					continue
				}
				if err := l.Done(ctx, g); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	if got := pending(t, l); !slices.Equal(got, sorted(kept...)) {
		t.Fatalf("after reopen %d pending, want %d", len(got), len(kept))
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
