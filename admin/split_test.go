package admin_test

// Splits: input checking, applying on the leader, forwarding from a
// follower (and waiting to see the result), and every way forwarding can
// fail.

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/admin/admintest"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

func TestSplitBadRequest(t *testing.T) {
	srv := serve(t, admintest.New("n1", testMap(t)))
	cases := []struct {
		name, body string
		status     int
		msg        string // part of the error message
	}{
		{"empty body", "", 400, "must be a JSON object"},
		{"null", "null", 400, "a keyspace position to cut at"},
		{"empty object", "{}", 400, "a keyspace position to cut at"},
		{"both", `{"at": "1", "range_lo": "0"}`, 400, "not both"},
		{"unknown field", `{"at": "1", "shard": "s2"}`, 400, "unknown field"},
		{"number, not string", `{"at": 1}`, 400, "must be a JSON object"},
		{"not a number", `{"at": "one"}`, 400, `at must be a decimal integer`},
		{"overflow", `{"at": "9223372036854775808"}`, 400, "at must be a decimal integer"},
		{"bad range_lo", `{"range_lo": "0x10"}`, 400, "range_lo must be a decimal integer"},
		{"trailing data", `{"at": "1"} {"at": "2"}`, 400, "nothing after it"},
		{"array", `[{"at": "1"}]`, 400, "must be a JSON object"},
		{"too big", `{"at": "1"` + strings.Repeat(" ", 70<<10) + `}`, 400, "larger than"},
		{"at a boundary", `{"at": "0"}`, 409, "already starts the range [0, 9223372036854775808)"},
		{"at the start of the keyspace", `{"at": "-9223372036854775808"}`, 409, "already starts"},
		{"no such range", `{"range_lo": "5"}`, 409, "no range starts at 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, srv.URL, http.MethodPost, "/admin/v1/split", token, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("status %d body %s; want %d with %q", resp.StatusCode, body, tc.status, tc.msg)
			}
		})
	}
}

// TestSplitRangeMiddle checks where range_lo cuts, including the ranges
// at both ends of the keyspace and ranges too small to cut.
func TestSplitRangeMiddle(t *testing.T) {
	ranges := []keyspace.Range{
		{Lo: math.MinInt64, Hi: -5},
		{Lo: -5, Hi: -4}, // one position
		{Lo: -4, Hi: -2}, // two
		{Lo: -2, Hi: 1},  // three: the lower half is the smaller
		{Lo: 1, Hi: math.MaxInt64},
		{Lo: math.MaxInt64, ToEnd: true}, // one position, the last
	}
	cases := []struct {
		lo     int64
		status int
		at     string
	}{
		{math.MinInt64, 200, "-4611686018427387907"},
		{-5, 409, ""},
		{-4, 200, "-3"},
		{-2, 200, "-1"},
		{1, 200, "4611686018427387904"},
		{math.MaxInt64, 409, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.lo), func(t *testing.T) {
			m := &metadata.Map{Version: 3, Shards: []metadata.Shard{{ID: "s1"}}}
			for _, r := range ranges {
				m.Ranges = append(m.Ranges, metadata.Assignment{Range: r, Shard: "s1"})
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			srv := serve(t, admintest.New("n1", m))
			resp, body := call(t, srv.URL, http.MethodPost, "/admin/v1/split", token, fmt.Sprintf(`{"range_lo": "%d"}`, tc.lo))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.status == 200 && !strings.Contains(body, `"at": "`+tc.at+`"`) {
				t.Errorf("cut at the wrong place: %s, want at %s", body, tc.at)
			}
		})
	}
	// The whole keyspace in one range is cut at 0.
	m, _ := metadata.NewMap(1, []metadata.Shard{{ID: "s1"}})
	cl := client(t, serve(t, admintest.New("n1", m)).URL)
	res, err := cl.SplitRange(t.Context(), math.MinInt64)
	if err != nil || res.At != "0" {
		t.Fatalf("splitting the whole keyspace: %+v, %v", res, err)
	}
}

func client(t testing.TB, addr string) *admin.Client {
	t.Helper()
	cl, err := admin.NewClient(admin.ClientConfig{Addr: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestSplitOnLeader(t *testing.T) {
	c := admintest.New("n1", testMap(t))
	srv := serve(t, c)
	resp, body := call(t, srv.URL, http.MethodPost, "/admin/v1/split", token, `{"at": "100"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	golden(t, "split.json", body)
	if cmds := c.Commands(); len(cmds) != 1 || cmds[0].Type != metadata.CmdSplitRange || cmds[0].At != 100 {
		t.Errorf("applied %+v", cmds)
	}
	rl, err := client(t, srv.URL).Ranges(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rl.MapVersion != 8 || len(rl.Ranges) != 3 || rl.Ranges[2].Lo != "100" {
		t.Errorf("ranges after the split: %+v", rl)
	}
}

func TestSplitApplyErrors(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"rejected", fmt.Errorf("%w: shard s2 is being moved", metadata.ErrRejected), 409, "rejected"},
		{"outcome unknown", errors.New("metadata: leadership was lost before the command was known to commit"), 500, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := admintest.New("n1", testMap(t))
			c.FailApply(tc.err)
			srv := serve(t, c)
			resp, body := call(t, srv.URL, http.MethodPost, "/admin/v1/split", token, `{"at": "100"}`)
			if resp.StatusCode != tc.status || !strings.Contains(body, `"code": "`+tc.code+`"`) || !strings.Contains(body, tc.err.Error()) {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
		})
	}
}

// pair is a leader and a follower that replicates the leader's maps a
// moment after the leader answers (in another goroutine), as Raft does.
type pair struct {
	leader, follower *admintest.Cluster
	leaderSrv        *httpServer
	mu               sync.Mutex
	forwardedBy      []string // the header on requests the leader saw
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{leader: admintest.New("n1", testMap(t)), follower: admintest.New("n2", testMap(t))}
	s, err := admin.NewServer(admin.Config{Token: token}, p.leader)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.forwardedBy = append(p.forwardedBy, r.Header.Get("Shardproxy-Forwarded-By"))
		p.mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	p.leaderSrv = srv
	p.follower.SetLeader(metadata.NodeInfo{ID: "n1", HTTPAddr: srv.Addr})
	p.leader.OnApply(func(m *metadata.Map) { go p.follower.SetMap(m) })
	return p
}

// noWaiter hides admintest's MapWaiter, so the server polls.
type noWaiter struct{ admin.Cluster }

// leaderUnknown is a follower that does not know the leader until Apply
// tells it.
type leaderUnknown struct{ *admintest.Cluster }

func (leaderUnknown) Leader() metadata.NodeInfo { return metadata.NodeInfo{} }

func TestSplitForwarded(t *testing.T) {
	cases := []struct {
		name string
		wrap func(*admintest.Cluster) admin.Cluster
	}{
		{"follower waits with MapWaiter", func(c *admintest.Cluster) admin.Cluster { return c }},
		{"follower polls its map", func(c *admintest.Cluster) admin.Cluster { return noWaiter{c} }},
		{"leader learnt from Apply", func(c *admintest.Cluster) admin.Cluster { return leaderUnknown{c} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			fsrv := serve(t, tc.wrap(p.follower))
			cl := client(t, fsrv.URL)
			res, err := cl.SplitAt(t.Context(), 100)
			if err != nil {
				t.Fatal(err)
			}
			if res.MapVersion != 8 || res.At != "100" || res.Warning != "" || res.Upper == nil || res.Upper.Lo != "100" {
				t.Errorf("result %+v", res)
			}
			// Read-your-writes on the node that was asked.
			rl, err := cl.Ranges(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if rl.MapVersion != 8 || len(rl.Ranges) != 3 {
				t.Errorf("the follower does not show its own write: %+v", rl)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.forwardedBy) != 1 || p.forwardedBy[0] != "n2" {
				t.Errorf("the leader saw Shardproxy-Forwarded-By %q", p.forwardedBy)
			}
		})
	}
}

// TestSplitForwardedNotVisible: the write is committed, but the follower
// does not catch up in time; it says so rather than failing.
func TestSplitForwardedNotVisible(t *testing.T) {
	p := newPair(t)
	p.leader.OnApply(nil) // the follower never hears of it
	fsrv := serve(t, p.follower, func(c *admin.Config) { c.WaitTimeout = time.Millisecond })
	res, err := client(t, fsrv.URL).SplitAt(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if res.MapVersion != 8 || !strings.Contains(res.Warning, "n2 had not applied map version 8") {
		t.Errorf("result %+v", res)
	}
}

// TestSplitForwardFailures: what the user hears when a write cannot reach a
// leader that can apply it.
func TestSplitForwardFailures(t *testing.T) {
	t.Run("no leader", func(t *testing.T) {
		c := admintest.New("n2", testMap(t))
		c.SetLeader(metadata.NodeInfo{})
		_, err := client(t, serve(t, c).URL).SplitAt(t.Context(), 100)
		if !errors.Is(err, admin.ErrNoLeader) || !strings.HasPrefix(err.Error(), "the cluster has no leader right now") {
			t.Fatalf("err %v", err)
		}
		var apiErr *admin.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
			t.Fatalf("err %#v", err)
		}
	})
	t.Run("leader unreachable", func(t *testing.T) {
		c := admintest.New("n2", testMap(t))
		c.SetLeader(metadata.NodeInfo{ID: "n1", HTTPAddr: deadAddr(t)})
		_, err := client(t, serve(t, c).URL).SplitAt(t.Context(), 100)
		var apiErr *admin.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Code != "leader_unreachable" || !strings.Contains(err.Error(), "leader n1") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("leader without an HTTP address", func(t *testing.T) {
		c := admintest.New("n2", testMap(t))
		c.SetLeader(metadata.NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:7001"})
		_, err := client(t, serve(t, c).URL).SplitAt(t.Context(), 100)
		var apiErr *admin.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "leader_unreachable" || !strings.Contains(err.Error(), "no HTTP address") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("leader refuses", func(t *testing.T) {
		p := newPair(t)
		p.leader.FailApply(fmt.Errorf("%w: shard s2 is being moved", metadata.ErrRejected))
		_, err := client(t, serve(t, p.follower).URL).SplitAt(t.Context(), 100)
		var apiErr *admin.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "rejected" || !strings.Contains(err.Error(), "shard s2 is being moved") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("leader too slow", func(t *testing.T) {
		release := make(chan struct{})
		hang := serveHandler(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
		c := admintest.New("n2", testMap(t))
		c.SetLeader(metadata.NodeInfo{ID: "n1", HTTPAddr: hang.Addr})
		srv := serve(t, c, func(c *admin.Config) { c.WriteTimeout = 50 * time.Millisecond })
		_, err := client(t, srv.URL).SplitAt(t.Context(), 100)
		if err == nil || !strings.Contains(err.Error(), "(timed out); the split may still be applied") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("leader has another token", func(t *testing.T) {
		leader := serve(t, admintest.New("n1", testMap(t)), func(c *admin.Config) { c.Token = "other" })
		c := admintest.New("n2", testMap(t))
		c.SetLeader(metadata.NodeInfo{ID: "n1", HTTPAddr: hostPort(leader)})
		_, err := client(t, serve(t, c).URL).SplitAt(t.Context(), 100)
		var apiErr *admin.APIError
		if errors.Is(err, admin.ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || !strings.Contains(err.Error(), "every node needs the same admin_token") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("one hop only", func(t *testing.T) {
		// n1 and n2 each believe the other leads: the write must stop at
		// the second node, not bounce.
		n1, n2 := admintest.New("n1", testMap(t)), admintest.New("n2", testMap(t))
		var hits [2]int
		var mu sync.Mutex
		count := func(i int, c admin.Cluster) *httpServer {
			s, _ := admin.NewServer(admin.Config{Token: token}, c)
			return serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits[i]++
				mu.Unlock()
				s.ServeHTTP(w, r)
			}))
		}
		s1, s2 := count(0, n1), count(1, n2)
		n1.SetLeader(metadata.NodeInfo{ID: "n2", HTTPAddr: s2.Addr})
		n2.SetLeader(metadata.NodeInfo{ID: "n1", HTTPAddr: s1.Addr})
		_, err := client(t, s1.URL).SplitAt(t.Context(), 100)
		if !errors.Is(err, admin.ErrNoLeader) || !strings.Contains(err.Error(), "n1 forwarded this write to n2") {
			t.Fatalf("err %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if hits != [2]int{1, 1} {
			t.Errorf("requests per node %v, want one each", hits)
		}
	})
}
