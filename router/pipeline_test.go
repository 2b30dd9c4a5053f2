package router

import (
	"bytes"
	"testing"
)

var (
	describePortal = []byte{'D', 0, 0, 0, 6, 'P', 0}
	executeAll     = []byte{'E', 0, 0, 0, 9, 0, 0, 0, 0, 0}
	syncMsg        = []byte{'S', 0, 0, 0, 4}
)

func frames(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestPortalRunAhead(t *testing.T) {
	executeNamed := []byte{'E', 0, 0, 0, 10, 'p', 0, 0, 0, 0, 0}
	executeTen := []byte{'E', 0, 0, 0, 9, 0, 0, 0, 0, 10}
	describeStatement := []byte{'D', 0, 0, 0, 6, 'S', 0}
	for _, tc := range []struct {
		name   string
		in     []byte
		frames int // 0: not a complete run of the unnamed portal
	}{
		{"describe execute sync", frames(describePortal, executeAll, syncMsg), 3},
		{"execute sync", frames(executeAll, syncMsg), 2},
		{"the next batch behind it", frames(executeAll, syncMsg, []byte{'B', 0, 0, 0, 4}), 2},
		{"nothing buffered", nil, 0},
		{"sync not here yet", frames(describePortal, executeAll), 0},
		{"half a sync", frames(executeAll, syncMsg[:3]), 0},
		{"flush instead of sync", frames(executeAll, []byte{'H', 0, 0, 0, 4}), 0},
		{"named portal", frames(executeNamed, syncMsg), 0},
		{"row limit", frames(executeTen, syncMsg), 0},
		{"statement describe", frames(describeStatement, executeAll, syncMsg), 0},
		{"two executes", frames(executeAll, executeAll, syncMsg), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, n := portalRunAhead(tc.in)
			if n != tc.frames {
				t.Fatalf("%d frames, want %d", n, tc.frames)
			}
			if n > 0 && !bytes.Equal(run, tc.in[:len(run)]) {
				t.Fatalf("run %q is not the input's start", run)
			}
			if n > 0 && !bytes.HasSuffix(run, syncMsg) {
				t.Fatalf("run %q does not end with the Sync", run)
			}
		})
	}
}

// FuzzPortalRunAhead: whatever the client sent, the run found is a prefix
// of it that ends with a Sync, and never more than it.
func FuzzPortalRunAhead(f *testing.F) {
	f.Add(frames(describePortal, executeAll, syncMsg))
	f.Add(frames(executeAll, syncMsg))
	f.Add([]byte{'E', 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		run, n := portalRunAhead(in)
		if n == 0 {
			if run != nil {
				t.Fatalf("no run, but bytes %q", run)
			}
			return
		}
		if n != 2 && n != 3 || !bytes.HasPrefix(in, run) || !bytes.HasSuffix(run, syncMsg) {
			t.Fatalf("run %q (%d frames) of %q", run, n, in)
		}
	})
}
