package admin_test

// Shared test fixtures: a fixed map, servers over admintest clusters, raw
// requests, and golden files (rewrite them with -update).

import (
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const token = "s3cret"

// testMap is two shards splitting the keyspace at 0, three tables,
// version 7.
func testMap(t testing.TB) *metadata.Map {
	t.Helper()
	m, err := metadata.NewMap(7, []metadata.Shard{
		{ID: "s1", Primary: "127.0.0.1:15432", Replicas: []string{"127.0.0.1:15433"}},
		{ID: "s2", Primary: "127.0.0.1:15442"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Tables = []metadata.Table{
		{Schema: "public", Name: "accounts", Key: "id"},
		{Schema: "public", Name: "orders", Key: "account_id"},
		{Schema: "public", Name: "countries", Reference: true},
	}
	return m
}

// serve runs an admin server for c; opts adjust its configuration.
func serve(t testing.TB, c admin.Cluster, opts ...func(*admin.Config)) *httptest.Server {
	t.Helper()
	cfg := admin.Config{Token: token}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := admin.NewServer(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// hostPort is srv's address as the node directory holds it.
func hostPort(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// call makes a raw request; tok "" sends no Authorization header.
func call(t testing.TB, base, method, path, tok, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// httpServer is a test server's URL and its host:port.
type httpServer struct{ URL, Addr string }

// serveHandler runs h and returns its URL and host:port.
func serveHandler(t testing.TB, h http.Handler) *httpServer {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &httpServer{URL: srv.URL, Addr: hostPort(srv)}
}
