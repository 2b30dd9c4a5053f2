// These tests pin the SCRAM server to RFC 7677's published exchange, to a
// real client (pgconn's) over a socket, and to PostgreSQL's SASLprep, and
// feed it malformed and fuzzed messages, because a mistake here either locks
// every client out or lets the wrong one in.

package wire

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The exchange of RFC 7677 section 3, user "user", password "pencil".
const (
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func rfcVerifier(t testing.TB, password string) SCRAMVerifier {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(rfcSalt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := deriveSCRAMVerifier(password, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rfcServer is past client-first of the RFC exchange, its nonce replayed
// from the RFC through the injectable rand.
func rfcServer(t testing.TB, v SCRAMVerifier) *scramServer {
	t.Helper()
	s := newSCRAMServer(v, strings.NewReader(rfcServerNonce))
	got, err := s.clientFirst([]byte(rfcClientFirst))
	if err != nil {
		t.Fatalf("clientFirst(%q): %v", rfcClientFirst, err)
	}
	if string(got) != rfcServerFirst {
		t.Fatalf("server-first = %q, want %q", got, rfcServerFirst)
	}
	return s
}

func TestSCRAMRFC7677(t *testing.T) {
	tests := []struct {
		name            string
		password        string // what the verifier was made from
		wantServerFinal string
		wantErr         error
	}{
		{name: "right password", password: "pencil", wantServerFinal: rfcServerFinal},
		{name: "wrong password", password: "pencil2", wantErr: ErrSCRAMAuthFailed},
		// SASLprep drops a soft hyphen, so this is still "pencil".
		{name: "password equal after SASLprep", password: "pen\u00adcil", wantServerFinal: rfcServerFinal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rfcServer(t, rfcVerifier(t, tt.password))
			got, err := s.clientFinal([]byte(rfcClientFinal))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("clientFinal error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.wantServerFinal {
				t.Errorf("server-final = %q, want %q", got, tt.wantServerFinal)
			}
		})
	}
}

func TestNewSCRAMVerifier(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, 16)
	v, err := NewSCRAMVerifier("pencil", bytes.NewReader(salt))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Salt, salt) || v.Iterations != 4096 || len(v.StoredKey) != 32 || len(v.ServerKey) != 32 {
		t.Errorf("NewSCRAMVerifier = %+v, want the 16-byte salt read, 4096 iterations, 32-byte keys", v)
	}
	if err := v.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if _, err := NewSCRAMVerifier("", nil); err == nil {
		t.Error("NewSCRAMVerifier(\"\") succeeded, want an error")
	}
	if _, err := NewSCRAMVerifier("pencil", strings.NewReader("short")); err == nil {
		t.Error("NewSCRAMVerifier with an exhausted rand succeeded, want an error")
	}

	broken := []struct {
		name string
		edit func(*SCRAMVerifier)
	}{
		{"no salt", func(v *SCRAMVerifier) { v.Salt = nil }},
		{"no iterations", func(v *SCRAMVerifier) { v.Iterations = 0 }},
		{"short StoredKey", func(v *SCRAMVerifier) { v.StoredKey = v.StoredKey[:31] }},
		{"no ServerKey", func(v *SCRAMVerifier) { v.ServerKey = nil }},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			b := v
			tt.edit(&b)
			if err := b.Validate(); err == nil {
				t.Error("Validate() = nil, want an error")
			}
			// An exchange against it fails instead of panicking.
			if _, err := newSCRAMServer(b, nil).clientFirst([]byte(rfcClientFirst)); err == nil {
				t.Error("clientFirst succeeded against a broken verifier")
			}
		})
	}
}

func TestSCRAMServerNonce(t *testing.T) {
	tests := []struct {
		name    string
		rand    io.Reader
		want    string // "" means any 30 printable characters
		wantErr bool
	}{
		{name: "printable bytes are kept", rand: strings.NewReader(rfcServerNonce), want: rfcServerNonce},
		{
			name: "high bit is masked, commas and controls are skipped",
			rand: strings.NewReader("\xc1,\x00" + strings.Repeat("B", 29)),
			want: "A" + strings.Repeat("B", 29),
		},
		{name: "crypto/rand", rand: nil},
		{name: "source of zeros is an error, not a hang", rand: zeros{}, wantErr: true},
		{name: "exhausted source", rand: strings.NewReader("abc"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newSCRAMServer(rfcVerifier(t, "pencil"), tt.rand).serverNonce()
			if (err != nil) != tt.wantErr {
				t.Fatalf("serverNonce() error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != scramServerNonceLen || bytes.ContainsFunc(got, func(r rune) bool { return !isSCRAMPrintable(byte(r)) }) {
				t.Errorf("serverNonce() = %q, want %d printable characters", got, scramServerNonceLen)
			}
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("serverNonce() = %q, want %q", got, tt.want)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestSCRAMSASLPrep(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ASCII", "pencil", "pencil"},
		{"case kept", "USER", "USER"},
		{"RFC 4013 example: soft hyphen mapped to nothing", "I\u00adX", "IX"},
		{"RFC 4013 example: NFKC", "\u00aa", "a"},
		{"RFC 4013 example: NFKC to two letters", "\u2168", "IX"},
		// RFC 4013 prohibits U+0007, but PostgreSQL takes ASCII as is.
		{"ASCII control kept", "\u0007", "\u0007"},
		{"non-ASCII space", "a\u00a0b", "a b"},
		// U+200B is in both C.1.2 and B.1; PostgreSQL maps it to a space.
		{"zero width space", "x\u200by", "x y"},
		{"ligature", "\ufb01x", "fix"},
		{"decomposed to composed", "e\u0301", "\u00e9"},
		{"right-to-left", "\u0627\u0031\u0628", "\u0627\u0031\u0628"},
		{"full width", "\uff50\uff41\uff53\uff53", "pass"},
		// From here on SASLprep fails and PostgreSQL uses the raw password.
		{"RFC 4013 example: bidi violation", "\u0627\u0031", "\u0627\u0031"},
		{"right-to-left mixed with left-to-right", "\u0627a\u0628", "\u0627a\u0628"},
		{"unassigned in Unicode 3.2 keeps even a mappable space", "\U0001f600\u00a0", "\U0001f600\u00a0"},
		{"private use", "p\ue000\u00a0", "p\ue000\u00a0"},
		{"invalid UTF-8", "\xff\xfe\u00a0", "\xff\xfe\u00a0"},
		{"maps to nothing at all", "\u00ad", "\u00ad"},
		// PostgreSQL checks bidi before NFKC turns U+2100 into "a/c",
		// so a left-to-right letter ends up in right-to-left text.
		{"checks run before NFKC, as in PostgreSQL", "\u05d0\u2100\u05d0", "\u05d0a/c\u05d0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := saslPrep(tt.in); got != tt.want {
				t.Errorf("saslPrep(%+q) = %+q, want %+q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSCRAMMalformed(t *testing.T) {
	firsts := []struct{ name, msg string }{
		{"empty", ""},
		{"gs2 header only", "n,,"},
		{"missing nonce", "n,,n=user"},
		{"other attribute instead of the nonce", "n,,n=user,x=abc"},
		{"empty nonce", "n,,n=user,r="},
		{"nonce with a space", "n,,n=user,r=ab c"},
		{"nonce with a non-ASCII byte", "n,,n=user,r=ab\xffc"},
		{"channel binding required", "p=tls-server-end-point,,n=,r=abc"},
		{"unknown channel-binding flag", "x,,n=,r=abc"},
		{"gs2 header without commas", "nn=,r=abc"},
		{"authorization identity", "n,a=admin,n=,r=abc"},
		{"mandatory extension", "n,,m=ext,n=,r=abc"},
		{"no user name attribute", "n,,r=abc"},
		{"malformed extension", "n,,n=,r=abc,ext"},
		{"trailing comma", "n,,n=,r=abc,"},
	}
	for _, tt := range firsts {
		t.Run("client-first/"+tt.name, func(t *testing.T) {
			s := newSCRAMServer(rfcVerifier(t, "pencil"), strings.NewReader(rfcServerNonce))
			_, err := s.clientFirst([]byte(tt.msg))
			if !errors.Is(err, ErrSCRAMMalformed) {
				t.Fatalf("clientFirst(%q) error = %v, want %v", tt.msg, err, ErrSCRAMMalformed)
			}
			t.Logf("clientFirst(%q): %v", tt.msg, err)
		})
	}

	finals := []struct{ name, first, msg string }{
		{"empty", rfcClientFirst, ""},
		{"commas only", rfcClientFirst, ",,"},
		{"no proof", rfcClientFirst, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"},
		{"wrong nonce", rfcClientFirst, strings.Replace(rfcClientFinal, "$k0", "$k1", 1)},
		{"client nonce only", rfcClientFirst, "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
		{"proof not base64", rfcClientFirst, strings.Replace(rfcClientFinal, "p=dHzb", "p=*Hzb", 1)},
		{"proof with a line break", rfcClientFirst, strings.Replace(rfcClientFinal, "p=dHzb", "p=dH\nzb", 1)},
		{"proof missing padding", rfcClientFirst, strings.TrimSuffix(rfcClientFinal, "=")},
		{"proof too short", rfcClientFirst, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA"},
		{"channel binding neither biws nor eSws", rfcClientFirst, strings.Replace(rfcClientFinal, "c=biws", "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws", 1)},
		{"channel binding y after n", rfcClientFirst, strings.Replace(rfcClientFinal, "c=biws", "c=eSws", 1)},
		{"channel binding n after y", "y" + rfcClientFirst[1:], rfcClientFinal},
		{"channel binding not first", rfcClientFirst, strings.Replace(rfcClientFinal, "c=biws,", "", 1) + ",c=biws"},
		{"proof before an extension", rfcClientFirst, rfcClientFinal + ",x=1"},
		{"two proofs", rfcClientFirst, rfcClientFinal + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
	}
	for _, tt := range finals {
		t.Run("client-final/"+tt.name, func(t *testing.T) {
			s := newSCRAMServer(rfcVerifier(t, "pencil"), strings.NewReader(rfcServerNonce))
			if _, err := s.clientFirst([]byte(tt.first)); err != nil {
				t.Fatalf("clientFirst(%q): %v", tt.first, err)
			}
			_, err := s.clientFinal([]byte(tt.msg))
			if !errors.Is(err, ErrSCRAMMalformed) {
				t.Fatalf("clientFinal(%q) error = %v, want %v", tt.msg, err, ErrSCRAMMalformed)
			}
			t.Logf("clientFinal(%q): %v", tt.msg, err)
		})
	}
}

func TestSCRAMOutOfOrder(t *testing.T) {
	v := rfcVerifier(t, "pencil")
	tests := []struct {
		name string
		run  func(s *scramServer) error
	}{
		{"final before first", func(s *scramServer) error {
			_, err := s.clientFinal([]byte(rfcClientFinal))
			return err
		}},
		{"first twice", func(s *scramServer) error {
			if _, err := s.clientFirst([]byte(rfcClientFirst)); err != nil {
				return err
			}
			_, err := s.clientFirst([]byte(rfcClientFirst))
			return err
		}},
		{"final again after a wrong proof", func(s *scramServer) error {
			if _, err := s.clientFirst([]byte(rfcClientFirst)); err != nil {
				return err
			}
			bad := strings.Replace(rfcClientFinal, "p=dHzb", "p=eHzb", 1)
			if _, err := s.clientFinal([]byte(bad)); !errors.Is(err, ErrSCRAMAuthFailed) {
				return fmt.Errorf("wrong proof: %w, want ErrSCRAMAuthFailed", err)
			}
			// A second guess on the same exchange must not be allowed.
			_, err := s.clientFinal([]byte(rfcClientFinal))
			return err
		}},
		{"final again after success", func(s *scramServer) error {
			if _, err := s.clientFirst([]byte(rfcClientFirst)); err != nil {
				return err
			}
			if _, err := s.clientFinal([]byte(rfcClientFinal)); err != nil {
				return err
			}
			_, err := s.clientFinal([]byte(rfcClientFinal))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(newSCRAMServer(v, strings.NewReader(rfcServerNonce)))
			if !errors.Is(err, ErrSCRAMMalformed) {
				t.Fatalf("error = %v, want %v", err, ErrSCRAMMalformed)
			}
		})
	}
}

// TestSCRAMPgconn runs pgconn's SCRAM client, which the proxy's clients
// use, against scramServer behind just enough of a PostgreSQL startup.
func TestSCRAMPgconn(t *testing.T) {
	tests := []struct {
		name           string
		serverPassword string // what the verifier was made from
		clientPassword string
		wantCode       string // SQLSTATE pgconn reports; "" for success
	}{
		{name: "right password", serverPassword: "app", clientPassword: "app"},
		{name: "wrong password", serverPassword: "app", clientPassword: "wrong", wantCode: "28P01"},
		// pgconn prepares passwords with PRECIS, which agrees with SASLprep here.
		{name: "non-ASCII password", serverPassword: "p\u00e4ss\u00a0w\u00f6rd", clientPassword: "p\u00e4ss\u00a0w\u00f6rd"},
		{name: "non-ASCII password, wrong", serverPassword: "p\u00e4ss w\u00f6rd", clientPassword: "pass word", wantCode: "28P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewSCRAMVerifier(tt.serverPassword, nil)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			serverErr := make(chan error, 1)
			go func() { serverErr <- serveSCRAMOnce(ln, v) }()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			connString := (&url.URL{
				Scheme:   "postgres",
				User:     url.UserPassword("app", tt.clientPassword),
				Host:     ln.Addr().String(),
				Path:     "/app",
				RawQuery: "sslmode=disable",
			}).String()
			conn, err := pgconn.Connect(ctx, connString)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("pgconn.Connect: %v (server: %v)", err, <-serverErr)
				}
				if err := conn.Close(ctx); err != nil {
					t.Errorf("Close: %v", err)
				}
				if err := <-serverErr; err != nil {
					t.Errorf("server: %v", err)
				}
				return
			}

			if err == nil {
				conn.Close(ctx)
				t.Fatalf("pgconn.Connect succeeded, want SQLSTATE %s", tt.wantCode)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.wantCode {
				t.Fatalf("pgconn.Connect error = %v, want a *pgconn.PgError with code %s", err, tt.wantCode)
			}
			if err := <-serverErr; !errors.Is(err, ErrSCRAMAuthFailed) {
				t.Errorf("server error = %v, want %v", err, ErrSCRAMAuthFailed)
			}
		})
	}
}

// serveSCRAMOnce accepts one connection and plays PostgreSQL up to
// ReadyForQuery, authenticating with SCRAM against v.
func serveSCRAMOnce(ln net.Listener, v SCRAMVerifier) error {
	nc, err := ln.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	be := pgproto3.NewBackend(nc, nc)

	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		return err
	}
	startup, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		return fmt.Errorf("got %T, want StartupMessage", msg)
	}
	user := startup.Parameters["user"]

	be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}})
	if err := be.Flush(); err != nil {
		return err
	}
	if err := be.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return err
	}
	msg, err = be.Receive()
	if err != nil {
		return err
	}
	initial, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return fmt.Errorf("got %T, want SASLInitialResponse", msg)
	}
	if initial.AuthMechanism != scramMechanism {
		return fmt.Errorf("client chose mechanism %q", initial.AuthMechanism)
	}
	s := newSCRAMServer(v, nil)
	serverFirst, err := s.clientFirst(initial.Data)
	if err != nil {
		return err
	}

	be.Send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
	if err := be.Flush(); err != nil {
		return err
	}
	if err := be.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	msg, err = be.Receive()
	if err != nil {
		return err
	}
	response, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fmt.Errorf("got %T, want SASLResponse", msg)
	}
	serverFinal, err := s.clientFinal(response.Data)
	if errors.Is(err, ErrSCRAMAuthFailed) {
		be.Send(&pgproto3.ErrorResponse{
			Severity: "FATAL",
			Code:     "28P01",
			Message:  fmt.Sprintf("password authentication failed for user %q", user),
		})
		if ferr := be.Flush(); ferr != nil {
			return ferr
		}
		return err
	}
	if err != nil {
		return err
	}

	be.Send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "17.0"})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		return err
	}
	msg, err = be.Receive()
	if err != nil {
		return err
	}
	if _, ok := msg.(*pgproto3.Terminate); !ok {
		return fmt.Errorf("got %T, want Terminate", msg)
	}
	return nil
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, seed := range []string{
		rfcClientFirst,
		"y,,n=,r=abc",
		"n,,n=,r=abc,x=ext",
		"p=tls-server-end-point,,n=,r=abc",
		"n,a=admin,n=,r=abc",
		"n,,m=ext,n=,r=abc",
		"",
	} {
		f.Add([]byte(seed))
	}
	v := rfcVerifier(f, "pencil")
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := newSCRAMServer(v, strings.NewReader(rfcServerNonce))
		got, err := s.clientFirst(msg)
		if err != nil {
			if !errors.Is(err, ErrSCRAMMalformed) {
				t.Fatalf("clientFirst(%q) error = %v, want it to wrap %v", msg, err, ErrSCRAMMalformed)
			}
			return
		}
		// Whatever the client nonce was, it comes back first, followed by
		// ours, salt and iteration count, all printable.
		_, clientNonce, ok := bytes.Cut(msg, []byte(",r="))
		clientNonce, _, _ = bytes.Cut(clientNonce, []byte(","))
		want := "r=" + string(clientNonce) + rfcServerNonce + ",s=" + rfcSalt + ",i=4096"
		if !ok || string(got) != want {
			t.Fatalf("clientFirst(%q) = %q, want %q", msg, got, want)
		}
	})
}

func FuzzSCRAMClientFinal(f *testing.F) {
	for _, seed := range []string{
		rfcClientFinal,
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=ext,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=AAAA",
		"c=biws,r=,p=",
		"",
	} {
		f.Add([]byte(seed))
	}
	v := rfcVerifier(f, "pencil")
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := rfcServer(t, v)
		got, err := s.clientFinal(msg)
		// The proof covers every byte before it and has one canonical
		// encoding, so exactly one message can succeed.
		if string(msg) == rfcClientFinal {
			if err != nil || string(got) != rfcServerFinal {
				t.Fatalf("clientFinal(%q) = %q, %v; want %q", msg, got, err, rfcServerFinal)
			}
			return
		}
		if err == nil {
			t.Fatalf("clientFinal(%q) = %q, want an error", msg, got)
		}
		if !errors.Is(err, ErrSCRAMMalformed) && !errors.Is(err, ErrSCRAMAuthFailed) {
			t.Fatalf("clientFinal(%q) error = %v, want it to wrap %v or %v", msg, err, ErrSCRAMMalformed, ErrSCRAMAuthFailed)
		}
	})
}
