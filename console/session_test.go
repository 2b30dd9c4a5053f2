package console_test

// Raw-protocol tests of a console session: what each SHOW returns for the
// fake node, multi-statement queries, errors with their SQLSTATEs, the
// extended protocol, and how a session starts and ends.

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/console"
)

const (
	shardsHeader = "T id:text role:text host:text port:text"
	versionRows  = "T version:text|D shardproxy 1.2.3|C SHOW"
)

func TestSimpleQuery(t *testing.T) {
	tests := []struct {
		name, query string
		want        string // transcript lines joined by "|" (ReadyForQuery left out)
	}{
		{"shards", "SHOW SHARDS",
			shardsHeader + "|D s1|primary|10.0.0.1|5432|D s1|replica|10.0.0.11|5433|D s2|primary|::1|5434|C SHOW"},
		{"ranges", "show ranges",
			"T lo:text hi:text shard:text|D -9223372036854775808|0|s1|D 0||s2|C SHOW"},
		{"tables", "Show Tables;",
			"T schema:text name:text kind:text key:text|D public|orders|sharded|customer_id|D public|countries|reference||C SHOW"},
		{"pools", "SHOW POOLS",
			"T database:text user:text shard:text addr:text open:int8 active:int8 idle:int8" +
				"|D app|app|s1|10.0.0.1:5432|3|1|2|D app|app||10.9.9.9:5432|0|0|0|C SHOW"},
		{"replicas", "SHOW REPLICAS",
			"T shard:text host:text port:text state:text lag_bytes:int8|D s1|10.0.0.11|5433|configured|NULL|C SHOW"},
		{"nodes sorted by id, unknown map version is NULL", "SHOW NODES",
			"T id:text pg_addr:text http_addr:text raft_addr:text role:text map_version:int8" +
				"|D n1|10.0.1.1:6432|10.0.1.1:8080|10.0.1.1:7000|leader|7" +
				"|D n2|10.0.1.2:6432|10.0.1.2:8080|10.0.1.2:7000|follower|NULL|C SHOW"},
		{"version", "SHOW VERSION", versionRows},
		{"comments and spaces", "-- first\n  /* a /* nested */ comment */ show/**/VERSION ; ;", versionRows},
		{"quoted name", `SHOW "version"`, versionRows},
		{"quoted name is case-sensitive", `SHOW "VERSION"`,
			`E ERROR 42601 @6 unrecognized console command "SHOW VERSION"`},
		{"multiple statements", "SHOW VERSION; SHOW REPLICAS",
			versionRows + "|T shard:text host:text port:text state:text lag_bytes:int8|D s1|10.0.0.11|5433|configured|NULL|C SHOW"},
		{"error stops the rest", "SHOW VERSION; SELECT 1; SHOW VERSION",
			versionRows + "|E ERROR 0A000 the admin console only answers SHOW commands"},
		{"empty", "", "empty"},
		{"only separators and comments", " ;; -- nothing\n/* here */ ;", "empty"},
		{"unknown command", "show shard",
			`E ERROR 42601 @6 unrecognized console command "SHOW shard"`},
		{"position counts characters", "/* é */ SHOW nope",
			`E ERROR 42601 @14 unrecognized console command "SHOW nope"`},
		{"not SHOW", "SELECT * FROM pg_database", "E ERROR 0A000 the admin console only answers SHOW commands"},
		{"SET is not SHOW", "SET x = 1", "E ERROR 0A000 the admin console only answers SHOW commands"},
		{"SHOW alone", "SHOW", "E ERROR 42601 @5 syntax error at end of input"},
		{"SHOW alone before another", "SHOW ; SHOW VERSION", "E ERROR 42601 @6 syntax error at end of input"},
		{"arguments", "SHOW VERSION extra", `E ERROR 42601 @14 syntax error at or near "extra"`},
		{"not a name", "SHOW 42", `E ERROR 42601 @6 syntax error at or near "42"`},
		{"unterminated string fails everything", "SHOW VERSION; SELECT 'x",
			"E ERROR 42601 @22 unterminated quoted string"},
		{"unterminated comment", "SHOW VERSION /* x", "E ERROR 42601 @14 unterminated /* comment"},
		{"semicolon inside quotes does not split", "SELECT ';SHOW VERSION'",
			"E ERROR 0A000 the admin console only answers SHOW commands"},
		{"dollar quotes", "SELECT $a$;$a$; SHOW VERSION",
			"E ERROR 0A000 the admin console only answers SHOW commands"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startReady(t, fixture())
			c.send(&pgproto3.Query{String: tt.query})
			got := c.untilReady()
			if last := got[len(got)-1]; last != "Z I" {
				t.Fatalf("ends with %q, want Z I", last)
			}
			if g := strings.Join(got[:len(got)-1], "|"); g != tt.want {
				t.Errorf("%q:\n got %s\nwant %s", tt.query, g, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	c := startReady(t, fixture())
	c.send(&pgproto3.Query{String: "SHOW HELP"})
	got := c.untilReady()
	if got[0] != "T command:text description:text" {
		t.Fatalf("header %q", got[0])
	}
	var names []string
	for _, l := range got {
		if strings.HasPrefix(l, "D ") {
			names = append(names, strings.SplitN(strings.TrimPrefix(l, "D "), "|", 2)[0])
		}
	}
	want := []string{"SHOW SHARDS", "SHOW RANGES", "SHOW TABLES", "SHOW POOLS", "SHOW REPLICAS", "SHOW NODES", "SHOW VERSION", "SHOW HELP"}
	if !slices.Equal(names, want) {
		t.Errorf("commands %q, want %q", names, want)
	}
	// Every listed command runs.
	for _, n := range names {
		c.send(&pgproto3.Query{String: n})
		if e := errorLine(c.untilReady()); e != "" {
			t.Errorf("%s: %s", n, e)
		}
	}
}

// TestErrorHints: an operator who mistypes is told what the console knows.
func TestErrorHints(t *testing.T) {
	for _, q := range []string{"SHOW SHARD", "SELECT 1", "SHOW"} {
		t.Run(q, func(t *testing.T) {
			c := startReady(t, fixture())
			c.send(&pgproto3.Query{String: q})
			msg, err := c.fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			er, ok := msg.(*pgproto3.ErrorResponse)
			if !ok {
				t.Fatalf("got %s, want an error", render(msg))
			}
			if !strings.Contains(er.Hint, "SHOW SHARDS") || !strings.Contains(er.Hint, "SHOW HELP") {
				t.Errorf("hint %q does not list the commands", er.Hint)
			}
		})
	}
}

func TestNoMap(t *testing.T) {
	src := &fakeSource{version: "dev"}
	for _, q := range []string{"SHOW SHARDS", "SHOW RANGES", "SHOW TABLES", "SHOW POOLS", "SHOW REPLICAS", "SHOW NODES"} {
		c := startReady(t, src)
		c.send(&pgproto3.Query{String: q})
		got := c.untilReady()
		if len(got) != 3 || got[1] != "C SHOW" {
			t.Errorf("%s without a map: %q, want a header and no rows", q, got)
		}
	}
}

func TestExtended(t *testing.T) {
	tests := []struct {
		name string
		msgs []pgproto3.FrontendMessage
		want string
	}{
		{"prepare and describe",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: "SHOW SHARDS"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{}},
			"parsed|params []|" + shardsHeader},
		{"unnamed, text",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "show version;"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"parsed|bound|" + versionRows},
		{"binary results",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW POOLS"}, &pgproto3.Bind{ResultFormatCodes: []int16{1}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"parsed|bound|T database:text/bin user:text/bin shard:text/bin addr:text/bin open:int8/bin active:int8/bin idle:int8/bin" +
				`|D app|app|s1|10.0.0.1:5432|\x0000000000000003|\x0000000000000001|\x0000000000000002` +
				`|D app|app||10.9.9.9:5432|\x0000000000000000|\x0000000000000000|\x0000000000000000|C SHOW`},
		{"per-column formats",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW NODES"}, &pgproto3.Bind{ResultFormatCodes: []int16{0, 0, 0, 0, 0, 1}}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			`parsed|bound|D n1|10.0.1.1:6432|10.0.1.1:8080|10.0.1.1:7000|leader|\x0000000000000007` +
				"|D n2|10.0.1.2:6432|10.0.1.2:8080|10.0.1.2:7000|follower|NULL|C SHOW"},
		{"row limit suspends",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW SHARDS"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 2}, &pgproto3.Execute{MaxRows: 2}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"parsed|bound|D s1|primary|10.0.0.1|5432|D s1|replica|10.0.0.11|5433|suspended|D s2|primary|::1|5434|C SHOW|C SHOW"},
		{"empty query",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: " -- nothing"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"parsed|params []|nodata|bound|nodata|empty"},
		{"declared parameter types",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION", ParameterOIDs: []uint32{23}}, &pgproto3.Describe{ObjectType: 'S'},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"parsed|params [23]|T version:text|bound|D shardproxy 1.2.3|C SHOW"},
		{"close",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Name: "s", Query: "SHOW VERSION"}, &pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Close{ObjectType: 'P', Name: "none"},
				&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Sync{}},
			`parsed|closed|closed|E ERROR 26000 prepared statement "s" does not exist`},
		{"not SHOW fails at Parse and skips to Sync",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			"E ERROR 0A000 the admin console only answers SHOW commands"},
		{"a simple query while skipping is ignored",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Query{String: "SHOW VERSION"}, &pgproto3.Sync{}},
			"E ERROR 0A000 the admin console only answers SHOW commands"},
		{"unknown command",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW MOVES"}, &pgproto3.Sync{}},
			`E ERROR 42601 @6 unrecognized console command "SHOW moves"`},
		{"several statements",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION; SHOW NODES"}, &pgproto3.Sync{}},
			"E ERROR 42601 cannot insert multiple commands into a prepared statement"},
		{"unknown statement",
			[]pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Execute{}, &pgproto3.Sync{}},
			`E ERROR 26000 prepared statement "nope" does not exist`},
		{"unknown statement described",
			[]pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'S', Name: "nope"}, &pgproto3.Sync{}},
			`E ERROR 26000 prepared statement "nope" does not exist`},
		{"unknown portal described",
			[]pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'P', Name: "nope"}, &pgproto3.Sync{}},
			`E ERROR 34000 portal "nope" does not exist`},
		{"unknown portal executed",
			[]pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "nope"}, &pgproto3.Sync{}},
			`E ERROR 34000 portal "nope" does not exist`},
		{"too many parameters",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Sync{}},
			`parsed|E ERROR 08P01 bind message supplies 1 parameters, but prepared statement "" requires 0`},
		{"result formats do not match the columns",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION"}, &pgproto3.Bind{ResultFormatCodes: []int16{0, 1}}, &pgproto3.Sync{}},
			"parsed|E ERROR 08P01 bind message has 2 result formats but query has 1 columns"},
		{"unknown result format",
			[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION"}, &pgproto3.Bind{ResultFormatCodes: []int16{2}}, &pgproto3.Sync{}},
			"parsed|E ERROR 22023 unsupported format code: 2"},
		{"bad describe subtype",
			[]pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'X'}, &pgproto3.Sync{}},
			"E ERROR 08P01 invalid DESCRIBE message subtype 88"},
		{"function call",
			[]pgproto3.FrontendMessage{&pgproto3.FunctionCall{Function: 1}},
			"E ERROR 0A000 the admin console does not run functions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startReady(t, fixture())
			c.send(tt.msgs...)
			got := c.untilReady()
			if g := strings.Join(got[:len(got)-1], "|"); g != tt.want {
				t.Errorf("\n got %s\nwant %s", g, tt.want)
			}
			// The session goes on after the batch, errors or not.
			c.send(&pgproto3.Query{String: "SHOW VERSION"})
			if g := strings.Join(c.untilReady(), "|"); g != versionRows+"|Z I" {
				t.Errorf("next query: %s", g)
			}
		})
	}
}

func TestExtendedAcrossSyncs(t *testing.T) {
	c := startReady(t, fixture())
	steps := []struct {
		msgs []pgproto3.FrontendMessage
		want string
	}{
		{[]pgproto3.FrontendMessage{&pgproto3.Parse{Name: "v", Query: "SHOW VERSION"}, &pgproto3.Sync{}}, "parsed"},
		{[]pgproto3.FrontendMessage{&pgproto3.Parse{Name: "v", Query: "SHOW NODES"}, &pgproto3.Sync{}},
			`E ERROR 42P05 prepared statement "v" already exists`},
		// A named statement outlives Syncs; portals do not.
		{[]pgproto3.FrontendMessage{&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "v"}, &pgproto3.Sync{}}, "bound"},
		{[]pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{}}, `E ERROR 34000 portal "p" does not exist`},
		{[]pgproto3.FrontendMessage{&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "v"}, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "v"}, &pgproto3.Sync{}},
			`bound|E ERROR 42P03 portal "p" already exists`},
		{[]pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "v"}, &pgproto3.Execute{}, &pgproto3.Sync{}}, "bound|D shardproxy 1.2.3|C SHOW"},
		// A simple query drops the unnamed statement.
		{[]pgproto3.FrontendMessage{&pgproto3.Parse{Query: "SHOW VERSION"}, &pgproto3.Sync{}}, "parsed"},
		{[]pgproto3.FrontendMessage{&pgproto3.Query{String: ""}}, "empty"},
		{[]pgproto3.FrontendMessage{&pgproto3.Bind{}, &pgproto3.Sync{}}, `E ERROR 26000 prepared statement "" does not exist`},
	}
	for i, st := range steps {
		c.send(st.msgs...)
		got := c.untilReady()
		if g := strings.Join(got[:len(got)-1], "|"); g != st.want {
			t.Errorf("step %d:\n got %s\nwant %s", i, g, st.want)
		}
	}
}

// TestFlush: a client Flush gets the answers so far without a Sync.
func TestFlush(t *testing.T) {
	c := startReady(t, fixture())
	c.send(&pgproto3.Parse{Query: "SHOW VERSION"}, &pgproto3.Flush{})
	msg, err := c.fe.Receive()
	if err != nil || render(msg) != "parsed" {
		t.Fatalf("got %v, %v; want ParseComplete", msg, err)
	}
	c.send(&pgproto3.Sync{})
	if got := c.untilReady(); !slices.Equal(got, []string{"Z I"}) {
		t.Errorf("after Sync: %q", got)
	}
}

func TestGreeting(t *testing.T) {
	c := start(t, context.Background(), fixture(), true)
	got := c.untilReady()
	for _, want := range []string{"S client_encoding=UTF8", "S standard_conforming_strings=on", "S server_encoding=UTF8",
		"S application_name=console-test", "S session_authorization=admin", "S integer_datetimes=on"} {
		if !slices.Contains(got, want) {
			t.Errorf("greeting %q lacks %q", got, want)
		}
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "S server_version=16.") }) {
		t.Errorf("greeting %q lacks a PostgreSQL-like server_version", got)
	}
	if got[len(got)-1] != "Z I" {
		t.Errorf("greeting ends with %q", got[len(got)-1])
	}
}

func TestSessionEnd(t *testing.T) {
	t.Run("terminate", func(t *testing.T) {
		c := startReady(t, fixture())
		c.send(&pgproto3.Terminate{})
		if err := c.wait(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("client goes away", func(t *testing.T) {
		c := startReady(t, fixture())
		_ = c.nc.Close()
		if err := c.wait(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("not an admin", func(t *testing.T) {
		c := start(t, context.Background(), fixture(), false)
		got := c.untilEOF()
		if want := []string{`E FATAL 42501 permission denied for database "` + console.Database + `"`}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
		if err := c.wait(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := start(t, ctx, fixture(), true)
		c.untilReady()
		cancel()
		got := c.untilEOF()
		if len(got) != 1 || !strings.HasPrefix(got[0], "E FATAL 57P01 ") {
			t.Errorf("got %q, want a 57P01 goodbye", got)
		}
		if err := c.wait(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("invalid message type", func(t *testing.T) {
		c := startReady(t, fixture())
		if _, err := c.nc.Write([]byte{'z', 0, 0, 0, 4}); err != nil {
			t.Fatal(err)
		}
		got := c.untilEOF()
		if want := []string{"E FATAL 08P01 invalid frontend message type 122"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("malformed message", func(t *testing.T) {
		c := startReady(t, fixture())
		// A Describe with no name terminator.
		if _, err := c.nc.Write([]byte{'D', 0, 0, 0, 6, 'S', 'x', 'S', 0, 0, 0, 4}); err != nil {
			t.Fatal(err)
		}
		got := c.untilReady()
		if want := []string{"E ERROR 08P01 invalid Describe message format", "Z I"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
