package wire

// An idle client must cost little: a proxy holds thousands of them, almost
// all waiting for their next query. This file keeps the read and write
// buffers in pools: a connection gives them back when it goes idle with
// nothing buffered, and waits for the client without a buffer where it can
// (on a plain socket, see idle_unix.go). The busy path is unchanged: a
// client that keeps talking keeps its buffers and allocates nothing.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
)

// The buffer pools are shared by every connection of the process, as
// buffers are interchangeable.
var (
	readPool  = sync.Pool{New: func() any { return new([readBufferSize]byte) }}
	writePool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}
)

func getWriter(w io.Writer) *bufio.Writer {
	bw := writePool.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil) // do not keep the connection reachable from the pool
	writePool.Put(bw)
}

// inbuf is a buffered reader, like bufio.Reader, whose buffer can go back
// to the pool whenever nothing is buffered: Read takes one again when it
// needs it.
type inbuf struct {
	src  io.Reader
	buf  *[readBufferSize]byte // nil while given back
	r, w int                   // buf[r:w] is unread
	// err came with the last bytes read; Read returns it once they are
	// consumed.
	err error
}

// Buffered returns the number of bytes read from src and not consumed.
func (b *inbuf) Buffered() int { return b.w - b.r }

// Read reads from the buffer, refilling it with one read of src when it
// is empty. A read at least as large as the buffer bypasses it.
func (b *inbuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= readBufferSize {
			return b.src.Read(p)
		}
		if b.buf == nil {
			b.buf = readPool.Get().(*[readBufferSize]byte)
		}
		n, err := b.src.Read(b.buf[:])
		b.r, b.w = 0, n
		if n == 0 {
			return 0, err
		}
		b.err = err
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// release gives the buffer back if nothing is buffered in it.
func (b *inbuf) release() {
	if b.buf != nil && b.r == b.w {
		readPool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// releaseWriter gives the write buffer back when all output is flushed.
func (c *Conn) releaseWriter() {
	if c.w != nil && c.w.Buffered() == 0 {
		putWriter(c.w)
		c.w = nil
	}
	if cap(c.scratch) > idleScratchKeep {
		c.scratch = nil
	}
}

// waitIdle runs at the start of the ReadMessage that follows BeginIdle.
// With nothing buffered, the read buffer goes back to the pool and the
// wait holds none. On a plain socket the callback reads the client's bytes
// into a buffer it takes when they arrive (idle_unix.go); other
// connections wait in waitIdleByte.
func (c *Conn) waitIdle() error {
	if cap(c.body) > idleBodyKeep {
		c.body = nil
	}
	if c.in.Buffered() > 0 || c.in.err != nil {
		return nil
	}
	if c.raw == nil {
		return c.waitIdleByte()
	}
	c.fillErr = nil
	if err := c.raw.Read(c.fill); err != nil {
		return c.rawReadError(err)
	}
	return c.fillErr
}

// waitIdleByte is the idle wait of a connection that is not a plain
// socket (TLS): a read of one byte. The socket cannot tell whether the TLS
// layer already holds decrypted bytes, so the wait is a read; a one-byte
// read needs no buffer of ours, the TLS layer keeping the record in its
// own. The byte starts a buffer taken once it has arrived.
func (c *Conn) waitIdleByte() error {
	c.in.release()
	if c.onWait != nil {
		c.onWait()
	}
	n, err := c.in.src.Read(c.oneByte[:])
	if n == 0 {
		return err
	}
	b := &c.in
	if b.buf == nil {
		b.buf = readPool.Get().(*[readBufferSize]byte)
	}
	b.buf[0] = c.oneByte[0]
	b.r, b.w, b.err = 0, 1, err
	return nil
}

// rawReadError reports the failure of an idle wait (a deadline set by the
// drain or the LISTEN watcher, or Close) as the plain read it stands for.
// It is a function of its own to keep waitIdle's frame, which is on every
// idle stack, small.
func (c *Conn) rawReadError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = &net.OpError{Op: "read", Net: oe.Net, Source: c.netConn.LocalAddr(), Addr: c.RemoteAddr, Err: oe.Err}
	}
	return err
}

// release returns the buffers to the pools once the handler has returned
// and the connection is closed: nothing uses c afterwards.
func (c *Conn) release() {
	if c.in.buf != nil {
		readPool.Put(c.in.buf)
		c.in.buf, c.in.r, c.in.w = nil, 0, 0
	}
	if c.w != nil {
		putWriter(c.w)
		c.w = nil
	}
}
