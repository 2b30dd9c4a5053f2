package rawsock

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write use raw system calls. It
// is not safe for concurrent Reads (or concurrent Writes), like the
// buffered readers and writers that use it; a Read and a Write may run
// concurrently.
type Conn struct {
	net.Conn
	raw syscall.RawConn

	// One Read and one Write at a time: their state lives here so that the
	// callbacks, made once, allocate nothing per call.
	rbuf    []byte
	rn      int
	rerr    error
	readFn  func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool

	// deferNext and pending: see DeferNextWrite. pending aliases
	// pendingBuf, kept for the connection's life so that deferring
	// allocates nothing once warm.
	deferNext  bool
	pending    []byte
	pendingBuf []byte
}

// maxDeferredWrite bounds what DeferNextWrite holds back: a batch of
// statements, not a COPY stream.
const maxDeferredWrite = 64 << 10

// DeferNextWrite makes the next Write (if it is at most 64 KiB) return at
// once and leave its bytes to the next Read, which writes them from inside
// its wait for the reply. The caller promises that a Read comes next,
// that the peer answers those bytes, and that the peer has not sent
// anything it must see read before it can (a pipelining client has; a
// PostgreSQL server in a request/response exchange has not). It calls
// EndDefer after that Write (or when it turned out not to write), so a
// later Write is not held.
//
// The point is one system call per request/response: the network poller
// forgets readiness at the start of every wait, so a Read after a Write
// must first try a read, which finds nothing when the peer has not yet
// answered (about half the time under pgbench). Written inside the wait,
// after the poller is armed, the request cannot be answered before the
// poller watches for the answer, and the Read waits without trying.
//
// Anything else that comes first keeps the order: a Write sends the held
// bytes before its own; Close drops them.
func (c *Conn) DeferNextWrite() { c.deferNext = true }

// EndDefer cancels a DeferNextWrite that no Write used.
func (c *Conn) EndDefer() { c.deferNext = false }

// Pending reports whether deferred bytes are still unsent.
func (c *Conn) Pending() bool { return len(c.pending) > 0 }

// Wrap returns nc with raw reads and writes when it is a *net.TCPConn,
// and nc itself otherwise.
func Wrap(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &Conn{Conn: nc, raw: raw}
	c.readFn, c.writeFn = c.read, c.write
	return c
}

// SyscallConn exposes the socket (for liveness peeks and socket options).
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// Read reads up to len(p) bytes, waiting in the network poller while none
// are available.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readFn)
	if err == nil && c.rerr == nil && len(c.pending) > 0 {
		// The socket's send buffer was full: the rest of the deferred
		// bytes go the ordinary way, then the read.
		if werr := c.flushPending(); werr != nil {
			c.rbuf = nil
			return 0, werr
		}
		err = c.raw.Read(c.readFn)
	}
	c.rbuf = nil
	if err != nil {
		c.pending = nil
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapSyscallError(err)}
	}
	return c.rn, c.rerr
}

func (c *Conn) read(fd uintptr) bool {
	if len(c.pending) > 0 {
		// The poller is armed: write what DeferNextWrite held back and
		// wait for the answer without a read that would find nothing.
		return !c.sendPending(fd)
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch errno {
		case 0:
			c.rn = int(n)
			if n == 0 {
				c.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller wakes us when data arrives
		default:
			c.rerr = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
			return true
		}
	}
}

// Write writes all of p, waiting in the network poller while the socket's
// send buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.flushPending(); err != nil {
		return 0, err
	}
	if c.deferNext {
		c.deferNext = false
		if len(p) <= maxDeferredWrite {
			c.pendingBuf = append(c.pendingBuf[:0], p...)
			c.pending = c.pendingBuf
			return len(p), nil
		}
	}
	return c.writeAll(p)
}

// sendPending writes the deferred bytes from inside a read callback. It
// reports whether they all went out; when not, an error is in rerr or
// the rest is still in pending (the send buffer is full).
func (c *Conn) sendPending(fd uintptr) bool {
	for len(c.pending) > 0 {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.pending[0])), uintptr(len(c.pending)))
		switch errno {
		case 0:
			c.pending = c.pending[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.pending = nil
			c.rerr = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
			return false
		}
	}
	c.pending = nil
	return true
}

// flushPending writes deferred bytes still unsent the ordinary way.
func (c *Conn) flushPending() error {
	if len(c.pending) == 0 {
		return nil
	}
	rest := c.pending
	c.pending = nil
	_, err := c.writeAll(rest)
	return err
}

func (c *Conn) writeAll(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeFn)
	n := c.wn
	c.wbuf = nil
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapSyscallError(err)}
	}
	return n, c.werr
}

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch errno {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the poller wakes us when there is room
		default:
			c.werr = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errno}
			return true
		}
	}
	return true
}

// unwrapSyscallError: syscall.RawConn wraps the poller's errors (closed,
// deadline exceeded) in an os.SyscallError; net.Conn users expect them
// directly under the net.OpError, as net.TCPConn returns them.
func unwrapSyscallError(err error) error {
	if se, ok := err.(interface{ Unwrap() error }); ok {
		if inner := se.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
