package clients_test

// The startup packet's corners, spoken raw: GSSAPI encryption is refused
// and the client goes on in plaintext, a client asking for protocol 3.2 or
// for _pq_ options is told 3.0 with NegotiateProtocolVersion, protocol 2
// is refused, and a client that says nothing is dropped at the login
// timeout.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// rawConn dials the node with a deadline on every read and write.
func rawConn(t *testing.T, addr string) (net.Conn, *pgproto3.Frontend) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, pgproto3.NewFrontend(nc, nc)
}

// receiveUntilReady reads messages until ReadyForQuery or an error.
func receiveUntilReady(t *testing.T, fe *pgproto3.Frontend) []pgproto3.BackendMessage {
	t.Helper()
	var msgs []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			return append(msgs, m)
		case *pgproto3.ErrorResponse:
			c := *m
			return append(msgs, &c)
		case *pgproto3.NegotiateProtocolVersion:
			c := *m
			c.UnrecognizedOptions = append([]string(nil), m.UnrecognizedOptions...)
			msgs = append(msgs, &c)
		default:
			msgs = append(msgs, m)
		}
	}
}

func TestStartupNegotiation(t *testing.T) {
	n := startNode(t, nil)
	startup := func(version uint32, params map[string]string) *pgproto3.StartupMessage {
		p := map[string]string{"user": testenv.TrustUser, "database": testenv.Database}
		for k, v := range params {
			p[k] = v
		}
		return &pgproto3.StartupMessage{ProtocolVersion: version, Parameters: p}
	}

	t.Run("GSSENCRequest is refused, plaintext goes on", func(t *testing.T) {
		nc, fe := rawConn(t, n.Addr())
		fe.Send(&pgproto3.GSSEncRequest{})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != 'N' {
			t.Fatalf("answer to GSSENCRequest: %q, %v; want N", b[0], err)
		}
		fe.Send(startup(pgproto3.ProtocolVersion30, nil))
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		msgs := receiveUntilReady(t, fe)
		if _, ok := msgs[len(msgs)-1].(*pgproto3.ReadyForQuery); !ok {
			t.Fatalf("login after the refusal ended with %#v", msgs[len(msgs)-1])
		}
	})

	for _, tc := range []struct {
		name        string
		version     uint32
		params      map[string]string
		wantOptions []string
	}{
		{"protocol 3.2", pgproto3.ProtocolVersion32, nil, nil},
		{"_pq_ option", pgproto3.ProtocolVersion30, map[string]string{"_pq_.test_option": "x"}, []string{"_pq_.test_option"}},
	} {
		t.Run(tc.name+" is negotiated down to 3.0", func(t *testing.T) {
			_, fe := rawConn(t, n.Addr())
			fe.Send(startup(tc.version, tc.params))
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			msgs := receiveUntilReady(t, fe)
			npv, ok := msgs[0].(*pgproto3.NegotiateProtocolVersion)
			if !ok {
				t.Fatalf("first answer %#v, want NegotiateProtocolVersion", msgs[0])
			}
			if npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != len(tc.wantOptions) {
				t.Fatalf("NegotiateProtocolVersion %+v, want minor 0 and options %v", npv, tc.wantOptions)
			}
			if _, ok := msgs[len(msgs)-1].(*pgproto3.ReadyForQuery); !ok {
				t.Fatalf("login ended with %#v", msgs[len(msgs)-1])
			}
		})
	}

	t.Run("protocol 2 is refused", func(t *testing.T) {
		nc, _ := rawConn(t, n.Addr())
		// A protocol 2.0 startup packet: length, version 2.0, user.
		body := append([]byte{0, 2, 0, 0}, []byte("user\x00app\x00\x00")...)
		pkt := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
		if _, err := nc.Write(append(pkt, body...)); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(nc, nc)
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		er, ok := m.(*pgproto3.ErrorResponse)
		if !ok || er.Code != "0A000" || er.Severity != "FATAL" {
			t.Fatalf("answer %#v, want FATAL 0A000", m)
		}
	})
}

func TestLoginTimeout(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Limits.ClientLoginTimeout = 300 * time.Millisecond })
	nc, _ := rawConn(t, n.Addr())
	start := time.Now()
	var b [1]byte
	_, err := nc.Read(b[:])
	if !errors.Is(err, io.EOF) {
		t.Fatalf("a silent client: read gave %v, want the proxy to close the connection", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %s; the login timeout is 300ms", d)
	}
	// Other clients are not affected.
	ctx := testenv.TestCtx(t, 10*time.Second)
	c := testenv.Connect(t, ctx, proxyURL(n))
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
}
