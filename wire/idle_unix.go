//go:build unix

package wire

// The idle wait on a plain socket: a RawConn read whose callback reads the
// client's bytes straight into the connection's buffer, taking the buffer
// from the pool only when there is something to read.

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/shardproxy/shardproxy/rawsock"
)

// initIdleWait binds the idle read callback of plain TCP and Unix sockets.
// Other connections (TLS, net.Pipe in tests) wait reading one byte.
func (c *Conn) initIdleWait() {
	var sc syscall.Conn
	switch nc := c.netConn.(type) {
	case *net.TCPConn:
		sc = nc
	case *rawsock.Conn:
		sc = nc
	case *net.UnixConn:
		sc = nc
	default:
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw, c.fill = raw, c.fillIdle
}

// fillIdle is the callback of the idle RawConn read. The runtime calls it
// first without waiting and again each time the socket may be readable;
// false means "wait". Its first call must look at the socket: the poller
// is edge-triggered and the RawConn read forgets an earlier readiness
// before calling it, so bytes that arrived before the wait began would
// otherwise never wake it.
//
// It reads instead of peeking, so a client that speaks again costs the
// same system calls as a plain read: the first call still holds the
// connection's buffer (a pipelining client finds its bytes read at once);
// when nothing is there, the buffer goes back to the pool and the wait
// holds none; on wakeup a buffer is taken again and filled.
func (c *Conn) fillIdle(fd uintptr) bool {
	b := &c.in
	if b.buf == nil {
		b.buf = readPool.Get().(*[readBufferSize]byte)
	}
	for {
		// A raw system call, as package rawsock reads: the socket is
		// non-blocking, so the scheduler need not hear of it.
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b.buf[0])), uintptr(len(b.buf)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			b.release()
			if c.onWait != nil {
				c.onWait()
			}
			return false
		case errno != 0:
			c.fillErr = &net.OpError{Op: "read", Net: c.netConn.LocalAddr().Network(),
				Source: c.netConn.LocalAddr(), Addr: c.RemoteAddr, Err: os.NewSyscallError("read", errno)}
		case n == 0:
			c.fillErr = io.EOF
		default:
			b.r, b.w = 0, int(n)
		}
		return true
	}
}
