package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client end and the plain server end of a
// loopback TCP connection.
func pair(t testing.TB) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	c, ok := Wrap(nc).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	t.Cleanup(func() { _ = c.Close(); _ = peer.Close() })
	return c, peer
}

func TestReadWrite(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"one byte", 1},
		{"a frame", 300},
		{"more than the socket buffers", 16 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := pair(t)
			want := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(io.LimitReader(peer, int64(tc.size)))
				got <- b
			}()
			if n, err := c.Write(want); err != nil || n != len(want) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("peer read %d bytes, not what was written", len(b))
			}
			// And back, through Read.
			go func() { _, _ = peer.Write(want) }()
			back := make([]byte, len(want))
			if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, want) {
				t.Fatalf("ReadFull: %v", err)
			}
		})
	}
}

func TestEOFDeadlineClose(t *testing.T) {
	t.Run("EOF", func(t *testing.T) {
		c, peer := pair(t)
		_ = peer.Close()
		if _, err := c.Read(make([]byte, 8)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after the peer closed: %v, want EOF", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		c, _ := pair(t)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 8))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v, want a timeout", err)
		}
	})
	t.Run("close wakes a reader", func(t *testing.T) {
		c, _ := pair(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 8))
			done <- err
		}()
		// The reader may or may not be parked yet; Close must end it
		// either way.
		_ = c.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake the reader")
		}
	})
}

// echo answers every request the peer reads with reply, after reading
// exactly size bytes of it; what it read goes to got.
func echo(peer net.Conn, size int, reply []byte, got chan<- []byte) {
	b := make([]byte, size)
	if _, err := io.ReadFull(peer, b); err != nil {
		got <- nil
		return
	}
	got <- b
	_, _ = peer.Write(reply)
}

func TestDeferNextWrite(t *testing.T) {
	t.Run("sent by the read that waits for the reply", func(t *testing.T) {
		for _, size := range []int{1, 300, maxDeferredWrite} {
			c, peer := pair(t)
			req := bytes.Repeat([]byte{'q'}, size)
			got := make(chan []byte, 1)
			go echo(peer, size, []byte("answer"), got)
			c.DeferNextWrite()
			if n, err := c.Write(req); err != nil || n != size {
				t.Fatalf("deferred Write = %d, %v", n, err)
			}
			c.EndDefer()
			if !c.Pending() {
				t.Fatalf("%d bytes: not held back", size)
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "answer" {
				t.Fatalf("%d bytes: read %q, %v", size, buf, err)
			}
			if b := <-got; !bytes.Equal(b, req) {
				t.Fatalf("%d bytes: the peer got %d bytes, not the request", size, len(b))
			}
			if c.Pending() {
				t.Fatal("still pending after the read")
			}
		}
	})
	t.Run("too large to hold", func(t *testing.T) {
		c, peer := pair(t)
		req := bytes.Repeat([]byte{'q'}, maxDeferredWrite+1)
		got := make(chan []byte, 1)
		go echo(peer, len(req), nil, got)
		c.DeferNextWrite()
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		c.EndDefer()
		if c.Pending() {
			t.Fatal("a write larger than the bound was held back")
		}
		if b := <-got; !bytes.Equal(b, req) {
			t.Fatal("the peer did not get the request")
		}
	})
	t.Run("a later write keeps the order", func(t *testing.T) {
		c, peer := pair(t)
		got := make(chan []byte, 1)
		go echo(peer, 6, nil, got)
		c.DeferNextWrite()
		_, _ = c.Write([]byte("first"))
		c.EndDefer()
		if _, err := c.Write([]byte("2")); err != nil {
			t.Fatal(err)
		}
		if b := <-got; string(b) != "first2" {
			t.Fatalf("peer read %q, want first2", b)
		}
	})
	t.Run("EndDefer without a write", func(t *testing.T) {
		c, peer := pair(t)
		got := make(chan []byte, 1)
		go echo(peer, 3, nil, got)
		c.DeferNextWrite()
		c.EndDefer()
		if _, err := c.Write([]byte("now")); err != nil || c.Pending() {
			t.Fatalf("a write after EndDefer was held back (%v)", err)
		}
		if b := <-got; string(b) != "now" {
			t.Fatalf("peer read %q", b)
		}
	})
	t.Run("send buffer full", func(t *testing.T) {
		// A tiny send buffer and a peer that reads slowly make the
		// write inside the read stop short; the rest goes the ordinary
		// way before the read.
		c, peer := pair(t)
		if err := c.Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
			t.Fatal(err)
		}
		_ = peer.(*net.TCPConn).SetReadBuffer(4096)
		req := bytes.Repeat([]byte("0123456789abcdef"), maxDeferredWrite/16)
		got := make(chan []byte, 1)
		go echo(peer, len(req), []byte("ok"), got)
		c.DeferNextWrite()
		_, _ = c.Write(req)
		c.EndDefer()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if b := <-got; !bytes.Equal(b, req) {
			t.Fatal("the peer did not get the whole request in order")
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		c, peer := pair(t)
		_ = peer.(*net.TCPConn).SetLinger(0)
		_ = peer.Close()
		c.DeferNextWrite()
		_, _ = c.Write([]byte("Q"))
		c.EndDefer()
		// EOF (the peer's FIN came first) or a reset: never a hang.
		if _, err := c.Read(make([]byte, 8)); err == nil {
			t.Fatal("read from a closed peer succeeded")
		}
	})
}

func TestWrapLeavesOthersAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a non-TCP connection was wrapped")
	}
}

// BenchmarkPingPong is one small write and one small read each way, the
// proxy's pattern: plain, wrapped, and wrapped with the write deferred
// into the read's wait.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range []string{"net.TCPConn", "rawsock", "rawsock-deferred"} {
		b.Run(mode, func(b *testing.B) {
			c, peer := pair(b)
			var conn net.Conn = c
			if mode == "net.TCPConn" {
				conn = c.Conn
			}
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := peer.Read(buf)
					if err != nil {
						return
					}
					if _, err := peer.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg := []byte("Q\x00\x00\x00\x0dSELECT 1\x00")
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if mode == "rawsock-deferred" {
					c.DeferNextWrite()
				}
				if _, err := conn.Write(msg); err != nil {
					b.Fatal(err)
				}
				c.EndDefer()
				if _, err := io.ReadFull(conn, buf[:len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
