package wire

// Conn is one authenticated client connection as the handler sees it. It
// reads frames whole (5-byte header, then the body into a reused buffer) so
// the router can forward them without decoding, and batches writes until the
// router flushes (at ReadyForQuery, a client Flush, CopyIn or a full buffer).
// Its read and write buffers are pooled and given back while the client is
// idle (idle.go), so an idle client costs little more than its goroutine.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
)

const (
	readBufferSize  = 8 << 10
	writeBufferSize = 16 << 10
	// bodyKeepLimit bounds the body buffer a connection keeps between
	// messages: one huge message must not pin its size for the connection's
	// lifetime.
	bodyKeepLimit = 64 << 10
	// idleBodyKeep bounds the body buffer an idle client keeps: most
	// queries fit, so a busy client reuses its buffer across idle waits.
	idleBodyKeep = 4 << 10
	// idleScratchKeep bounds the encoding buffer an idle client keeps.
	idleScratchKeep = 1 << 10
)

// ErrMessageTooLarge is returned (wrapped in a 08P01 client error) when a
// frame's declared length exceeds the configured maximum.
var ErrMessageTooLarge = errors.New("message exceeds the maximum message size")

// Conn is a client connection after authentication.
type Conn struct {
	netConn net.Conn
	in      inbuf
	// w is nil while the client is idle with everything flushed; writes
	// take one from the pool again (writer).
	w      *bufio.Writer
	body   []byte
	header [5]byte
	// wheader is WriteFrame's header: one on the stack would escape
	// (bufio.Writer may hand it to the connection) and cost an allocation
	// per frame.
	wheader [5]byte
	maxBody int
	// idleRead: BeginIdle ran, so ReadMessage waits for the client
	// without holding the read buffer (idle.go): raw is the plain socket
	// (nil for TLS, which reads oneByte instead), fill its read callback,
	// bound once so that a wait allocates nothing, and fillErr what the
	// callback met.
	idleRead bool
	raw      syscall.RawConn
	fill     func(fd uintptr) bool
	fillErr  error
	oneByte  [1]byte
	// onWait, set by tests (export_test.go), runs when an idle read is
	// about to wait without a read buffer.
	onWait func()

	// User and Database are the startup user and database; Params are the
	// remaining startup parameters (application_name, options, ...).
	User     string
	Database string
	Params   map[string]string
	// Admin is true when the user is configured with admin: true.
	Admin bool
	// RemoteAddr is the client's address, for logs.
	RemoteAddr net.Addr

	scratch []byte

	// drain state: see Server.Shutdown.
	mu       sync.Mutex
	idle     bool
	draining bool
	forced   bool
	onForce  func()
}

// newConn takes over in, the buffered reader login read the startup
// packet with (its buffer may hold the client's next bytes).
func newConn(nc net.Conn, in inbuf, maxMessageSize int) *Conn {
	c := &Conn{
		netConn:    nc,
		in:         in,
		maxBody:    maxMessageSize - 4,
		RemoteAddr: nc.RemoteAddr(),
	}
	c.initIdleWait()
	return c
}

// ReadMessage reads one frame. The body is valid only until the next call.
func (c *Conn) ReadMessage() (typ byte, body []byte, err error) {
	if c.idleRead {
		c.idleRead = false
		if err := c.waitIdle(); err != nil {
			return 0, nil, err
		}
	}
	return readFrame(&c.in, &c.header, &c.body, c.maxBody)
}

// readFrame reads one typed frame. It is shared by client and server sides.
func readFrame(r io.Reader, header *[5]byte, buf *[]byte, maxBody int) (byte, []byte, error) {
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(header[1:]))) - 4
	if n < 0 {
		return 0, nil, pgerror.Wrap(fmt.Errorf("invalid message length %d", n+4), pgerror.ProtocolViolation, "invalid message length")
	}
	if n > maxBody {
		return 0, nil, pgerror.Wrap(ErrMessageTooLarge, pgerror.ProtocolViolation,
			"message of type %q is %d bytes, more than the maximum of %d", header[0], n+4, maxBody+4).
			WithHint("raise limits.max_message_size if such messages are expected")
	}
	b := *buf
	if cap(b) < n || (cap(b) > bodyKeepLimit && n <= bodyKeepLimit) {
		b = make([]byte, n, max(n, 512))
	}
	b = b[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	*buf = b
	return header[0], b, nil
}

// Buffered reports how many bytes of client input are already read and
// waiting, so the router can tell a pipelined batch from a finished one.
func (c *Conn) Buffered() int { return c.in.Buffered() }

// Peek returns the client input already read and not yet consumed,
// without reading more; it is valid until the next read.
func (c *Conn) Peek() []byte {
	if c.in.buf == nil {
		return nil
	}
	return c.in.buf[c.in.r:c.in.w]
}

// writer returns the write buffer, taking one from the pool after an idle
// wait gave it back.
func (c *Conn) writer() *bufio.Writer {
	if c.w == nil {
		c.w = getWriter(c.netConn)
	}
	return c.w
}

// WriteFrame writes a raw frame (type byte and body).
func (c *Conn) WriteFrame(typ byte, body []byte) error {
	w := c.writer()
	h := &c.wheader
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(body)+4))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// WriteRaw writes bytes that already form whole frames.
func (c *Conn) WriteRaw(b []byte) error {
	_, err := c.writer().Write(b)
	return err
}

// Send encodes a backend message into the write buffer.
func (c *Conn) Send(msg pgproto3.BackendMessage) error {
	var err error
	c.scratch, err = msg.Encode(c.scratch[:0])
	if err != nil {
		return err
	}
	_, err = c.writer().Write(c.scratch)
	return err
}

// SendError encodes err as an ErrorResponse.
func (c *Conn) SendError(err error) error {
	return c.Send(ErrorResponse(err))
}

// Flush writes buffered output to the client.
func (c *Conn) Flush() error {
	if c.w == nil {
		return nil
	}
	return c.w.Flush()
}

// Close closes the network connection.
func (c *Conn) Close() error { return c.netConn.Close() }

// SetReadDeadline sets the deadline of the next client read (idle
// transaction timeout).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.netConn.SetReadDeadline(t) }

// BeginIdle marks the connection as waiting for the client's next message
// outside a transaction, where a shutdown may close it at once. It returns
// false when the server is draining: the caller then says goodbye (57P01).
//
// An idle client should cost little: when all output is flushed, the write
// buffer goes back to the pool (the next write takes one again), and the
// next ReadMessage waits for the client without holding the read buffer
// (idle.go). The caller must be the goroutine that writes to c, and must
// call ReadMessage next; another goroutine may write once BeginIdle has
// returned (a LISTEN watcher does).
func (c *Conn) BeginIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return false
	}
	c.idle = true
	c.idleRead = true
	c.releaseWriter()
	return true
}

// EndIdle marks the end of an idle wait. A deadline set by a drain that
// raced with the arrival of the client's message is cleared.
func (c *Conn) EndIdle() {
	c.mu.Lock()
	c.idle = false
	if c.draining {
		_ = c.netConn.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
}

// Draining reports whether the server is shutting down.
func (c *Conn) Draining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

func (c *Conn) startDrain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.idle {
		// Wake the blocked read; the handler sees Draining() and ends.
		_ = c.netConn.SetReadDeadline(time.Now())
	}
}

// ErrorResponse converts any error into the ErrorResponse a client sees.
// This is the one place where Go errors become wire errors.
func ErrorResponse(err error) *pgproto3.ErrorResponse {
	pe := pgerror.From(err)
	sev := pe.Severity
	if sev == "" {
		sev = pgerror.SeverityError
	}
	return &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                string(pe.Code),
		Message:             pe.Message,
		Detail:              pe.Detail,
		Hint:                pe.Hint,
		Position:            int32(pe.Position),
	}
}

// OnForce registers a function the server calls when a shutdown deadline
// passes while this client is busy: the handler uses it to interrupt a wait
// on a server connection.
func (c *Conn) OnForce(f func()) {
	c.mu.Lock()
	c.onForce = f
	c.mu.Unlock()
}

// Forced reports whether the shutdown deadline has passed.
func (c *Conn) Forced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forced
}

func (c *Conn) force() {
	c.mu.Lock()
	c.forced, c.draining = true, true
	f := c.onForce
	c.mu.Unlock()
	_ = c.netConn.SetDeadline(time.Now())
	if f != nil {
		f()
	}
}

// Goodbye sends a FATAL error on a best-effort basis, even after a forced
// deadline, and closes the connection.
func (c *Conn) Goodbye(err error) {
	_ = c.netConn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.SendError(err)
	_ = c.Flush()
	_ = c.netConn.Close()
}
