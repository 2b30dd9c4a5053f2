package metadata

// The hclog adapter is internal; this checks it keeps raft's warnings and
// errors and drops the chatter.

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapterKeepsWarningsAndErrors(t *testing.T) {
	var buf bytes.Buffer
	logger := newHCLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft").
		Named("net").With("peer", "n2")
	cases := []struct {
		level hclog.Level
		msg   string
		kept  bool
	}{
		{hclog.Trace, "trace line", false},
		{hclog.Debug, "debug line", false},
		{hclog.Info, "entering leader state", false},
		{hclog.Warn, "heartbeat timeout reached", true},
		{hclog.Error, "failed to contact", true},
	}
	for _, tc := range cases {
		buf.Reset()
		logger.Log(tc.level, tc.msg, "term", 3)
		out := buf.String()
		if kept := strings.Contains(out, tc.msg); kept != tc.kept {
			t.Fatalf("level %v: logged %q, want kept=%v", tc.level, out, tc.kept)
		}
		if tc.kept && !strings.Contains(out, "component=raft.net peer=n2 term=3") {
			t.Fatalf("attributes lost: %q", out)
		}
	}
	buf.Reset()
	logger.StandardLogger(nil).Print("from the standard logger")
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Fatalf("standard logger wrote %q", buf.String())
	}
}
