package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/shardproxy/shardproxy/rawsock"
)

const (
	readBufferSize  = 16 << 10
	writeBufferSize = 16 << 10
	bodyKeepLimit   = 64 << 10
	maxServerBody   = 1 << 30 // a server's DataRow may be up to 1 GB
)

// DialConfig says how to reach and log into one server.
type DialConfig struct {
	Addr     string // host:port
	User     string
	Password string
	Database string
	// TLSMode is disable, require or verify-full.
	TLSMode string
	TLSCA   string // CA file for verify-full
	// RuntimeParams are sent in the startup packet (statement_timeout for
	// limits.query_timeout, for example).
	RuntimeParams  map[string]string
	ConnectTimeout time.Duration
	KeepAlive      time.Duration
}

// Conn is a logged-in server connection with raw framing.
type Conn struct {
	netConn net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	header  [5]byte
	body    []byte

	// writeHeader is WriteFrame's scratch; raw, peekFunc, peekBuf and
	// peekAlive are Alive's (set up on first use).
	writeHeader [5]byte
	raw         syscall.RawConn
	peekFunc    func(fd uintptr) bool
	peekBuf     [1]byte
	peekAlive   bool

	Addr      string
	ProcessID uint32
	SecretKey []byte
	// ParameterStatus holds what the server reported at login and since.
	ParameterStatus map[string]string
	Created         time.Time
}

// Dial connects and logs in. Errors from the server (a wrong password, a
// missing database) are *pgconn.PgError in the chain.
func Dial(ctx context.Context, dc DialConfig) (*Conn, error) {
	host, port, err := net.SplitHostPort(dc.Addr)
	if err != nil {
		return nil, fmt.Errorf("backend address %q: %w", dc.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("backend address %q: bad port: %w", dc.Addr, err)
	}
	mode := dc.TLSMode
	if mode == "" {
		mode = "disable"
	}
	connStr := fmt.Sprintf("host=%s port=%d sslmode=%s", host, p, mode)
	if dc.TLSCA != "" {
		connStr += " sslrootcert=" + quoteConnValue(dc.TLSCA)
	}
	cfg, err := pgconn.ParseConfig(connStr)
	if err != nil {
		return nil, fmt.Errorf("backend config: %w", err)
	}
	cfg.User = dc.User
	cfg.Password = dc.Password
	cfg.Database = dc.Database
	cfg.RuntimeParams = map[string]string{}
	for k, v := range dc.RuntimeParams {
		cfg.RuntimeParams[k] = v
	}
	if dc.ConnectTimeout > 0 {
		cfg.ConnectTimeout = dc.ConnectTimeout
	}
	ka := dc.KeepAlive
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{KeepAlive: -1}
		if ka > 0 {
			d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: ka, Interval: ka, Count: 4}
		}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawsock.Wrap(nc), nil
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		_ = pc.Close(ctx)
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	// Go's TCP connections have TCP_NODELAY set from the start: every
	// flush goes out at once.
	ps := make(map[string]string, len(hc.ParameterStatuses))
	for k, v := range hc.ParameterStatuses {
		ps[k] = v
	}
	return &Conn{
		netConn:         hc.Conn,
		r:               bufio.NewReaderSize(hc.Conn, readBufferSize),
		w:               bufio.NewWriterSize(hc.Conn, writeBufferSize),
		Addr:            dc.Addr,
		ProcessID:       hc.PID,
		SecretKey:       hc.SecretKey,
		ParameterStatus: ps,
		Created:         time.Now(),
	}, nil
}

func quoteConnValue(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// ReadMessage reads one frame; the body is valid until the next call.
func (c *Conn) ReadMessage() (byte, []byte, error) {
	if _, err := io.ReadFull(c.r, c.header[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(c.header[1:]))) - 4
	if n < 0 || n > maxServerBody {
		return 0, nil, fmt.Errorf("server %s sent a frame of invalid length %d", c.Addr, n+4)
	}
	b := c.body
	if cap(b) < n || (cap(b) > bodyKeepLimit && n <= bodyKeepLimit) {
		b = make([]byte, n, max(n, 512))
	}
	b = b[:n]
	if _, err := io.ReadFull(c.r, b); err != nil {
		return 0, nil, err
	}
	c.body = b
	return c.header[0], b, nil
}

// Buffered reports bytes read from the server and not yet consumed.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// WriteFrame buffers one frame.
func (c *Conn) WriteFrame(typ byte, body []byte) error {
	// The header lives in the Conn: a local array would escape through
	// bufio.Writer.Write and cost an allocation per frame.
	h := &c.writeHeader
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(body)+4))
	if _, err := c.w.Write(h[:]); err != nil {
		return err
	}
	_, err := c.w.Write(body)
	return err
}

// WriteRaw buffers bytes that already form whole frames.
func (c *Conn) WriteRaw(b []byte) error {
	_, err := c.w.Write(b)
	return err
}

// Flush sends buffered frames.
func (c *Conn) Flush() error { return c.w.Flush() }

// FlushForReply is Flush when the caller reads the server's answer next:
// on a plain socket the frames go out from inside that read's wait
// (rawsock's DeferNextWrite), which saves the read that would find
// nothing yet. The caller must read next, and the frames must draw an
// answer (end with Sync or a simple Query).
func (c *Conn) FlushForReply() error {
	rc, ok := c.netConn.(*rawsock.Conn)
	if !ok || c.r.Buffered() > 0 {
		return c.w.Flush()
	}
	rc.DeferNextWrite()
	err := c.w.Flush()
	rc.EndDefer()
	return err
}

// Close closes the connection after a best-effort Terminate.
func (c *Conn) Close() error {
	_ = c.netConn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_ = c.WriteFrame('X', nil)
	_ = c.w.Flush()
	return c.netConn.Close()
}

// SetDeadline sets the read and write deadline of the network connection;
// used to interrupt a wait on shutdown.
func (c *Conn) SetDeadline(t time.Time) error { return c.netConn.SetDeadline(t) }

// Cancel sends a CancelRequest for this connection's current query and
// waits until the server has processed it (it closes the connection after
// signalling the backend), so a caller holding a lock knows the cancel
// cannot land after the connection changed hands.
func (c *Conn) Cancel(ctx context.Context) error {
	return SendCancel(ctx, c.Addr, c.ProcessID, c.SecretKey)
}

// SendCancel sends a CancelRequest to addr and waits for the server to close.
func SendCancel(ctx context.Context, addr string, pid uint32, secret []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cancel: dial %s: %w", addr, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	buf := make([]byte, 12, 12+len(secret))
	binary.BigEndian.PutUint32(buf[0:], uint32(12+len(secret)))
	binary.BigEndian.PutUint32(buf[4:], 80877102)
	binary.BigEndian.PutUint32(buf[8:], pid)
	buf = append(buf, secret...)
	if _, err := nc.Write(buf); err != nil {
		return fmt.Errorf("cancel: write: %w", err)
	}
	var one [1]byte
	if _, err := nc.Read(one[:]); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cancel: wait for server: %w", err)
	}
	return nil
}

// ReadMessageKeepOnError reads one frame like ReadMessage, but a read that
// fails (a deadline used to interrupt it) consumes nothing, so the frame
// can be read again later. Frames larger than the read buffer fall back to
// ReadMessage.
func (c *Conn) ReadMessageKeepOnError() (byte, []byte, error) {
	h, err := c.r.Peek(5)
	if err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(h[1:])))
	if n < 4 || 1+n > c.r.Size() {
		return c.ReadMessage()
	}
	frame, err := c.r.Peek(1 + n)
	if err != nil {
		return 0, nil, err
	}
	typ := frame[0]
	c.body = append(c.body[:0], frame[5:]...)
	_, _ = c.r.Discard(1 + n)
	return typ, c.body, nil
}

// Alive reports whether an idle connection is still usable: nothing
// unexpected was buffered and the server has neither sent anything (a
// FATAL before closing, say, after a restart) nor closed the socket. It
// costs one non-blocking peek, no deadline juggling.
func (c *Conn) Alive() bool {
	if rc, ok := c.netConn.(*rawsock.Conn); ok && rc.Pending() {
		return false // a request was never sent: not a clean connection
	}
	if c.r.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		nc := c.netConn
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		sc, ok := nc.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		// Kept for the connection's life: Alive runs at every checkout
		// from the pool and must not allocate.
		c.raw, c.peekFunc = rc, c.peek
	}
	c.peekAlive = false
	err := c.raw.Read(c.peekFunc)
	return err == nil && c.peekAlive
}

// peek is Alive's non-blocking look at the socket. Data (n > 0) or EOF
// (n == 0) both mean the connection is done; only "nothing to read" means
// alive. The call cannot block, so it needs no scheduler hand-off.
func (c *Conn) peek(fd uintptr) bool {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		uintptr(unix.MSG_PEEK|unix.MSG_DONTWAIT), 0, 0)
	c.peekAlive = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
	return true
}
