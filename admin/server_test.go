package admin_test

// The server's reads, authentication and routing, and status's fan-out.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/admin/admintest"
	"github.com/shardproxy/shardproxy/metadata"
)

func TestNewServerNeedsToken(t *testing.T) {
	if _, err := admin.NewServer(admin.Config{}, admintest.New("n1", nil)); err == nil || !strings.Contains(err.Error(), "admin_token") {
		t.Fatalf("NewServer without a token: %v, want an error naming admin_token", err)
	}
	if _, err := admin.NewServer(admin.Config{Token: "x"}, nil); err == nil {
		t.Fatal("NewServer without a cluster succeeded")
	}
}

func TestAuth(t *testing.T) {
	srv := serve(t, admintest.New("n1", testMap(t)))
	cases := []struct {
		name   string
		header string // the whole Authorization header; "" for none
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer s3cre", http.StatusUnauthorized},
		{"token longer", "Bearer s3cretX", http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"no scheme", token, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"right token", "Bearer " + token, http.StatusOK},
		{"scheme is case-insensitive", "bearer " + token, http.StatusOK},
	}
	for _, path := range []string{"/admin/v1/local", "/admin/v1/ranges", "/admin/v1/no-such-thing"} {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct{ Error, Code string }
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				want := tc.want
				if want == http.StatusOK && strings.HasSuffix(path, "no-such-thing") {
					want = http.StatusNotFound // only after authentication
				}
				if resp.StatusCode != want {
					t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, want, body)
				}
				if want == http.StatusUnauthorized {
					if body.Code != "unauthorized" || resp.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("401 body %+v, WWW-Authenticate %q", body, resp.Header.Get("WWW-Authenticate"))
					}
				}
			})
		}
	}
}

func TestRouting(t *testing.T) {
	srv := serve(t, admintest.New("n1", testMap(t)))
	cases := []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{http.MethodGet, "/admin/v1/split", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{http.MethodPost, "/admin/v1/status", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodDelete, "/admin/v1/ranges", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodGet, "/admin/v1/", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/admin/v1/ranges/", http.StatusOK, "", ""},
		{http.MethodGet, "/admin/v2/ranges", http.StatusNotFound, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := call(t, srv.URL, tc.method, tc.path, token, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.code != "" && !strings.Contains(body, `"code": "`+tc.code+`"`) {
				t.Errorf("body %s lacks code %s", body, tc.code)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestReads pins the JSON of the read endpoints.
func TestReads(t *testing.T) {
	c := admintest.New("n1", testMap(t))
	c.SetMap(testMap(t)) // applied index 1
	srv := serve(t, c)
	for _, name := range []string{"local", "shards", "tables", "ranges"} {
		t.Run(name, func(t *testing.T) {
			resp, body := call(t, srv.URL, http.MethodGet, "/admin/v1/"+name, token, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			golden(t, name+".json", body)
		})
	}
}

func TestReadsWithoutMap(t *testing.T) {
	srv := serve(t, admintest.New("n1", nil))
	for _, name := range []string{"shards", "tables", "ranges"} {
		resp, body := call(t, srv.URL, http.MethodGet, "/admin/v1/"+name, token, "")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code": "no_map"`) {
			t.Errorf("%s without a map: %d %s", name, resp.StatusCode, body)
		}
	}
	_, body := call(t, srv.URL, http.MethodGet, "/admin/v1/local", token, "")
	if !strings.Contains(body, `"map_version": null`) {
		t.Errorf("local without a map: %s", body)
	}
}

// TestStatusOffline pins status's JSON for nodes it need not call: itself,
// and a member missing from the directory.
func TestStatusOffline(t *testing.T) {
	c := statusFixture(t)
	srv := serve(t, c)
	resp, body := call(t, srv.URL, http.MethodGet, "/admin/v1/status", token, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	golden(t, "status.json", body)
}

// statusFixture is n1, the leader, with n2, a non-voter that has not
// registered in the directory yet.
func statusFixture(t testing.TB) *admintest.Cluster {
	c := admintest.New("n1", testMap(t))
	c.SetNodes(metadata.NodeInfo{ID: "n1", RaftAddr: "127.0.0.1:7001", PGAddr: "127.0.0.1:6432", HTTPAddr: "127.0.0.1:9187"})
	c.SetServers([]metadata.ServerInfo{
		{ID: "n1", Addr: "127.0.0.1:7001", Voter: true, Leader: true},
		{ID: "n2", Addr: "127.0.0.1:7002"},
	}, nil)
	return c
}

func TestStatusPeers(t *testing.T) {
	m := testMap(t)
	n2 := admintest.New("n2", m)
	n2.SetLeader(metadata.NodeInfo{ID: "n1"})
	n2srv := serve(t, n2)
	impostor := serve(t, admintest.New("nX", m))
	otherToken := serve(t, admintest.New("n6", m), func(c *admin.Config) { c.Token = "other" })
	notShardproxy := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notShardproxy.Close)

	self := admintest.New("n1", m)
	self.SetNodes(
		metadata.NodeInfo{ID: "n1", HTTPAddr: "unused:1"},
		metadata.NodeInfo{ID: "n2", HTTPAddr: hostPort(n2srv)},
		metadata.NodeInfo{ID: "n3", HTTPAddr: deadAddr(t)},
		metadata.NodeInfo{ID: "n5", HTTPAddr: hostPort(impostor)},
		metadata.NodeInfo{ID: "n6", HTTPAddr: hostPort(otherToken)},
		metadata.NodeInfo{ID: "n8", HTTPAddr: hostPort(notShardproxy)},
		metadata.NodeInfo{ID: "n9", PGAddr: "127.0.0.1:6439"},
	)
	self.SetServers([]metadata.ServerInfo{
		{ID: "n1", Voter: true, Leader: true},
		{ID: "n2", Voter: true},
		{ID: "n3", Voter: true},
		{ID: "n7", Addr: "10.0.0.7:7001"},
	}, nil)
	srv := serve(t, self, func(c *admin.Config) { c.PeerTimeout = 10 * time.Second })

	cl, err := admin.NewClient(admin.ClientConfig{Addr: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || st.Leader != "n1" {
		t.Errorf("node %q leader %q", st.Node, st.Leader)
	}
	type row struct {
		role      string
		reachable bool
		version   bool   // map_version reported
		errPart   string // in Error
	}
	want := map[string]row{
		"n1": {"leader", true, true, ""},
		"n2": {"follower", true, true, ""},
		"n3": {"follower", false, false, "(connection refused)"},
		"n5": {"none", false, false, `says it is "nX"`},
		"n6": {"none", false, false, "refused this node's admin token"},
		"n7": {"nonvoter", false, false, "not in the node directory"},
		"n8": {"none", false, false, "is it a shardproxy HTTP port"},
		"n9": {"none", false, false, "registered no HTTP address"},
	}
	var ids []string
	for _, n := range st.Nodes {
		ids = append(ids, n.ID)
		w, ok := want[n.ID]
		if !ok {
			t.Errorf("unexpected node %+v", n)
			continue
		}
		if n.Role != w.role || n.Reachable != w.reachable || (n.MapVersion != nil) != w.version || !strings.Contains(n.Error, w.errPart) || (w.errPart == "") != (n.Error == "") {
			t.Errorf("%s: role %q reachable %v map_version %v error %q; want %+v", n.ID, n.Role, n.Reachable, n.MapVersion, n.Error, w)
		}
		if w.version && *n.MapVersion != 7 {
			t.Errorf("%s: map version %d", n.ID, *n.MapVersion)
		}
	}
	if got := strings.Join(ids, ","); got != "n1,n2,n3,n5,n6,n7,n8,n9" {
		t.Errorf("nodes %s, want sorted by id", got)
	}
}

// TestStatusSlowPeer: a node that never answers costs PeerTimeout and is
// shown unreachable; status still answers.
func TestStatusSlowPeer(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	self := admintest.New("n1", testMap(t))
	self.SetNodes(metadata.NodeInfo{ID: "n1"}, metadata.NodeInfo{ID: "n2", HTTPAddr: hostPort(hang)})
	srv := serve(t, self, func(c *admin.Config) { c.PeerTimeout = 50 * time.Millisecond })
	cl, _ := admin.NewClient(admin.ClientConfig{Addr: srv.URL, Token: token})
	st, err := cl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[1].Reachable || !strings.Contains(st.Nodes[1].Error, "no answer within 50ms") {
		t.Fatalf("status %+v", st.Nodes)
	}
}

func TestStatusMembershipUnknown(t *testing.T) {
	self := admintest.New("n1", testMap(t))
	self.SetServers(nil, errors.New("raft is shutting down"))
	srv := serve(t, self)
	cl, _ := admin.NewClient(admin.ClientConfig{Addr: srv.URL, Token: token})
	st, err := cl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.MembershipError != "raft is shutting down" || len(st.Nodes) != 1 || st.Nodes[0].Role != "unknown" || !st.Nodes[0].Reachable {
		t.Fatalf("status %+v", st)
	}
}
