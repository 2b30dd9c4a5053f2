package main

// `shardproxy admin` end to end against an in-process node's API: flags,
// the token's sources, both output formats, and the messages on failure.

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/admin/admintest"
	"github.com/shardproxy/shardproxy/metadata"
)

func adminServer(t *testing.T) *httptest.Server {
	t.Helper()
	m, err := metadata.NewMap(3, []metadata.Shard{{ID: "s1", Primary: "127.0.0.1:15432"}, {ID: "s2", Primary: "127.0.0.1:15442"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := admin.NewServer(admin.Config{Token: "tok"}, admintest.New("n1", m))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// runAdmin runs `shardproxy admin args...` with env as the environment.
func runAdmin(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := newAdminCmd(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestAdminCommand(t *testing.T) {
	srv := adminServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	withToken := map[string]string{"SHARDPROXY_ADMIN_TOKEN": "tok"}

	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		out     string // exact stdout, when set
		outPart string // part of stdout
		errPart string // part of the error; "" for success
	}{
		{name: "ranges table", env: withToken, args: []string{"--addr", srv.URL, "ranges"},
			out: "LO                    HI                   SHARD\n-9223372036854775808  0                    s1\n0                     9223372036854775808  s2\nmap version 3\n"},
		{name: "token flag wins over env", env: map[string]string{"SHARDPROXY_ADMIN_TOKEN": "wrong"}, args: []string{"--addr", srv.URL, "--token", "tok", "shards"}, outPart: "s1     127.0.0.1:15432  -         1\n"},
		{name: "json", env: withToken, args: []string{"--addr", srv.URL, "-o", "json", "tables"}, out: "{\n  \"map_version\": 3,\n  \"tables\": []\n}\n"},
		{name: "status", env: withToken, args: []string{"--addr", srv.URL, "status"}, outPart: "n1    leader  yes"},
		{name: "split at", env: withToken, args: []string{"--addr", srv.URL, "split", "--at", "100"}, out: "split at 100: [0, 100) on s2 and [100, 9223372036854775808) on s2; map version 4\n"},
		{name: "split range", env: withToken, args: []string{"--addr", srv.URL, "split", "--range", "-9223372036854775808"}, outPart: "split at -4611686018427387904: "},
		{name: "split needs one flag", env: withToken, args: []string{"--addr", srv.URL, "split"}, errPart: "exactly one of --at N or --range LO"},
		{name: "split both flags", env: withToken, args: []string{"--addr", srv.URL, "split", "--at", "1", "--range", "0"}, errPart: "exactly one"},
		{name: "split bad number", env: withToken, args: []string{"--addr", srv.URL, "split", "--at", "1e3"}, errPart: "--at 1e3: a keyspace position is an integer"},
		{name: "split at a boundary", env: withToken, args: []string{"--addr", srv.URL, "split", "--at", "0"}, errPart: "0 already starts the range"},
		{name: "no token", args: []string{"--addr", srv.URL, "status"}, errPart: "no admin token: pass --token or set SHARDPROXY_ADMIN_TOKEN"},
		{name: "wrong token", args: []string{"--addr", srv.URL, "--token", "nope", "status"}, errPart: "the admin token was refused"},
		{name: "nobody there", env: withToken, args: []string{"--addr", dead, "status"}, errPart: "no shardproxy node answers at http://" + dead + " (connection refused)"},
		{name: "bad output", env: withToken, args: []string{"--addr", srv.URL, "-o", "yaml", "status"}, errPart: "-o yaml: the output format is table or json"},
		{name: "stray argument", env: withToken, args: []string{"--addr", srv.URL, "ranges", "extra"}, errPart: "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runAdmin(t, tc.env, tc.args...)
			switch {
			case tc.errPart == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)):
				t.Fatalf("error %v, want one containing %q", err, tc.errPart)
			case tc.out != "" && out != tc.out:
				t.Errorf("output\n%s\nwant\n%s", out, tc.out)
			case !strings.Contains(out, tc.outPart):
				t.Errorf("output\n%s\nlacks %q", out, tc.outPart)
			}
		})
	}
}

// TestAdminJSONIsTheAPIs: -o json prints what the API answered.
func TestAdminJSONIsTheAPIs(t *testing.T) {
	srv := adminServer(t)
	out, err := runAdmin(t, nil, "--addr", srv.URL, "--token", "tok", "-o", "json", "ranges")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1/ranges", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	api, _ := io.ReadAll(resp.Body)
	if out != string(api) {
		t.Errorf("-o json\n%s\nAPI\n%s", out, api)
	}
}
