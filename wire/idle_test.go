// These tests cover the idle wait (idle.go): a client that goes quiet gives
// its buffers back, whatever it sends next (in pieces, several messages at
// once, a message larger than a buffer) is read whole, and closing, the end
// of the stream and read deadlines (the drain) still end the wait; over a
// plain socket, TLS and a pipe, since they wait differently.

package wire_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/rawsock"
	"github.com/shardproxy/shardproxy/testcert"
	"github.com/shardproxy/shardproxy/wire"
)

const testTimeout = 5 * time.Second

func frame(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// tcpPair returns the two ends of a loopback TCP connection, the server's
// as a logged-in Conn.
func tcpPair(tb testing.TB) (net.Conn, *wire.Conn) {
	tb.Helper()
	client, server := tcpConns(tb)
	return client, wire.NewConnForTest(server, "u", "db")
}

func tcpConns(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	for _, nc := range []net.Conn{client, server} {
		_ = nc.(*net.TCPConn).SetNoDelay(true)
	}
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	return client, server
}

// tlsPair is tcpPair with TLS on top, as after an SSLRequest.
func tlsPair(tb testing.TB) (net.Conn, *wire.Conn) {
	tb.Helper()
	cert, err := testcert.New("wire test")
	if err != nil {
		tb.Fatal(err)
	}
	tcpClient, tcpServer := tcpConns(tb)
	client := tls.Client(tcpClient, &tls.Config{InsecureSkipVerify: true})
	server := tls.Server(tcpServer, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	done := make(chan error, 1)
	go func() { done <- client.Handshake() }()
	if err := server.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return client, wire.NewConnForTest(server, "u", "db")
}

// pipePair is tcpPair over net.Pipe: a connection that is not a socket.
func pipePair(tb testing.TB) (net.Conn, *wire.Conn) {
	client, server := net.Pipe()
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	return client, wire.NewConnForTest(server, "u", "db")
}

// rawsockPair is tcpPair with the server's end wrapped as Server does.
func rawsockPair(tb testing.TB) (net.Conn, *wire.Conn) {
	tb.Helper()
	client, server := tcpConns(tb)
	return client, wire.NewConnForTest(rawsock.Wrap(server), "u", "db")
}

// transports are the kinds of client connection: a plain socket waits
// idle with a RawConn read, the others with a one-byte read.
var transports = []struct {
	name string
	pair func(testing.TB) (net.Conn, *wire.Conn)
}{
	{"tcp", tcpPair},
	{"rawsock", rawsockPair},
	{"tls", tlsPair},
	{"pipe", pipePair},
}

type message struct {
	typ  byte
	body string
	err  error
}

// readIdle reads one message the way a session does outside a transaction.
func readIdle(c *wire.Conn) message {
	if !c.BeginIdle() {
		return message{err: errors.New("draining")}
	}
	typ, body, err := c.ReadMessage()
	c.EndIdle()
	return message{typ: typ, body: string(body), err: err}
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func checkReleased(t *testing.T, st wire.IdleState) {
	t.Helper()
	if st.ReadBuffer || st.WriteBuffer {
		t.Errorf("idle wait holds buffers: %+v", st)
	}
	if st.BodyCap > 4<<10 {
		t.Errorf("idle wait keeps a body buffer of %d bytes", st.BodyCap)
	}
}

func TestIdleWait(t *testing.T) {
	big := strings.Repeat("x", 100<<10) + "\x00"
	cases := []struct {
		name string
		send [][]byte // written one after another, with pauses between
		want []message
	}{
		{"one message", [][]byte{frame('Q', "select 1\x00")}, []message{{typ: 'Q', body: "select 1\x00"}}},
		{"in pieces", func() [][]byte {
			f := frame('Q', "select 2\x00")
			return [][]byte{f[:1], f[1:3], f[3:7], f[7:]}
		}(), []message{{typ: 'Q', body: "select 2\x00"}}},
		{"pipelined", [][]byte{append(append(frame('P', "\x00select $1\x00\x00\x00"), frame('B', "\x00\x00\x00\x00\x00\x00\x00\x00")...), frame('S', "")...)},
			[]message{{typ: 'P', body: "\x00select $1\x00\x00\x00"}, {typ: 'B', body: "\x00\x00\x00\x00\x00\x00\x00\x00"}, {typ: 'S'}}},
		{"larger than a buffer", [][]byte{frame('Q', big)}, []message{{typ: 'Q', body: big}}},
		{"larger than a buffer, in pieces", func() [][]byte {
			f := frame('Q', big)
			return [][]byte{f[:3], f[3 : 9<<10], f[9<<10:]}
		}(), []message{{typ: 'Q', body: big}}},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				testIdleWait(t, tr.pair, tc.send, tc.want)
			})
		}
	}
}

// testIdleWait has the client send msgs while the server waits idle, and
// checks that the server reads want with its buffers given back.
func testIdleWait(t *testing.T, pair func(testing.TB) (net.Conn, *wire.Conn), send [][]byte, want []message) {
	client, c := pair(t)
	waits := make(chan wire.IdleState, 16)
	wire.OnIdleWait(c, func(st wire.IdleState) { waits <- st })
	got := make(chan message, len(want)+1)
	go func() {
		// As after a query: the answer is flushed, then the
		// session waits idle.
		_ = c.WriteFrame('Z', []byte{'I'})
		_ = c.Flush()
		for range want {
			got <- readIdle(c)
		}
		_ = c.WriteFrame('Z', []byte{'I'})
		_ = c.Flush()
		got <- readIdle(c)
	}()
	readReady(t, client)
	checkReleased(t, await(t, waits, "the first idle wait"))
	for i, b := range send {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := client.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range want {
		m := await(t, got, "a message")
		if m.err != nil || m.typ != w.typ || m.body != w.body {
			t.Fatalf("read %q (%d bytes), %v; want %q (%d bytes)", m.typ, len(m.body), m.err, w.typ, len(w.body))
		}
	}
	// The write buffer comes back for the answer and goes again
	// at the next idle wait, with a large body buffer.
	readReady(t, client)
	checkReleased(t, await(t, waits, "the second idle wait"))
	if _, err := client.Write(frame('X', "")); err != nil {
		t.Fatal(err)
	}
	if m := await(t, got, "Terminate"); m.err != nil || m.typ != 'X' {
		t.Fatalf("read %q, %v; want Terminate", m.typ, m.err)
	}
	if n := len(waits); n != 0 {
		t.Errorf("%d more idle waits than expected: buffered messages must be read without one", n)
	}
}

// readReady reads one ReadyForQuery.
func readReady(t *testing.T, client net.Conn) {
	t.Helper()
	var b [6]byte
	if _, err := io.ReadFull(client, b[:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:], frame('Z', "I")) {
		t.Fatalf("read %q, want ReadyForQuery", b)
	}
}

// Bytes that reached the socket before the idle wait began are read at
// once: the poller only reports new arrivals, so the wait must look first.
func TestIdleWaitFindsArrivedBytes(t *testing.T) {
	client, c := tcpPair(t)
	wire.OnIdleWait(c, func(wire.IdleState) { t.Error("waited for bytes that had arrived") })
	// A first message, read as inside a transaction, leaves the read
	// buffer held and empty.
	if _, err := client.Write(frame('Q', "begin\x00")); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := c.ReadMessage(); err != nil || typ != 'Q' {
		t.Fatalf("read %q, %v; want Query", typ, err)
	}
	if _, err := client.Write(append(frame('Q', "select 1\x00"), frame('S', "")...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	got := make(chan message, 2)
	go func() {
		got <- readIdle(c)
		got <- readIdle(c)
	}()
	for _, want := range []byte{'Q', 'S'} {
		if m := await(t, got, "a message"); m.err != nil || m.typ != want {
			t.Fatalf("read %q, %v; want %q", m.typ, m.err, want)
		}
	}
}

// Output not yet flushed keeps the write buffer through the idle wait.
func TestIdleWaitKeepsUnflushedOutput(t *testing.T) {
	client, c := tcpPair(t)
	waits := make(chan wire.IdleState, 4)
	wire.OnIdleWait(c, func(st wire.IdleState) { waits <- st })
	if err := c.WriteFrame('Z', []byte{'I'}); err != nil {
		t.Fatal(err)
	}
	got := make(chan message, 1)
	go func() { got <- readIdle(c) }()
	if st := await(t, waits, "the idle wait"); st.ReadBuffer || !st.WriteBuffer {
		t.Fatalf("idle wait with output pending: %+v; want the write buffer only", st)
	}
	if _, err := client.Write(frame('S', "")); err != nil {
		t.Fatal(err)
	}
	if m := await(t, got, "Sync"); m.err != nil || m.typ != 'S' {
		t.Fatalf("read %q, %v; want Sync", m.typ, m.err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	readReady(t, client)
}

func TestIdleWaitEnds(t *testing.T) {
	cases := []struct {
		name       string
		socketOnly bool
		end        func(client net.Conn, c *wire.Conn)
		want       error
	}{
		{"Close", false, func(_ net.Conn, c *wire.Conn) { _ = c.Close() }, net.ErrClosed},
		{"client closes", false, func(client net.Conn, _ *wire.Conn) { _ = client.Close() }, io.EOF},
		{"client resets", true, func(client net.Conn, _ *wire.Conn) {
			_ = client.(*net.TCPConn).SetLinger(0)
			_ = client.Close()
		}, syscall.ECONNRESET},
		// Server.Shutdown wakes idle readers so.
		{"read deadline", false, func(_ net.Conn, c *wire.Conn) { _ = c.SetReadDeadline(time.Now()) }, os.ErrDeadlineExceeded},
	}
	for _, tr := range transports[:3] { // the sockets and tls
		for _, tc := range cases {
			if tc.socketOnly && tr.name == "tls" {
				continue
			}
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				testIdleWaitEnds(t, tr.pair, tc.end, tc.want)
			})
		}
	}
}

func testIdleWaitEnds(t *testing.T, pair func(testing.TB) (net.Conn, *wire.Conn), end func(net.Conn, *wire.Conn), want error) {
	client, c := pair(t)
	waits := make(chan wire.IdleState, 4)
	wire.OnIdleWait(c, func(st wire.IdleState) { waits <- st })
	got := make(chan message, 1)
	go func() { got <- readIdle(c) }()
	checkReleased(t, await(t, waits, "the idle wait"))
	end(client, c)
	if m := await(t, got, "the end of the wait"); !errors.Is(m.err, want) {
		t.Fatalf("read %q, %v; want %v", m.typ, m.err, want)
	}
}

// After a deadline woke an idle wait and was cleared, the connection reads
// on; a deadline already passed ends the wait at once.
func TestIdleWaitDeadline(t *testing.T) {
	client, c := tcpPair(t)
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if m := readIdle(c); !errors.Is(m.err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", m.err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan message, 1)
	go func() { got <- readIdle(c) }()
	time.Sleep(20 * time.Millisecond)
	if _, err := client.Write(frame('Q', "select 1\x00")); err != nil {
		t.Fatal(err)
	}
	if m := await(t, got, "the query"); m.err != nil || m.body != "select 1\x00" {
		t.Fatalf("read %q %q, %v", m.typ, m.body, m.err)
	}
}

// idleHandler serves clients the way the router does between
// transactions, and says goodbye when the server drains.
type idleHandler struct{ idle chan struct{} }

func (h idleHandler) Serve(_ context.Context, c *wire.Conn) error {
	wire.OnIdleWait(c, func(wire.IdleState) { h.idle <- struct{}{} })
	_ = c.WriteFrame('Z', []byte{'I'})
	if err := c.Flush(); err != nil {
		return err
	}
	for {
		m := readIdle(c)
		if m.err != nil {
			if c.Draining() {
				c.Goodbye(pgerror.Fatal(pgerror.AdminShutdown, "terminating connection due to administrator command"))
				return nil
			}
			return m.err
		}
	}
}

func (idleHandler) Cancel(context.Context, uint32, uint32) {}

// Shutdown sets a read deadline to wake idle clients: it must reach a
// client waiting without a buffer.
func TestShutdownWakesIdleClient(t *testing.T) {
	h := idleHandler{idle: make(chan struct{}, 4)}
	srv, err := wire.NewServer(wire.Config{
		MaxMessageSize: 1 << 20,
		LookupUser:     func(string) (wire.UserAuth, bool) { return wire.UserAuth{Trust: true}, true },
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	startup = append(startup, "user\x00u\x00\x00"...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	if _, err := client.Write(startup); err != nil {
		t.Fatal(err)
	}
	if typ, _ := readFrame(t, client); typ != 'R' {
		t.Fatalf("got %q, want AuthenticationOk", typ)
	}
	if typ, _ := readFrame(t, client); typ != 'Z' {
		t.Fatalf("got %q, want ReadyForQuery", typ)
	}
	await(t, h.idle, "the idle wait")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %s with one idle client", d)
	}
	typ, body := readFrame(t, client)
	if typ != 'E' || !bytes.Contains(body, []byte("C"+string(pgerror.AdminShutdown)+"\x00")) {
		t.Fatalf("got %q %q, want ErrorResponse 57P01", typ, body)
	}
	if err := await(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func readFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(h[1:])-4)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return h[0], body
}
