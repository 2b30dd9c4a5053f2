package clients_test

// Input the proxy must refuse without harm to anyone else: a message over
// limits.max_message_size (08P01, connection closed) and bytes that are not
// a startup packet at all.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestMaxMessageSize(t *testing.T) {
	for _, mode := range []string{config.PoolTransaction, config.PoolSession} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) {
				c.Pool.Mode = mode
				c.Limits.MaxMessageSize = 64 << 10
			})
			ctx := testenv.TestCtx(t, 30*time.Second)
			other := testenv.Connect(t, ctx, proxyURL(n))
			big := testenv.Connect(t, ctx, proxyURL(n))

			// Just under the limit passes.
			under := "select length('" + strings.Repeat("y", 60<<10) + "')"
			var l int
			if err := big.QueryRow(ctx, under, pgx.QueryExecModeSimpleProtocol).Scan(&l); err != nil || l != 60<<10 {
				t.Fatalf("a 60 KiB query: %d, %v", l, err)
			}

			query := "select length('" + strings.Repeat("x", 100<<10) + "')"
			_, err := big.Exec(ctx, query, pgx.QueryExecModeSimpleProtocol)
			pe := testenv.RequireCode(t, err, "08P01")
			if !strings.Contains(pe.Message, "maximum") {
				t.Errorf("message %q does not say what limit was hit", pe.Message)
			}
			if !big.PgConn().IsClosed() {
				// pgx marks the connection closed when the server ends it
				// (FATAL); make sure it really is gone.
				if _, err := big.Exec(ctx, "select 1"); err == nil {
					t.Fatal("the connection still works after a too large message")
				}
			}
			// The same through the extended protocol (a Parse that large).
			big2 := testenv.Connect(t, ctx, proxyURL(n))
			_, err = big2.Exec(ctx, query+" where $1::int = 1", 1)
			testenv.RequireCode(t, err, "08P01")

			checkUsable(t, ctx, other)
			checkUsable(t, ctx, testenv.Connect(t, ctx, proxyURL(n)))
		})
	}
}

func TestGarbageInput(t *testing.T) {
	n := startNode(t, nil)
	ctx := testenv.TestCtx(t, 30*time.Second)
	other := testenv.Connect(t, ctx, proxyURL(n))

	startup := func(version uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, version)
		b = append(b, "user\x00app\x00\x00"...)
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		return b
	}
	for _, tc := range []struct {
		name  string
		bytes []byte
		code  string // the FATAL error expected before the close; "" for none
	}{
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "08P01"},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}, "08P01"},
		{"zero length", make([]byte, 8), "08P01"},
		{"huge length", []byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}, "08P01"},
		{"protocol 2", startup(2 << 16), "0A000"},
		{"protocol 9.9", startup(9<<16 | 9), "0A000"},
		{"random bytes", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 3000), "08P01"},
		{"startup without terminator", func() []byte {
			b := startup(3 << 16)
			b = b[:len(b)-1]
			binary.BigEndian.PutUint32(b, uint32(len(b)))
			return b
		}(), "08P01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write(tc.bytes); err != nil {
				t.Fatalf("write: %v", err)
			}
			// The proxy answers (at most) one ErrorResponse, then closes.
			reply, err := io.ReadAll(nc)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("reading until the proxy closes: %v (got %q)", err, reply)
			}
			if tc.code != "" {
				code, msg := decodeError(reply)
				if code != tc.code {
					t.Errorf("reply %q: want an ErrorResponse %s, got code %q (%s)", reply, tc.code, code, msg)
				}
			}
		})
	}
	// Garbage after a successful login.
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"unknown message type", []byte{'!', 0, 0, 0, 4}},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xf0, 's', 0}},
		{"length below 4", []byte{'Q', 0, 0, 0, 2}},
		{"huge length", []byte{'Q', 0x7f, 0, 0, 0}},
	} {
		t.Run("after login: "+tc.name, func(t *testing.T) {
			nc, err := rawLogin(n.Addr(), testenv.TrustUser, testenv.Database, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write(tc.bytes); err != nil {
				t.Fatalf("write: %v", err)
			}
			reply, err := io.ReadAll(nc)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("reading until the proxy closes: %v (got %q)", err, reply)
			}
			if code, msg := decodeError(reply); code != "08P01" {
				t.Errorf("reply %q: want a FATAL 08P01, got code %q (%s)", reply, code, msg)
			}
		})
	}

	// The proxy keeps serving.
	checkUsable(t, ctx, other)
	checkUsable(t, ctx, testenv.Connect(t, ctx, proxyURL(n)))
}

// decodeError decodes the first message of b as an ErrorResponse.
func decodeError(b []byte) (code, message string) {
	if len(b) < 5 || b[0] != 'E' {
		return "", ""
	}
	l := int(binary.BigEndian.Uint32(b[1:5]))
	if l < 4 || len(b) < 1+l {
		return "", ""
	}
	var er pgproto3.ErrorResponse
	if err := er.Decode(b[5 : 1+l]); err != nil {
		return "", ""
	}
	return er.Code, er.Message
}
