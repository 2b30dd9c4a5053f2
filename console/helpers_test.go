package console_test

// The fake node and the raw-protocol client the console's tests share. A
// session runs over net.Pipe; the client renders what it receives as short
// lines ("D s1|primary|10.0.0.1|5432") so tests compare transcripts.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/console"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/wire"
)

type fakeSource struct {
	m       *metadata.Map
	pools   []console.PoolRow
	nodes   []console.NodeRow
	version string
}

var _ console.Source = (*fakeSource)(nil)

func (f *fakeSource) Map() *metadata.Map       { return f.m }
func (f *fakeSource) Pools() []console.PoolRow { return f.pools }
func (f *fakeSource) Nodes() []console.NodeRow { return f.nodes }
func (f *fakeSource) Version() string          { return f.version }

// fixture is a two-shard cluster of two nodes with one replica, two tables
// and two pools (one on a server the map no longer names).
func fixture() *fakeSource {
	return &fakeSource{
		m: &metadata.Map{
			Version: 7,
			Shards: []metadata.Shard{
				{ID: "s1", Primary: "10.0.0.1:5432", Replicas: []string{"10.0.0.11:5433"}},
				{ID: "s2", Primary: "[::1]:5434"},
			},
			Ranges: []metadata.Assignment{
				{Range: keyspace.Range{Lo: math.MinInt64, Hi: 0}, Shard: "s1"},
				{Range: keyspace.Range{Lo: 0, ToEnd: true}, Shard: "s2"},
			},
			Tables: []metadata.Table{
				{Schema: "public", Name: "orders", Key: "customer_id"},
				{Schema: "public", Name: "countries", Reference: true},
			},
		},
		pools: []console.PoolRow{
			{Database: "app", User: "app", Addr: "10.0.0.1:5432", Open: 3, Active: 1, Idle: 2},
			{Database: "app", User: "app", Addr: "10.9.9.9:5432"},
		},
		nodes: []console.NodeRow{
			{NodeInfo: metadata.NodeInfo{ID: "n2", PGAddr: "10.0.1.2:6432", HTTPAddr: "10.0.1.2:8080", RaftAddr: "10.0.1.2:7000"}, Role: "follower"},
			{NodeInfo: metadata.NodeInfo{ID: "n1", PGAddr: "10.0.1.1:6432", HTTPAddr: "10.0.1.1:8080", RaftAddr: "10.0.1.1:7000"}, Role: "leader", MapVersion: 7},
		},
		version: "1.2.3",
	}
}

// client is the test's end of a console session.
type client struct {
	t    *testing.T
	nc   net.Conn
	fe   *pgproto3.Frontend
	done chan error
}

// start runs console.Serve on one end of a pipe and returns the other.
func start(t *testing.T, ctx context.Context, src console.Source, admin bool) *client {
	t.Helper()
	server, nc := net.Pipe()
	c := wire.NewConnForTest(server, "admin", console.Database)
	c.Admin = admin
	c.Params["application_name"] = "console-test"
	done := make(chan error, 1)
	go func() {
		err := console.Serve(ctx, c, src)
		_ = server.Close()
		done <- err
	}()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc), done: done}
	t.Cleanup(func() {
		_ = nc.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("console.Serve did not return after the client went away")
		}
	})
	return cl
}

// startReady starts a session and reads its greeting.
func startReady(t *testing.T, src console.Source) *client {
	t.Helper()
	c := start(t, context.Background(), src, true)
	c.untilReady()
	return c
}

// send writes messages as one batch.
func (c *client) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// untilReady reads up to and including ReadyForQuery.
func (c *client) untilReady() []string {
	c.t.Helper()
	var out []string
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			c.t.Fatalf("receive after %q: %v", out, err)
		}
		out = append(out, render(msg))
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return out
		}
	}
}

// untilEOF reads until the server closes the connection.
func (c *client) untilEOF() []string {
	c.t.Helper()
	var out []string
	for {
		msg, err := c.fe.Receive()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
			return out
		}
		if err != nil {
			c.t.Fatalf("receive after %q: %v", out, err)
		}
		out = append(out, render(msg))
	}
}

// wait returns Serve's result.
func (c *client) wait() error {
	c.t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		c.t.Fatal("console.Serve did not return")
		return nil
	}
}

// render is one line per message; it copies what it keeps, since a
// received message is valid only until the next Receive.
func render(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		cols := make([]string, len(m.Fields))
		for i, f := range m.Fields {
			typ := fmt.Sprint(f.DataTypeOID)
			switch f.DataTypeOID {
			case 20:
				typ = "int8"
			case 25:
				typ = "text"
			}
			cols[i] = string(f.Name) + ":" + typ
			if f.Format == 1 {
				cols[i] += "/bin"
			}
		}
		return "T " + strings.Join(cols, " ")
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			vals[i] = cell(v)
		}
		return "D " + strings.Join(vals, "|")
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.ErrorResponse:
		s := "E " + m.Severity + " " + m.Code
		if m.Position != 0 {
			s += fmt.Sprintf(" @%d", m.Position)
		}
		return s + " " + m.Message
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.EmptyQueryResponse:
		return "empty"
	case *pgproto3.ParseComplete:
		return "parsed"
	case *pgproto3.BindComplete:
		return "bound"
	case *pgproto3.CloseComplete:
		return "closed"
	case *pgproto3.NoData:
		return "nodata"
	case *pgproto3.PortalSuspended:
		return "suspended"
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("params %v", m.ParameterOIDs)
	case *pgproto3.ParameterStatus:
		return "S " + m.Name + "=" + m.Value
	default:
		return fmt.Sprintf("%T", msg)
	}
}

func cell(v []byte) string {
	if v == nil {
		return "NULL"
	}
	for _, r := range string(v) {
		if !unicode.IsPrint(r) {
			return `\x` + hex.EncodeToString(v)
		}
	}
	return string(v)
}

// errorLine finds the error in a transcript ("" if none).
func errorLine(lines []string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, "E ") {
			return l
		}
	}
	return ""
}
