package admin_test

// The client's errors (the sentences a person reads in the terminal) and
// the CLI's output formats, both through the client against a real
// server.

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/admin/admintest"
	"github.com/shardproxy/shardproxy/metadata"
)

func TestNewClientAddr(t *testing.T) {
	cases := []struct {
		addr, base string // base "" for an error
	}{
		{"http://127.0.0.1:9187", "http://127.0.0.1:9187"},
		{"http://127.0.0.1:9187/", "http://127.0.0.1:9187"},
		{"127.0.0.1:9187", "http://127.0.0.1:9187"},
		{"https://proxy.example:443", "https://proxy.example:443"},
		{"", ""},
		{"ftp://127.0.0.1:9187", ""},
		{"http://", ""},
	}
	for _, tc := range cases {
		c, err := admin.NewClient(admin.ClientConfig{Addr: tc.addr})
		switch {
		case tc.base == "" && err == nil:
			t.Errorf("%q: accepted as %s", tc.addr, c.Addr())
		case tc.base != "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.base != "" && c.Addr() != tc.base:
			t.Errorf("%q: base %s, want %s", tc.addr, c.Addr(), tc.base)
		}
	}
}

func TestClientErrors(t *testing.T) {
	srv := serve(t, admintest.New("n1", testMap(t)))
	dead := deadAddr(t)
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/v1/ranges" {
			_, _ = io.WriteString(w, "<html>hello</html>")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(foreign.Close)

	status := func(c *admin.Client) error {
		_, err := c.Status(t.Context())
		return err
	}
	cases := []struct {
		name, addr, token string
		call              func(*admin.Client) error
		want              string // the whole message, or its start when it ends with "..."
		is                error
	}{
		{"nothing listening", dead, token, status, "no shardproxy node answers at http://" + dead + " (connection refused)", nil},
		{"wrong token", srv.URL, "nope", status, "the admin token was refused (the token does not match this node's admin token)", admin.ErrUnauthorized},
		{"no token", srv.URL, "", status, "the admin token was refused (no bearer token in the Authorization header)", admin.ErrUnauthorized},
		{"not shardproxy, error", foreign.URL, token, status, foreign.URL + " answered 404 Not Found, not the admin API's JSON (is it a shardproxy HTTP port?)", nil},
		{"not shardproxy, 200", foreign.URL, token, func(c *admin.Client) error { _, err := c.Ranges(t.Context()); return err }, foreign.URL + " answered with something that is not the admin API's JSON...", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := admin.NewClient(admin.ClientConfig{Addr: tc.addr, Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			if err == nil {
				t.Fatal("no error")
			}
			if prefix, ok := strings.CutSuffix(tc.want, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("error %q, want it to start %q", err, prefix)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.is)
			}
		})
	}
	var unreachable *admin.UnreachableError
	c, _ := admin.NewClient(admin.ClientConfig{Addr: dead, Token: token})
	if _, err := c.Shards(t.Context()); !errors.As(err, &unreachable) {
		t.Errorf("refused connection: %T, want *admin.UnreachableError", err)
	}
}

// TestOutput pins the CLI's two formats: the tables, and JSON identical to
// what the API sent.
func TestOutput(t *testing.T) {
	noTables := testMap(t)
	noTables.Tables = nil
	cases := []struct {
		name, path string
		cluster    *admintest.Cluster
		method     string
		body       string
		get        func(*admin.Client) (tabler, error)
	}{
		{"status", "/admin/v1/status", statusFixture(t), "GET", "", func(c *admin.Client) (tabler, error) { return c.Status(t.Context()) }},
		{"shards", "/admin/v1/shards", admintest.New("n1", testMap(t)), "GET", "", func(c *admin.Client) (tabler, error) { return c.Shards(t.Context()) }},
		{"tables", "/admin/v1/tables", admintest.New("n1", testMap(t)), "GET", "", func(c *admin.Client) (tabler, error) { return c.Tables(t.Context()) }},
		{"tables-none", "/admin/v1/tables", admintest.New("n1", noTables), "GET", "", func(c *admin.Client) (tabler, error) { return c.Tables(t.Context()) }},
		{"ranges", "/admin/v1/ranges", admintest.New("n1", testMap(t)), "GET", "", func(c *admin.Client) (tabler, error) { return c.Ranges(t.Context()) }},
		{"split", "", admintest.New("n1", testMap(t)), "", "", func(c *admin.Client) (tabler, error) { return c.SplitAt(t.Context(), 100) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.cluster)
			res, err := tc.get(client(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			var tbl bytes.Buffer
			if err := res.WriteTable(&tbl); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", tbl.String())

			var js bytes.Buffer
			if err := admin.WriteJSON(&js, res); err != nil {
				t.Fatal(err)
			}
			if tc.path == "" {
				golden(t, tc.name+".json", js.String())
				return
			}
			_, raw := call(t, srv.URL, tc.method, tc.path, token, tc.body)
			if js.String() != raw {
				t.Errorf("-o json differs from the API's answer:\n--- json\n%s--- API\n%s", js.String(), raw)
			}
		})
	}
}

func TestSplitOutputWithWarning(t *testing.T) {
	res := &admin.SplitResult{At: "5", MapVersion: 9, Warning: "n2 is behind"}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if want := "split at 5; map version 9\nwarning: n2 is behind\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestStatusOutputNoLeader(t *testing.T) {
	st := &admin.Status{Node: "n2", Nodes: []admin.NodeStatus{{ID: "n2", Role: "follower", Reachable: true}}}
	var b bytes.Buffer
	if err := st.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "leader: none (the cluster has no leader right now) (as n2 sees it)\n") {
		t.Errorf("got %q", b.String())
	}
}

func TestRangeInfoRange(t *testing.T) {
	m, err := admintest.Split(testMap(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	rl := mustRanges(t, m)
	for i, ri := range rl.Ranges {
		r, err := ri.Range()
		if err != nil || r != m.Ranges[i].Range {
			t.Errorf("%+v: %v, %v; want %v", ri, r, err, m.Ranges[i].Range)
		}
	}
	for _, bad := range []admin.RangeInfo{{Lo: "x", Hi: "1"}, {Lo: "1", Hi: "y"}, {Lo: "5", Hi: "5"}} {
		if _, err := bad.Range(); err == nil {
			t.Errorf("%+v parsed", bad)
		}
	}
}

func mustRanges(t *testing.T, m *metadata.Map) *admin.RangeList {
	t.Helper()
	rl, err := client(t, serve(t, admintest.New("n1", m)).URL).Ranges(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// tabler is what every answer type offers the CLI.
type tabler interface{ WriteTable(io.Writer) error }
