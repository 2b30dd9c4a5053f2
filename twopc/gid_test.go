package twopc_test

// Gids: parseable, unique, short enough for PostgreSQL, safely quoted.

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/twopc"
)

func TestGIDRoundTrip(t *testing.T) {
	for _, node := range []string{"n1", "node:with:colons", "ünïcode", strings.Repeat("x", twopc.MaxNodeIDLen), "it's a \\ node"} {
		before := time.Now()
		gid := twopc.NewGID(node)
		if len(gid) > twopc.MaxGIDLen {
			t.Errorf("gid for %q is %d bytes", node, len(gid))
		}
		if !strings.HasPrefix(gid, twopc.GIDPrefix) {
			t.Errorf("gid %q lacks the prefix", gid)
		}
		got, created, ok := twopc.ParseGID(gid)
		if !ok || got != node {
			t.Fatalf("ParseGID(%q) = %q, %v", gid, got, ok)
		}
		if created.Before(before.Add(-time.Second)) || created.After(time.Now().Add(time.Second)) {
			t.Errorf("ParseGID(%q) created %v, want about %v", gid, created, before)
		}
	}
}

func TestGIDUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 100000 {
		g := twopc.NewGID("n1")
		if seen[g] {
			t.Fatalf("duplicate gid %s", g)
		}
		seen[g] = true
	}
}

func TestParseGIDRejects(t *testing.T) {
	valid := twopc.NewGID("n1")
	stamp := valid[strings.LastIndexByte(valid, ':')+1:]
	for _, gid := range []string{
		"",
		"n1:" + stamp,          // no prefix
		"shardproxy:" + stamp,  // no node
		"shardproxy::" + stamp, // empty node
		"shardproxy:n1:" + strings.ToUpper(stamp), // not canonical
		"shardproxy:n1:abc",                       // no random part
		"shardproxy:n1:abc.0123",                  // short random part
		"shardproxy:n1:abc.0123456789abcdeg",      // not hex
		"shardproxy:n1:-1.0123456789abcdef",       // negative time
		"shardproxy:n1:0abc.0123456789abcdef",     // leading zero
		"shardproxy:bad\nnode:abc.0123456789abcdef",
		"shardproxy:" + strings.Repeat("x", 200) + ":abc.0123456789abcdef",
	} {
		if node, _, ok := twopc.ParseGID(gid); ok {
			t.Errorf("ParseGID(%q) accepted, node %q", gid, node)
		}
	}
}

func TestNewGIDPanicsOnBadNode(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewGID accepted an empty node id")
		}
	}()
	twopc.NewGID("")
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"shardproxy:n1:x":  "'shardproxy:n1:x'",
		"it's":             "'it''s'",
		`back\slash`:       `E'back\\slash'`,
		`both ' and \ too`: `E'both '' and \\ too'`,
	} {
		if got := twopc.QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

// A coordinator's gids carry one incarnation, another coordinator's
// (another process) a different one; ParseGID still reads them.
func TestGIDIncarnation(t *testing.T) {
	c1 := newCoordinator(t, newMemLog(), twopc.Hooks{})
	c2 := newCoordinator(t, newMemLog(), twopc.Hooks{})
	g1, g1b, g2 := c1.NewGID(), c1.NewGID(), c2.NewGID()
	i1, ok1 := twopc.IncarnationOf(g1)
	i1b, _ := twopc.IncarnationOf(g1b)
	i2, ok2 := twopc.IncarnationOf(g2)
	if !ok1 || !ok2 || i1 != i1b || i1 == i2 || g1 == g1b {
		t.Fatalf("gids %s %s %s: incarnations %x %x %x", g1, g1b, g2, i1, i1b, i2)
	}
	for _, g := range []string{g1, g2} {
		if node, _, ok := twopc.ParseGID(g); !ok || node != "n1" {
			t.Errorf("ParseGID(%q) = %q, %v", g, node, ok)
		}
	}
	for _, bad := range []string{"shardproxy:n1:abc", "x.123", "shardproxy:n1:abc.zz00000000000000"} {
		if _, ok := twopc.IncarnationOf(bad); ok {
			t.Errorf("IncarnationOf(%q) accepted", bad)
		}
	}
}
