package wire

// Server accepts client connections: it enforces the connection limit, reads
// the startup packet (SSL/GSSENC/cancel/startup), negotiates the protocol
// version, authenticates, and hands the connection to the Handler. It also
// drains connections on shutdown.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/rawsock"
)

// Startup packet codes (PostgreSQL's pqcomm.h).
const (
	codeCancelRequest = 80877102
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	protocolV30       = 3 << 16
	// maxStartupPacket is PostgreSQL's own MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10000
)

// Handler serves authenticated clients and cancel requests.
type Handler interface {
	// Serve runs the client's session. AuthenticationOk is already buffered;
	// the handler sends ParameterStatus, BackendKeyData and ReadyForQuery.
	// The connection is closed when Serve returns.
	Serve(ctx context.Context, c *Conn) error
	// Cancel handles a CancelRequest carrying a key the handler issued.
	Cancel(ctx context.Context, processID, secretKey uint32)
}

// UserAuth says how a user authenticates.
type UserAuth struct {
	Trust    bool
	Verifier SCRAMVerifier
	Admin    bool
}

// Config configures a Server.
type Config struct {
	TLS            *tls.Config // nil: SSLRequest is answered 'N'
	MaxMessageSize int         // frames larger than this are refused with 08P01
	LoginTimeout   time.Duration
	MaxClients     int           // 0: unlimited
	KeepAlive      time.Duration // TCP keepalive idle time; 0 disables
	// LookupUser returns the user's authentication; ok=false for unknown users.
	LookupUser func(name string) (UserAuth, bool)
	Logger     *slog.Logger
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.LookupUser == nil {
		return errors.New("wire: LookupUser is required")
	}
	if c.MaxMessageSize < 1024 {
		return fmt.Errorf("wire: MaxMessageSize %d is below 1024", c.MaxMessageSize)
	}
	return nil
}

// Server is a PostgreSQL protocol front end.
type Server struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	// mockSecret salts the made-up verifiers of unknown users: like
	// PostgreSQL, an unknown user goes through a full exchange that fails,
	// with a salt that is stable per name, so probing reveals nothing.
	mockSecret [32]byte

	active atomic.Int64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	draining  bool
	wg        sync.WaitGroup
}

// NewServer returns a server; call Serve with a listener.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, handler: h, log: log,
		listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}}
	if _, err := rand.Read(s.mockSecret[:]); err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return s, nil
}

// ActiveClients returns the number of client connections (including those
// still logging in).
func (s *Server) ActiveClients() int64 { return s.active.Load() }

// Serve accepts connections until the listener is closed or Shutdown runs.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || outOfFiles(err) {
				// Out of file descriptors: back off instead of spinning.
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; backing off", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.wg.Add(1)
		go s.serveConn(nc)
	}
}

// serveConn runs one client connection. Its frame stays at the bottom of
// the goroutine's stack for the connection's whole life, below the idle
// wait, so all but the handler call is in functions of their own: the
// runtime halves a stack only while less than a quarter of it is in use,
// and a shallow idle stack lets an idle client's shrink to 4 KiB.
func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	c := s.open(nc)
	if c == nil {
		return
	}
	defer s.closeConn(c)
	if err := s.handler.Serve(context.Background(), c); err != nil {
		s.sessionEnded(c, err)
	}
}

// open logs the client in and registers its connection. nil means the
// connection is closed already: a cancel request, a failed login, or a
// shutdown that began meanwhile.
func (s *Server) open(nc net.Conn) (c *Conn) {
	n := s.active.Add(1)
	defer func() {
		if c == nil {
			s.active.Add(-1)
		}
	}()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		if s.cfg.KeepAlive > 0 {
			_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: s.cfg.KeepAlive, Interval: s.cfg.KeepAlive, Count: 4})
		}
		// Reads and writes outside the scheduler's system call path
		// (see package rawsock); TLS, if the client asks, runs on top.
		nc = rawsock.Wrap(nc)
	}
	c, err := s.login(nc, n)
	if err != nil {
		var pe *pgerror.Error
		if errors.As(err, &pe) {
			s.log.Debug("client login failed", "remote", nc.RemoteAddr(), "err", err)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, errCancelHandled) {
			s.log.Debug("client connection ended during login", "remote", nc.RemoteAddr(), "err", err)
		}
		_ = nc.Close()
		return nil
	}
	if c == nil {
		_ = nc.Close()
		return nil
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = c.SendError(pgerror.Fatal(pgerror.AdminShutdown, "the proxy is shutting down"))
		_ = c.Flush()
		_ = nc.Close()
		c.release()
		return nil
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c
}

// closeConn ends a connection open returned, after its handler.
func (s *Server) closeConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
	c.release()
	s.active.Add(-1)
}

func (s *Server) sessionEnded(c *Conn, err error) {
	s.log.Debug("session ended", "remote", c.RemoteAddr, "user", c.User, "err", err)
}

var errCancelHandled = errors.New("cancel request handled")

// login runs everything up to AuthenticationOk. A nil Conn with a nil error
// means the connection was a cancel request or was refused politely.
func (s *Server) login(nc net.Conn, active int64) (*Conn, error) {
	if s.cfg.LoginTimeout > 0 {
		_ = nc.SetDeadline(time.Now().Add(s.cfg.LoginTimeout))
	}
	// in becomes the Conn's reader; until then its buffer goes back to
	// the pool when login ends.
	in := &inbuf{src: nc}
	defer in.release()
	sslDone, gssDone := false, false
	for {
		code, body, err := readStartupPacket(in)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			return nil, s.refuse(nc, pgerror.Wrap(err, pgerror.ProtocolViolation, "invalid startup packet"))
		}
		switch code {
		case codeCancelRequest:
			if len(body) >= 8 {
				s.handler.Cancel(context.Background(), binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]))
			}
			return nil, errCancelHandled
		case codeSSLRequest:
			if sslDone {
				return nil, s.refuse(nc, pgerror.New(pgerror.ProtocolViolation, "duplicate SSL negotiation request"))
			}
			sslDone = true
			if s.cfg.TLS == nil {
				if _, err := nc.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if in.Buffered() > 0 {
				// Bytes after SSLRequest before the handshake would be
				// readable in plaintext: a man-in-the-middle injection.
				return nil, s.refuse(nc, pgerror.New(pgerror.ProtocolViolation, "received unencrypted data after SSL request"))
			}
			if _, err := nc.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(nc, s.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			nc = tc
			in.src = tc // empty: nothing was read after SSLRequest
		case codeGSSENCRequest:
			if gssDone {
				return nil, s.refuse(nc, pgerror.New(pgerror.ProtocolViolation, "duplicate GSS negotiation request"))
			}
			gssDone = true
			if _, err := nc.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		default:
			if code>>16 != 3 {
				return nil, s.refuse(nc, pgerror.New(pgerror.FeatureNotSupported,
					"unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff))
			}
			return s.startup(nc, in, code, body, active)
		}
	}
}

// refuse sends a FATAL error to a client that has not logged in and returns it.
func (s *Server) refuse(nc net.Conn, pe *pgerror.Error) error {
	pe.Severity = pgerror.SeverityFatal
	buf, _ := ErrorResponse(pe).Encode(nil)
	_, _ = nc.Write(buf)
	return pe
}

func readStartupPacket(r io.Reader) (uint32, []byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(lenBuf[:]))
	if n < 8 || n > maxStartupPacket {
		return 0, nil, fmt.Errorf("invalid length of startup packet: %d", n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(body), body[4:], nil
}

// parseStartupParams decodes the name/value pairs of a StartupMessage.
func parseStartupParams(b []byte) (map[string]string, error) {
	params := map[string]string{}
	for len(b) > 0 && b[0] != 0 {
		k, rest, ok := cutCString(b)
		if !ok {
			return nil, errors.New("unterminated parameter name")
		}
		v, rest2, ok := cutCString(rest)
		if !ok {
			return nil, fmt.Errorf("parameter %q has no value", k)
		}
		params[k] = v
		b = rest2
	}
	if len(b) != 1 {
		return nil, errors.New("startup packet is not terminated")
	}
	return params, nil
}

func cutCString(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

func (s *Server) startup(nc net.Conn, in *inbuf, version uint32, body []byte, active int64) (_ *Conn, err error) {
	params, err := parseStartupParams(body)
	if err != nil {
		return nil, s.refuse(nc, pgerror.Wrap(err, pgerror.ProtocolViolation, "invalid startup packet layout"))
	}
	user := params["user"]
	if user == "" {
		return nil, s.refuse(nc, pgerror.New(pgerror.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet"))
	}
	db := params["database"]
	if db == "" {
		db = user
	}
	if params["replication"] != "" && params["replication"] != "false" && params["replication"] != "off" && params["replication"] != "0" {
		return nil, s.refuse(nc, pgerror.New(pgerror.FeatureNotSupported, "replication connections are not supported through shardproxy").
			WithHint("connect to a shard's primary directly for replication"))
	}
	if s.cfg.MaxClients > 0 && active > int64(s.cfg.MaxClients) {
		return nil, s.refuse(nc, pgerror.New(pgerror.TooManyConnections, "sorry, too many clients already").
			WithHint("the proxy allows limits.max_client_connections = %d clients", s.cfg.MaxClients))
	}
	c := newConn(nc, *in, s.cfg.MaxMessageSize)
	*in = inbuf{} // the Conn owns the buffer now
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	c.User, c.Database = user, db
	var unknownOpts []string
	for k := range params {
		if len(k) > 4 && k[:4] == "_pq_" {
			unknownOpts = append(unknownOpts, k)
			delete(params, k)
		}
	}
	delete(params, "user")
	delete(params, "database")
	delete(params, "replication")
	c.Params = params
	if version != protocolV30 || len(unknownOpts) > 0 {
		// Newer clients (3.2) fall back to 3.0 when told so.
		if err := c.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknownOpts}); err != nil {
			return nil, err
		}
	}
	ua, known := s.cfg.LookupUser(user)
	if known && ua.Trust {
		c.Admin = ua.Admin
	} else {
		v := ua.Verifier
		if !known {
			v = s.mockVerifier(user)
		}
		if err := s.authSCRAM(c, v); err != nil {
			return nil, err
		}
		if !known {
			return nil, s.authFailed(c, user)
		}
		c.Admin = ua.Admin
	}
	if err := c.Send(&pgproto3.AuthenticationOk{}); err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// mockVerifier is an unknown user's verifier: a per-name salt and keys no
// proof can match.
func (s *Server) mockVerifier(user string) SCRAMVerifier {
	mac := hmac.New(sha256.New, s.mockSecret[:])
	mac.Write([]byte(user))
	sum := mac.Sum(nil)
	keys := make([]byte, 2*scramKeyLen)
	_, _ = rand.Read(keys)
	return SCRAMVerifier{Salt: sum[:16], Iterations: 4096, StoredKey: keys[:scramKeyLen], ServerKey: keys[scramKeyLen:]}
}

func (s *Server) authFailed(c *Conn, user string) error {
	pe := pgerror.Fatal(pgerror.InvalidPassword, "password authentication failed for user %q", user)
	_ = c.SendError(pe)
	_ = c.Flush()
	return pe
}

func (s *Server) authSCRAM(c *Conn, v SCRAMVerifier) error {
	if err := c.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	typ, body, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if typ != 'p' {
		return s.protocolError(c, fmt.Sprintf("expected SASL response, got message type %q", typ))
	}
	var init pgproto3.SASLInitialResponse
	if err := init.Decode(body); err != nil {
		return s.protocolError(c, "malformed SASL initial response")
	}
	if init.AuthMechanism != "SCRAM-SHA-256" {
		return s.protocolError(c, "client selected an invalid SASL authentication mechanism")
	}
	srv := newSCRAMServer(v, nil)
	first, err := srv.clientFirst(init.Data)
	if err != nil {
		return s.protocolError(c, err.Error())
	}
	if err := c.Send(&pgproto3.AuthenticationSASLContinue{Data: first}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	typ, body, err = c.ReadMessage()
	if err != nil {
		return err
	}
	if typ != 'p' {
		return s.protocolError(c, fmt.Sprintf("expected SASL response, got message type %q", typ))
	}
	final, err := srv.clientFinal(body)
	if errors.Is(err, ErrSCRAMAuthFailed) {
		return s.authFailed(c, c.User)
	}
	if err != nil {
		return s.protocolError(c, err.Error())
	}
	return c.Send(&pgproto3.AuthenticationSASLFinal{Data: final})
}

func (s *Server) protocolError(c *Conn, msg string) error {
	pe := pgerror.Fatal(pgerror.ProtocolViolation, "%s", msg)
	_ = c.SendError(pe)
	_ = c.Flush()
	return pe
}

// Shutdown stops accepting, closes idle clients at once with 57P01, lets
// clients inside a transaction finish until ctx ends, then forces the rest
// (each handler sees its reads fail and Forced() true).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.startDrain()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.force()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}
