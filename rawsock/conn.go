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
}

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
	c.rbuf = nil
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapSyscallError(err)}
	}
	return c.rn, c.rerr
}

func (c *Conn) read(fd uintptr) bool {
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
