// SCRAM-SHA-256 (RFC 5802, RFC 7677) is how PostgreSQL clients expect to
// prove a password, and it lets the proxy check them while holding only a
// verifier, never the password itself. The exchange follows PostgreSQL
// (src/backend/libpq/auth-scram.c) rather than the bare RFC wherever the two
// differ, because libpq, pgx and JDBC are written against PostgreSQL.

package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// scramMechanism is the only SASL mechanism to put in
	// AuthenticationSASL: the -PLUS variant needs TLS channel binding, which
	// the proxy does not do, and a client that sees it offered will pick it.
	scramMechanism = "SCRAM-SHA-256"

	scramSaltLen    = 16   // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
	scramIterations = 4096 // PostgreSQL's default scram_iterations
	scramKeyLen     = sha256.Size

	// scramServerNonceLen is as long as RFC 7677's example nonce, so the
	// test vector can be replayed byte for byte; at about 6.5 bits a
	// character it carries more entropy than PostgreSQL's 18 random bytes.
	scramServerNonceLen = 30
)

var (
	// ErrSCRAMAuthFailed means the client's proof does not match the
	// verifier: the wrong password (SQLSTATE 28P01 at the boundary).
	ErrSCRAMAuthFailed = errors.New("wire: SCRAM authentication failed")

	// ErrSCRAMMalformed is wrapped by every error about a client message
	// that breaks the SCRAM grammar or this server's restrictions (SQLSTATE
	// 08P01 at the boundary), so callers need not tell the cases apart.
	ErrSCRAMMalformed = errors.New("wire: malformed SCRAM message")
)

// SCRAMVerifier is what the proxy keeps per user instead of the password:
// computed once at start-up. It is as sensitive as PostgreSQL's
// pg_authid.rolpassword: on its own it does not log in, but it allows an
// offline dictionary attack, posing as the server, and, together with one
// eavesdropped exchange, logging in as the user.
type SCRAMVerifier struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey): checks a client proof without being one
	ServerKey  []byte // signs server-final, proving we know the password too
}

// NewSCRAMVerifier derives a verifier with a fresh 16-byte salt and 4096
// iterations, PostgreSQL's defaults. The password goes through SASLprep as
// PostgreSQL applies it (see saslPrep), so a client that types the same
// characters as the configuration computes the same keys. A nil rand means
// crypto/rand.
func NewSCRAMVerifier(password string, rand io.Reader) (SCRAMVerifier, error) {
	if password == "" {
		// PostgreSQL refuses empty passwords too; one here is a config mistake.
		return SCRAMVerifier{}, errors.New("wire: SCRAM password is empty")
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	salt := make([]byte, scramSaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return SCRAMVerifier{}, fmt.Errorf("wire: SCRAM salt: %w", err)
	}
	return deriveSCRAMVerifier(password, salt, scramIterations)
}

func deriveSCRAMVerifier(password string, salt []byte, iterations int) (SCRAMVerifier, error) {
	salted, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, scramKeyLen)
	if err != nil {
		return SCRAMVerifier{}, fmt.Errorf("wire: SCRAM key derivation: %w", err)
	}
	storedKey := sha256.Sum256(scramHMAC(salted, []byte("Client Key")))
	return SCRAMVerifier{
		Salt:       bytes.Clone(salt),
		Iterations: iterations,
		StoredKey:  storedKey[:],
		ServerKey:  scramHMAC(salted, []byte("Server Key")),
	}, nil
}

// Validate catches a verifier built by hand (say, from configuration) that
// no client could ever match, before the first client finds out.
func (v SCRAMVerifier) Validate() error {
	switch {
	case len(v.Salt) == 0:
		return errors.New("wire: SCRAM verifier has no salt")
	case v.Iterations <= 0:
		return fmt.Errorf("wire: SCRAM verifier has %d iterations", v.Iterations)
	case len(v.StoredKey) != scramKeyLen || len(v.ServerKey) != scramKeyLen:
		return fmt.Errorf("wire: SCRAM verifier keys must be %d bytes, have %d and %d",
			scramKeyLen, len(v.StoredKey), len(v.ServerKey))
	}
	return nil
}

type scramState uint8

const (
	scramWantClientFirst scramState = iota
	scramWantClientFinal
	scramDone // succeeded or failed; an exchange is never resumed
)

// scramServer is one exchange: clientFirst, then clientFinal, once each. It
// never sees the user name; the caller picks the verifier from the startup
// user, as PostgreSQL does, because libpq sends an empty SCRAM user name.
type scramServer struct {
	v     SCRAMVerifier
	rand  io.Reader
	state scramState

	// What the proof is computed over, copied because a received message is
	// only valid until the next Receive.
	gs2Header       []byte // "n,," or "y,,", echoed base64-encoded in c=
	clientFirstBare []byte
	serverFirst     []byte
	nonce           []byte // the client's nonce followed by ours
}

// newSCRAMServer starts an exchange against v; rand supplies the server
// nonce and nil means crypto/rand.
func newSCRAMServer(v SCRAMVerifier, rand io.Reader) *scramServer {
	if rand == nil {
		rand = cryptorand.Reader
	}
	return &scramServer{v: v, rand: rand}
}

// clientFirst takes the data of SASLInitialResponse and returns the data for
// AuthenticationSASLContinue. An error that wraps neither ErrSCRAMMalformed
// nor ErrSCRAMAuthFailed is the server's fault: a verifier that fails
// Validate, or a failing rand.
func (s *scramServer) clientFirst(msg []byte) (serverFirst []byte, err error) {
	if s.state != scramWantClientFirst {
		return nil, fmt.Errorf("%w: client-first-message out of order", ErrSCRAMMalformed)
	}
	s.state = scramDone // unless everything below succeeds
	if err := s.v.Validate(); err != nil {
		return nil, err
	}
	gs2Header, bare, clientNonce, err := parseSCRAMClientFirst(msg)
	if err != nil {
		return nil, err
	}
	serverNonce, err := s.serverNonce()
	if err != nil {
		return nil, err
	}
	s.gs2Header = bytes.Clone(gs2Header)
	s.clientFirstBare = bytes.Clone(bare)
	s.nonce = slices.Concat(clientNonce, serverNonce)
	s.serverFirst = fmt.Appendf(nil, "r=%s,s=%s,i=%d",
		s.nonce, base64.StdEncoding.EncodeToString(s.v.Salt), s.v.Iterations)
	s.state = scramWantClientFinal
	return bytes.Clone(s.serverFirst), nil
}

// clientFinal takes the data of SASLResponse and, if the proof holds, returns
// the data for AuthenticationSASLFinal ("v=" and the server signature).
func (s *scramServer) clientFinal(msg []byte) (serverFinal []byte, err error) {
	if s.state != scramWantClientFinal {
		return nil, fmt.Errorf("%w: client-final-message out of order", ErrSCRAMMalformed)
	}
	s.state = scramDone
	channelBinding, nonce, proof, withoutProof, err := parseSCRAMClientFinal(msg)
	if err != nil {
		return nil, err
	}
	// The gs2 header is not part of client-first-message-bare; only its
	// echo in c=, which the proof covers, ties it to the proof.
	if !bytes.Equal(channelBinding, base64.StdEncoding.AppendEncode(nil, s.gs2Header)) {
		return nil, fmt.Errorf("%w: channel binding c= does not match the gs2 header %q of client-first-message",
			ErrSCRAMMalformed, s.gs2Header)
	}
	if !bytes.Equal(nonce, s.nonce) {
		return nil, fmt.Errorf("%w: nonce in client-final-message does not match", ErrSCRAMMalformed)
	}

	authMessage := slices.Concat(s.clientFirstBare, []byte(","), s.serverFirst, []byte(","), withoutProof)
	clientKey := make([]byte, scramKeyLen)
	subtle.XORBytes(clientKey, proof, scramHMAC(s.v.StoredKey, authMessage))
	storedKey := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(storedKey[:], s.v.StoredKey) != 1 {
		return nil, ErrSCRAMAuthFailed
	}
	signature := scramHMAC(s.v.ServerKey, authMessage)
	return base64.StdEncoding.AppendEncode([]byte("v="), signature), nil
}

// serverNonce draws printable characters by masking random bytes to 7 bits
// and rejecting what is not printable, which keeps every character equally
// likely (unlike a modulo) and maps printable input bytes to themselves.
func (s *scramServer) serverNonce() ([]byte, error) {
	nonce := make([]byte, 0, scramServerNonceLen)
	buf := make([]byte, scramServerNonceLen)
	// About 73% of bytes survive; a source that keeps failing is broken,
	// and looping on it forever would hang the connection.
	for read := 0; len(nonce) < scramServerNonceLen; {
		if read >= 16*scramServerNonceLen {
			return nil, errors.New("wire: SCRAM nonce: random source yields too few usable bytes")
		}
		chunk := buf[:scramServerNonceLen-len(nonce)]
		if _, err := io.ReadFull(s.rand, chunk); err != nil {
			return nil, fmt.Errorf("wire: SCRAM nonce: %w", err)
		}
		read += len(chunk)
		for _, b := range chunk {
			if c := b & 0x7f; isSCRAMPrintable(c) {
				nonce = append(nonce, c)
			}
		}
	}
	return nonce, nil
}

// parseSCRAMClientFirst splits
//
//	gs2-header client-first-message-bare
//	= ("n" / "y") "," "," "n=" user "," "r=" nonce *("," ALPHA "=" value)
//
// refusing what PostgreSQL refuses: channel binding (we never offer -PLUS),
// an authorization identity and mandatory extensions.
func parseSCRAMClientFirst(msg []byte) (gs2Header, bare, nonce []byte, err error) {
	if len(msg) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: empty client-first-message", ErrSCRAMMalformed)
	}
	switch msg[0] {
	case 'n', 'y':
		// "y" says the client could bind but believes we cannot, which is
		// true: we never advertise SCRAM-SHA-256-PLUS.
	case 'p':
		return nil, nil, nil, fmt.Errorf("%w: client requires channel binding, which was not offered", ErrSCRAMMalformed)
	default:
		return nil, nil, nil, fmt.Errorf("%w: unexpected channel-binding flag %q", ErrSCRAMMalformed, msg[:1])
	}
	if len(msg) < 3 || msg[1] != ',' {
		return nil, nil, nil, fmt.Errorf("%w: gs2 header must be \"n,,\" or \"y,,\"", ErrSCRAMMalformed)
	}
	if msg[2] != ',' {
		if msg[2] == 'a' {
			return nil, nil, nil, fmt.Errorf("%w: authorization identity (a=) is not supported", ErrSCRAMMalformed)
		}
		return nil, nil, nil, fmt.Errorf("%w: gs2 header must be \"n,,\" or \"y,,\"", ErrSCRAMMalformed)
	}
	gs2Header, bare = msg[:3], msg[3:]

	fields := bytes.Split(bare, []byte(","))
	key, _, ok := scramAttr(fields[0])
	switch {
	case ok && key == 'm':
		return nil, nil, nil, fmt.Errorf("%w: mandatory extension (m=) is not supported", ErrSCRAMMalformed)
	case !ok || key != 'n':
		// The user name itself is ignored: the startup message names the user.
		return nil, nil, nil, fmt.Errorf("%w: client-first-message must start with n=", ErrSCRAMMalformed)
	}
	if len(fields) < 2 {
		return nil, nil, nil, fmt.Errorf("%w: client-first-message has no nonce (r=)", ErrSCRAMMalformed)
	}
	if key, nonce, ok = scramAttr(fields[1]); !ok || key != 'r' {
		return nil, nil, nil, fmt.Errorf("%w: client-first-message has no nonce (r=) after n=", ErrSCRAMMalformed)
	}
	if len(nonce) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: client nonce is empty", ErrSCRAMMalformed)
	}
	for _, c := range nonce {
		if !isSCRAMPrintable(c) {
			return nil, nil, nil, fmt.Errorf("%w: client nonce has non-printable byte %#02x", ErrSCRAMMalformed, c)
		}
	}
	// Optional extensions are allowed and ignored, as by PostgreSQL.
	for _, f := range fields[2:] {
		if _, _, ok := scramAttr(f); !ok {
			return nil, nil, nil, fmt.Errorf("%w: malformed attribute in client-first-message", ErrSCRAMMalformed)
		}
	}
	return gs2Header, bare, nonce, nil
}

// parseSCRAMClientFinal splits
//
//	"c=" base64 "," "r=" nonce *("," ALPHA "=" value) "," "p=" base64
//
// and returns the message up to the proof, over which the proof is computed.
func parseSCRAMClientFinal(msg []byte) (channelBinding, nonce, proof, withoutProof []byte, err error) {
	if len(msg) == 0 {
		return nil, nil, nil, nil, fmt.Errorf("%w: empty client-final-message", ErrSCRAMMalformed)
	}
	fields := bytes.Split(msg, []byte(","))
	if len(fields) < 3 {
		return nil, nil, nil, nil, fmt.Errorf("%w: client-final-message needs c=, r= and p=", ErrSCRAMMalformed)
	}
	key, channelBinding, ok := scramAttr(fields[0])
	if !ok || key != 'c' {
		return nil, nil, nil, nil, fmt.Errorf("%w: client-final-message must start with c=", ErrSCRAMMalformed)
	}
	if key, nonce, ok = scramAttr(fields[1]); !ok || key != 'r' {
		return nil, nil, nil, nil, fmt.Errorf("%w: client-final-message has no nonce (r=) after c=", ErrSCRAMMalformed)
	}
	last := len(fields) - 1
	for _, f := range fields[2:last] {
		switch key, _, ok := scramAttr(f); {
		case !ok:
			return nil, nil, nil, nil, fmt.Errorf("%w: malformed attribute in client-final-message", ErrSCRAMMalformed)
		case key == 'p':
			// The first p= ends the message for PostgreSQL too.
			return nil, nil, nil, nil, fmt.Errorf("%w: attributes after the proof (p=) in client-final-message", ErrSCRAMMalformed)
		}
	}
	key, encoded, ok := scramAttr(fields[last])
	if !ok || key != 'p' {
		return nil, nil, nil, nil, fmt.Errorf("%w: client-final-message must end with the proof (p=)", ErrSCRAMMalformed)
	}
	proof, err = base64.StdEncoding.Strict().AppendDecode(nil, encoded)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: proof is not base64: %w", ErrSCRAMMalformed, err)
	}
	// The decoder skips line breaks; no client sends them, and refusing
	// them leaves each proof a single spelling.
	if !bytes.Equal(base64.StdEncoding.AppendEncode(nil, proof), encoded) {
		return nil, nil, nil, nil, fmt.Errorf("%w: proof is not canonical base64", ErrSCRAMMalformed)
	}
	if len(proof) != scramKeyLen {
		return nil, nil, nil, nil, fmt.Errorf("%w: proof is %d bytes, want %d", ErrSCRAMMalformed, len(proof), scramKeyLen)
	}
	withoutProof = msg[:len(msg)-len(fields[last])-1]
	return channelBinding, nonce, proof, withoutProof, nil
}

// scramAttr splits one "a=value" field; RFC 5802 names attributes with a
// single ASCII letter.
func scramAttr(field []byte) (key byte, value []byte, ok bool) {
	if len(field) < 2 || field[1] != '=' {
		return 0, nil, false
	}
	if c := field[0]; ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
		return c, field[2:], true
	}
	return 0, nil, false
}

// isSCRAMPrintable is RFC 5802's "printable": visible ASCII except the comma
// that separates attributes.
func isSCRAMPrintable(c byte) bool {
	return 0x21 <= c && c <= 0x7e && c != ','
}

func scramHMAC(key, msg []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

// saslPrep is PostgreSQL's pg_saslprep (src/common/saslprep.c, as of
// PostgreSQL 17) together with the fallback its callers apply: when SASLprep
// fails, the raw password is used. libpq prepares the password with the same
// code, so copying its quirks, rather than following RFC 4013 to the letter,
// is what makes a non-ASCII password typed into psql match the configured
// one:
//
//   - ASCII is used as is, even with control characters RFC 4013 prohibits.
//   - Invalid UTF-8, a password that maps to nothing, and any prohibited,
//     unassigned-in-Unicode-3.2 or bidi-violating character all mean the
//     raw password.
//   - The prohibition and bidi checks look at the mapped string before NFKC,
//     not at the normalized output as RFC 3454 says.
//
// NFKC comes from golang.org/x/text, a newer Unicode than 3.2 as in
// PostgreSQL, which uses its own current tables. Clients that prepare
// passwords differently disagree with PostgreSQL as much as with us: pgx uses
// PRECIS OpaqueString, which keeps ligatures and full-width letters that
// NFKC folds, and falls back to the raw password where SASLprep deletes a
// soft hyphen or maps a zero-width space.
func saslPrep(password string) string {
	ascii := true
	for i := 0; i < len(password); i++ {
		if password[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii || !utf8.ValidString(password) {
		return password
	}

	mapped := make([]rune, 0, len(password))
	for _, r := range password {
		switch {
		case unicode.Is(saslNonASCIISpace, r):
			mapped = append(mapped, ' ')
		case unicode.Is(saslMappedToNothing, r):
		default:
			mapped = append(mapped, r)
		}
	}
	if len(mapped) == 0 {
		return password
	}
	for _, r := range mapped {
		if unicode.Is(saslProhibited, r) || unicode.Is(saslUnassigned, r) {
			return password
		}
	}
	isRandAL := func(r rune) bool { return unicode.Is(saslRandAL, r) }
	if slices.ContainsFunc(mapped, isRandAL) {
		// RFC 3454 section 6: right-to-left text must not mix in
		// left-to-right characters and must start and end right-to-left.
		if slices.ContainsFunc(mapped, func(r rune) bool { return unicode.Is(saslL, r) }) ||
			!isRandAL(mapped[0]) || !isRandAL(mapped[len(mapped)-1]) {
			return password
		}
	}
	return norm.NFKC.String(string(mapped))
}

// The RFC 3454 tables below were generated from Python's stringprep module,
// which holds them as of Unicode 3.2, and checked against the ones in
// PostgreSQL's saslprep.c. They are frozen: SASLprep is defined on Unicode
// 3.2, so unicode.Version must not leak in.

// RFC 3454 C.1.2, mapped to U+0020.
var saslNonASCIISpace = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00a0, 0x00a0, 1}, {0x1680, 0x1680, 1}, {0x2000, 0x200b, 1}, {0x202f, 0x202f, 1},
		{0x205f, 0x205f, 1}, {0x3000, 0x3000, 1},
	},
	LatinOffset: 1,
}

// RFC 3454 B.1, dropped.
var saslMappedToNothing = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00ad, 0x00ad, 1}, {0x034f, 0x034f, 1}, {0x1806, 0x1806, 1}, {0x180b, 0x180d, 1},
		{0x200b, 0x200d, 1}, {0x2060, 0x2060, 1}, {0xfe00, 0xfe0f, 1}, {0xfeff, 0xfeff, 1},
	},
	LatinOffset: 1,
}

// RFC 3454 C.1.2, C.2.1, C.2.2 and C.3 to C.9: what SASLprep output must not contain.
var saslProhibited = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0000, 0x001f, 1}, {0x007f, 0x00a0, 1}, {0x0340, 0x0341, 1}, {0x06dd, 0x06dd, 1},
		{0x070f, 0x070f, 1}, {0x1680, 0x1680, 1}, {0x180e, 0x180e, 1}, {0x2000, 0x200f, 1},
		{0x2028, 0x202f, 1}, {0x205f, 0x2063, 1}, {0x206a, 0x206f, 1}, {0x2ff0, 0x2ffb, 1},
		{0x3000, 0x3000, 1}, {0xd800, 0xf8ff, 1}, {0xfdd0, 0xfdef, 1}, {0xfeff, 0xfeff, 1},
		{0xfff9, 0xffff, 1},
	},
	R32: []unicode.Range32{
		{0x1d173, 0x1d17a, 1}, {0x1fffe, 0x1ffff, 1}, {0x2fffe, 0x2ffff, 1},
		{0x3fffe, 0x3ffff, 1}, {0x4fffe, 0x4ffff, 1}, {0x5fffe, 0x5ffff, 1},
		{0x6fffe, 0x6ffff, 1}, {0x7fffe, 0x7ffff, 1}, {0x8fffe, 0x8ffff, 1},
		{0x9fffe, 0x9ffff, 1}, {0xafffe, 0xaffff, 1}, {0xbfffe, 0xbffff, 1},
		{0xcfffe, 0xcffff, 1}, {0xdfffe, 0xdffff, 1}, {0xe0001, 0xe0001, 1},
		{0xe0020, 0xe007f, 1}, {0xefffe, 0x10ffff, 1},
	},
	LatinOffset: 2,
}

// RFC 3454 A.1: unassigned in Unicode 3.2, so prohibited even where Go knows the code point.
var saslUnassigned = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0221, 0x0221, 1}, {0x0234, 0x024f, 1}, {0x02ae, 0x02af, 1}, {0x02ef, 0x02ff, 1},
		{0x0350, 0x035f, 1}, {0x0370, 0x0373, 1}, {0x0376, 0x0379, 1}, {0x037b, 0x037d, 1},
		{0x037f, 0x0383, 1}, {0x038b, 0x038b, 1}, {0x038d, 0x038d, 1}, {0x03a2, 0x03a2, 1},
		{0x03cf, 0x03cf, 1}, {0x03f7, 0x03ff, 1}, {0x0487, 0x0487, 1}, {0x04cf, 0x04cf, 1},
		{0x04f6, 0x04f7, 1}, {0x04fa, 0x04ff, 1}, {0x0510, 0x0530, 1}, {0x0557, 0x0558, 1},
		{0x0560, 0x0560, 1}, {0x0588, 0x0588, 1}, {0x058b, 0x0590, 1}, {0x05a2, 0x05a2, 1},
		{0x05ba, 0x05ba, 1}, {0x05c5, 0x05cf, 1}, {0x05eb, 0x05ef, 1}, {0x05f5, 0x060b, 1},
		{0x060d, 0x061a, 1}, {0x061c, 0x061e, 1}, {0x0620, 0x0620, 1}, {0x063b, 0x063f, 1},
		{0x0656, 0x065f, 1}, {0x06ee, 0x06ef, 1}, {0x06ff, 0x06ff, 1}, {0x070e, 0x070e, 1},
		{0x072d, 0x072f, 1}, {0x074b, 0x077f, 1}, {0x07b2, 0x0900, 1}, {0x0904, 0x0904, 1},
		{0x093a, 0x093b, 1}, {0x094e, 0x094f, 1}, {0x0955, 0x0957, 1}, {0x0971, 0x0980, 1},
		{0x0984, 0x0984, 1}, {0x098d, 0x098e, 1}, {0x0991, 0x0992, 1}, {0x09a9, 0x09a9, 1},
		{0x09b1, 0x09b1, 1}, {0x09b3, 0x09b5, 1}, {0x09ba, 0x09bb, 1}, {0x09bd, 0x09bd, 1},
		{0x09c5, 0x09c6, 1}, {0x09c9, 0x09ca, 1}, {0x09ce, 0x09d6, 1}, {0x09d8, 0x09db, 1},
		{0x09de, 0x09de, 1}, {0x09e4, 0x09e5, 1}, {0x09fb, 0x0a01, 1}, {0x0a03, 0x0a04, 1},
		{0x0a0b, 0x0a0e, 1}, {0x0a11, 0x0a12, 1}, {0x0a29, 0x0a29, 1}, {0x0a31, 0x0a31, 1},
		{0x0a34, 0x0a34, 1}, {0x0a37, 0x0a37, 1}, {0x0a3a, 0x0a3b, 1}, {0x0a3d, 0x0a3d, 1},
		{0x0a43, 0x0a46, 1}, {0x0a49, 0x0a4a, 1}, {0x0a4e, 0x0a58, 1}, {0x0a5d, 0x0a5d, 1},
		{0x0a5f, 0x0a65, 1}, {0x0a75, 0x0a80, 1}, {0x0a84, 0x0a84, 1}, {0x0a8c, 0x0a8c, 1},
		{0x0a8e, 0x0a8e, 1}, {0x0a92, 0x0a92, 1}, {0x0aa9, 0x0aa9, 1}, {0x0ab1, 0x0ab1, 1},
		{0x0ab4, 0x0ab4, 1}, {0x0aba, 0x0abb, 1}, {0x0ac6, 0x0ac6, 1}, {0x0aca, 0x0aca, 1},
		{0x0ace, 0x0acf, 1}, {0x0ad1, 0x0adf, 1}, {0x0ae1, 0x0ae5, 1}, {0x0af0, 0x0b00, 1},
		{0x0b04, 0x0b04, 1}, {0x0b0d, 0x0b0e, 1}, {0x0b11, 0x0b12, 1}, {0x0b29, 0x0b29, 1},
		{0x0b31, 0x0b31, 1}, {0x0b34, 0x0b35, 1}, {0x0b3a, 0x0b3b, 1}, {0x0b44, 0x0b46, 1},
		{0x0b49, 0x0b4a, 1}, {0x0b4e, 0x0b55, 1}, {0x0b58, 0x0b5b, 1}, {0x0b5e, 0x0b5e, 1},
		{0x0b62, 0x0b65, 1}, {0x0b71, 0x0b81, 1}, {0x0b84, 0x0b84, 1}, {0x0b8b, 0x0b8d, 1},
		{0x0b91, 0x0b91, 1}, {0x0b96, 0x0b98, 1}, {0x0b9b, 0x0b9b, 1}, {0x0b9d, 0x0b9d, 1},
		{0x0ba0, 0x0ba2, 1}, {0x0ba5, 0x0ba7, 1}, {0x0bab, 0x0bad, 1}, {0x0bb6, 0x0bb6, 1},
		{0x0bba, 0x0bbd, 1}, {0x0bc3, 0x0bc5, 1}, {0x0bc9, 0x0bc9, 1}, {0x0bce, 0x0bd6, 1},
		{0x0bd8, 0x0be6, 1}, {0x0bf3, 0x0c00, 1}, {0x0c04, 0x0c04, 1}, {0x0c0d, 0x0c0d, 1},
		{0x0c11, 0x0c11, 1}, {0x0c29, 0x0c29, 1}, {0x0c34, 0x0c34, 1}, {0x0c3a, 0x0c3d, 1},
		{0x0c45, 0x0c45, 1}, {0x0c49, 0x0c49, 1}, {0x0c4e, 0x0c54, 1}, {0x0c57, 0x0c5f, 1},
		{0x0c62, 0x0c65, 1}, {0x0c70, 0x0c81, 1}, {0x0c84, 0x0c84, 1}, {0x0c8d, 0x0c8d, 1},
		{0x0c91, 0x0c91, 1}, {0x0ca9, 0x0ca9, 1}, {0x0cb4, 0x0cb4, 1}, {0x0cba, 0x0cbd, 1},
		{0x0cc5, 0x0cc5, 1}, {0x0cc9, 0x0cc9, 1}, {0x0cce, 0x0cd4, 1}, {0x0cd7, 0x0cdd, 1},
		{0x0cdf, 0x0cdf, 1}, {0x0ce2, 0x0ce5, 1}, {0x0cf0, 0x0d01, 1}, {0x0d04, 0x0d04, 1},
		{0x0d0d, 0x0d0d, 1}, {0x0d11, 0x0d11, 1}, {0x0d29, 0x0d29, 1}, {0x0d3a, 0x0d3d, 1},
		{0x0d44, 0x0d45, 1}, {0x0d49, 0x0d49, 1}, {0x0d4e, 0x0d56, 1}, {0x0d58, 0x0d5f, 1},
		{0x0d62, 0x0d65, 1}, {0x0d70, 0x0d81, 1}, {0x0d84, 0x0d84, 1}, {0x0d97, 0x0d99, 1},
		{0x0db2, 0x0db2, 1}, {0x0dbc, 0x0dbc, 1}, {0x0dbe, 0x0dbf, 1}, {0x0dc7, 0x0dc9, 1},
		{0x0dcb, 0x0dce, 1}, {0x0dd5, 0x0dd5, 1}, {0x0dd7, 0x0dd7, 1}, {0x0de0, 0x0df1, 1},
		{0x0df5, 0x0e00, 1}, {0x0e3b, 0x0e3e, 1}, {0x0e5c, 0x0e80, 1}, {0x0e83, 0x0e83, 1},
		{0x0e85, 0x0e86, 1}, {0x0e89, 0x0e89, 1}, {0x0e8b, 0x0e8c, 1}, {0x0e8e, 0x0e93, 1},
		{0x0e98, 0x0e98, 1}, {0x0ea0, 0x0ea0, 1}, {0x0ea4, 0x0ea4, 1}, {0x0ea6, 0x0ea6, 1},
		{0x0ea8, 0x0ea9, 1}, {0x0eac, 0x0eac, 1}, {0x0eba, 0x0eba, 1}, {0x0ebe, 0x0ebf, 1},
		{0x0ec5, 0x0ec5, 1}, {0x0ec7, 0x0ec7, 1}, {0x0ece, 0x0ecf, 1}, {0x0eda, 0x0edb, 1},
		{0x0ede, 0x0eff, 1}, {0x0f48, 0x0f48, 1}, {0x0f6b, 0x0f70, 1}, {0x0f8c, 0x0f8f, 1},
		{0x0f98, 0x0f98, 1}, {0x0fbd, 0x0fbd, 1}, {0x0fcd, 0x0fce, 1}, {0x0fd0, 0x0fff, 1},
		{0x1022, 0x1022, 1}, {0x1028, 0x1028, 1}, {0x102b, 0x102b, 1}, {0x1033, 0x1035, 1},
		{0x103a, 0x103f, 1}, {0x105a, 0x109f, 1}, {0x10c6, 0x10cf, 1}, {0x10f9, 0x10fa, 1},
		{0x10fc, 0x10ff, 1}, {0x115a, 0x115e, 1}, {0x11a3, 0x11a7, 1}, {0x11fa, 0x11ff, 1},
		{0x1207, 0x1207, 1}, {0x1247, 0x1247, 1}, {0x1249, 0x1249, 1}, {0x124e, 0x124f, 1},
		{0x1257, 0x1257, 1}, {0x1259, 0x1259, 1}, {0x125e, 0x125f, 1}, {0x1287, 0x1287, 1},
		{0x1289, 0x1289, 1}, {0x128e, 0x128f, 1}, {0x12af, 0x12af, 1}, {0x12b1, 0x12b1, 1},
		{0x12b6, 0x12b7, 1}, {0x12bf, 0x12bf, 1}, {0x12c1, 0x12c1, 1}, {0x12c6, 0x12c7, 1},
		{0x12cf, 0x12cf, 1}, {0x12d7, 0x12d7, 1}, {0x12ef, 0x12ef, 1}, {0x130f, 0x130f, 1},
		{0x1311, 0x1311, 1}, {0x1316, 0x1317, 1}, {0x131f, 0x131f, 1}, {0x1347, 0x1347, 1},
		{0x135b, 0x1360, 1}, {0x137d, 0x139f, 1}, {0x13f5, 0x1400, 1}, {0x1677, 0x167f, 1},
		{0x169d, 0x169f, 1}, {0x16f1, 0x16ff, 1}, {0x170d, 0x170d, 1}, {0x1715, 0x171f, 1},
		{0x1737, 0x173f, 1}, {0x1754, 0x175f, 1}, {0x176d, 0x176d, 1}, {0x1771, 0x1771, 1},
		{0x1774, 0x177f, 1}, {0x17dd, 0x17df, 1}, {0x17ea, 0x17ff, 1}, {0x180f, 0x180f, 1},
		{0x181a, 0x181f, 1}, {0x1878, 0x187f, 1}, {0x18aa, 0x1dff, 1}, {0x1e9c, 0x1e9f, 1},
		{0x1efa, 0x1eff, 1}, {0x1f16, 0x1f17, 1}, {0x1f1e, 0x1f1f, 1}, {0x1f46, 0x1f47, 1},
		{0x1f4e, 0x1f4f, 1}, {0x1f58, 0x1f58, 1}, {0x1f5a, 0x1f5a, 1}, {0x1f5c, 0x1f5c, 1},
		{0x1f5e, 0x1f5e, 1}, {0x1f7e, 0x1f7f, 1}, {0x1fb5, 0x1fb5, 1}, {0x1fc5, 0x1fc5, 1},
		{0x1fd4, 0x1fd5, 1}, {0x1fdc, 0x1fdc, 1}, {0x1ff0, 0x1ff1, 1}, {0x1ff5, 0x1ff5, 1},
		{0x1fff, 0x1fff, 1}, {0x2053, 0x2056, 1}, {0x2058, 0x205e, 1}, {0x2064, 0x2069, 1},
		{0x2072, 0x2073, 1}, {0x208f, 0x209f, 1}, {0x20b2, 0x20cf, 1}, {0x20eb, 0x20ff, 1},
		{0x213b, 0x213c, 1}, {0x214c, 0x2152, 1}, {0x2184, 0x218f, 1}, {0x23cf, 0x23ff, 1},
		{0x2427, 0x243f, 1}, {0x244b, 0x245f, 1}, {0x24ff, 0x24ff, 1}, {0x2614, 0x2615, 1},
		{0x2618, 0x2618, 1}, {0x267e, 0x267f, 1}, {0x268a, 0x2700, 1}, {0x2705, 0x2705, 1},
		{0x270a, 0x270b, 1}, {0x2728, 0x2728, 1}, {0x274c, 0x274c, 1}, {0x274e, 0x274e, 1},
		{0x2753, 0x2755, 1}, {0x2757, 0x2757, 1}, {0x275f, 0x2760, 1}, {0x2795, 0x2797, 1},
		{0x27b0, 0x27b0, 1}, {0x27bf, 0x27cf, 1}, {0x27ec, 0x27ef, 1}, {0x2b00, 0x2e7f, 1},
		{0x2e9a, 0x2e9a, 1}, {0x2ef4, 0x2eff, 1}, {0x2fd6, 0x2fef, 1}, {0x2ffc, 0x2fff, 1},
		{0x3040, 0x3040, 1}, {0x3097, 0x3098, 1}, {0x3100, 0x3104, 1}, {0x312d, 0x3130, 1},
		{0x318f, 0x318f, 1}, {0x31b8, 0x31ef, 1}, {0x321d, 0x321f, 1}, {0x3244, 0x3250, 1},
		{0x327c, 0x327e, 1}, {0x32cc, 0x32cf, 1}, {0x32ff, 0x32ff, 1}, {0x3377, 0x337a, 1},
		{0x33de, 0x33df, 1}, {0x33ff, 0x33ff, 1}, {0x4db6, 0x4dff, 1}, {0x9fa6, 0x9fff, 1},
		{0xa48d, 0xa48f, 1}, {0xa4c7, 0xabff, 1}, {0xd7a4, 0xd7ff, 1}, {0xfa2e, 0xfa2f, 1},
		{0xfa6b, 0xfaff, 1}, {0xfb07, 0xfb12, 1}, {0xfb18, 0xfb1c, 1}, {0xfb37, 0xfb37, 1},
		{0xfb3d, 0xfb3d, 1}, {0xfb3f, 0xfb3f, 1}, {0xfb42, 0xfb42, 1}, {0xfb45, 0xfb45, 1},
		{0xfbb2, 0xfbd2, 1}, {0xfd40, 0xfd4f, 1}, {0xfd90, 0xfd91, 1}, {0xfdc8, 0xfdcf, 1},
		{0xfdfd, 0xfdff, 1}, {0xfe10, 0xfe1f, 1}, {0xfe24, 0xfe2f, 1}, {0xfe47, 0xfe48, 1},
		{0xfe53, 0xfe53, 1}, {0xfe67, 0xfe67, 1}, {0xfe6c, 0xfe6f, 1}, {0xfe75, 0xfe75, 1},
		{0xfefd, 0xfefe, 1}, {0xff00, 0xff00, 1}, {0xffbf, 0xffc1, 1}, {0xffc8, 0xffc9, 1},
		{0xffd0, 0xffd1, 1}, {0xffd8, 0xffd9, 1}, {0xffdd, 0xffdf, 1}, {0xffe7, 0xffe7, 1},
		{0xffef, 0xfff8, 1},
	},
	R32: []unicode.Range32{
		{0x10000, 0x102ff, 1}, {0x1031f, 0x1031f, 1}, {0x10324, 0x1032f, 1},
		{0x1034b, 0x103ff, 1}, {0x10426, 0x10427, 1}, {0x1044e, 0x1cfff, 1},
		{0x1d0f6, 0x1d0ff, 1}, {0x1d127, 0x1d129, 1}, {0x1d1de, 0x1d3ff, 1},
		{0x1d455, 0x1d455, 1}, {0x1d49d, 0x1d49d, 1}, {0x1d4a0, 0x1d4a1, 1},
		{0x1d4a3, 0x1d4a4, 1}, {0x1d4a7, 0x1d4a8, 1}, {0x1d4ad, 0x1d4ad, 1},
		{0x1d4ba, 0x1d4ba, 1}, {0x1d4bc, 0x1d4bc, 1}, {0x1d4c1, 0x1d4c1, 1},
		{0x1d4c4, 0x1d4c4, 1}, {0x1d506, 0x1d506, 1}, {0x1d50b, 0x1d50c, 1},
		{0x1d515, 0x1d515, 1}, {0x1d51d, 0x1d51d, 1}, {0x1d53a, 0x1d53a, 1},
		{0x1d53f, 0x1d53f, 1}, {0x1d545, 0x1d545, 1}, {0x1d547, 0x1d549, 1},
		{0x1d551, 0x1d551, 1}, {0x1d6a4, 0x1d6a7, 1}, {0x1d7ca, 0x1d7cd, 1},
		{0x1d800, 0x1fffd, 1}, {0x2a6d7, 0x2f7ff, 1}, {0x2fa1e, 0x2fffd, 1},
		{0x30000, 0x3fffd, 1}, {0x40000, 0x4fffd, 1}, {0x50000, 0x5fffd, 1},
		{0x60000, 0x6fffd, 1}, {0x70000, 0x7fffd, 1}, {0x80000, 0x8fffd, 1},
		{0x90000, 0x9fffd, 1}, {0xa0000, 0xafffd, 1}, {0xb0000, 0xbfffd, 1},
		{0xc0000, 0xcfffd, 1}, {0xd0000, 0xdfffd, 1}, {0xe0000, 0xe0000, 1},
		{0xe0002, 0xe001f, 1}, {0xe0080, 0xefffd, 1},
	},
}

// RFC 3454 D.1: bidirectional category R or AL.
var saslRandAL = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x05be, 0x05be, 1}, {0x05c0, 0x05c0, 1}, {0x05c3, 0x05c3, 1}, {0x05d0, 0x05ea, 1},
		{0x05f0, 0x05f4, 1}, {0x061b, 0x061b, 1}, {0x061f, 0x061f, 1}, {0x0621, 0x063a, 1},
		{0x0640, 0x064a, 1}, {0x066d, 0x066f, 1}, {0x0671, 0x06d5, 1}, {0x06dd, 0x06dd, 1},
		{0x06e5, 0x06e6, 1}, {0x06fa, 0x06fe, 1}, {0x0700, 0x070d, 1}, {0x0710, 0x0710, 1},
		{0x0712, 0x072c, 1}, {0x0780, 0x07a5, 1}, {0x07b1, 0x07b1, 1}, {0x200f, 0x200f, 1},
		{0xfb1d, 0xfb1d, 1}, {0xfb1f, 0xfb28, 1}, {0xfb2a, 0xfb36, 1}, {0xfb38, 0xfb3c, 1},
		{0xfb3e, 0xfb3e, 1}, {0xfb40, 0xfb41, 1}, {0xfb43, 0xfb44, 1}, {0xfb46, 0xfbb1, 1},
		{0xfbd3, 0xfd3d, 1}, {0xfd50, 0xfd8f, 1}, {0xfd92, 0xfdc7, 1}, {0xfdf0, 0xfdfc, 1},
		{0xfe70, 0xfe74, 1}, {0xfe76, 0xfefc, 1},
	},
}

// RFC 3454 D.2: bidirectional category L.
var saslL = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0041, 0x005a, 1}, {0x0061, 0x007a, 1}, {0x00aa, 0x00aa, 1}, {0x00b5, 0x00b5, 1},
		{0x00ba, 0x00ba, 1}, {0x00c0, 0x00d6, 1}, {0x00d8, 0x00f6, 1}, {0x00f8, 0x0220, 1},
		{0x0222, 0x0233, 1}, {0x0250, 0x02ad, 1}, {0x02b0, 0x02b8, 1}, {0x02bb, 0x02c1, 1},
		{0x02d0, 0x02d1, 1}, {0x02e0, 0x02e4, 1}, {0x02ee, 0x02ee, 1}, {0x037a, 0x037a, 1},
		{0x0386, 0x0386, 1}, {0x0388, 0x038a, 1}, {0x038c, 0x038c, 1}, {0x038e, 0x03a1, 1},
		{0x03a3, 0x03ce, 1}, {0x03d0, 0x03f5, 1}, {0x0400, 0x0482, 1}, {0x048a, 0x04ce, 1},
		{0x04d0, 0x04f5, 1}, {0x04f8, 0x04f9, 1}, {0x0500, 0x050f, 1}, {0x0531, 0x0556, 1},
		{0x0559, 0x055f, 1}, {0x0561, 0x0587, 1}, {0x0589, 0x0589, 1}, {0x0903, 0x0903, 1},
		{0x0905, 0x0939, 1}, {0x093d, 0x0940, 1}, {0x0949, 0x094c, 1}, {0x0950, 0x0950, 1},
		{0x0958, 0x0961, 1}, {0x0964, 0x0970, 1}, {0x0982, 0x0983, 1}, {0x0985, 0x098c, 1},
		{0x098f, 0x0990, 1}, {0x0993, 0x09a8, 1}, {0x09aa, 0x09b0, 1}, {0x09b2, 0x09b2, 1},
		{0x09b6, 0x09b9, 1}, {0x09be, 0x09c0, 1}, {0x09c7, 0x09c8, 1}, {0x09cb, 0x09cc, 1},
		{0x09d7, 0x09d7, 1}, {0x09dc, 0x09dd, 1}, {0x09df, 0x09e1, 1}, {0x09e6, 0x09f1, 1},
		{0x09f4, 0x09fa, 1}, {0x0a05, 0x0a0a, 1}, {0x0a0f, 0x0a10, 1}, {0x0a13, 0x0a28, 1},
		{0x0a2a, 0x0a30, 1}, {0x0a32, 0x0a33, 1}, {0x0a35, 0x0a36, 1}, {0x0a38, 0x0a39, 1},
		{0x0a3e, 0x0a40, 1}, {0x0a59, 0x0a5c, 1}, {0x0a5e, 0x0a5e, 1}, {0x0a66, 0x0a6f, 1},
		{0x0a72, 0x0a74, 1}, {0x0a83, 0x0a83, 1}, {0x0a85, 0x0a8b, 1}, {0x0a8d, 0x0a8d, 1},
		{0x0a8f, 0x0a91, 1}, {0x0a93, 0x0aa8, 1}, {0x0aaa, 0x0ab0, 1}, {0x0ab2, 0x0ab3, 1},
		{0x0ab5, 0x0ab9, 1}, {0x0abd, 0x0ac0, 1}, {0x0ac9, 0x0ac9, 1}, {0x0acb, 0x0acc, 1},
		{0x0ad0, 0x0ad0, 1}, {0x0ae0, 0x0ae0, 1}, {0x0ae6, 0x0aef, 1}, {0x0b02, 0x0b03, 1},
		{0x0b05, 0x0b0c, 1}, {0x0b0f, 0x0b10, 1}, {0x0b13, 0x0b28, 1}, {0x0b2a, 0x0b30, 1},
		{0x0b32, 0x0b33, 1}, {0x0b36, 0x0b39, 1}, {0x0b3d, 0x0b3e, 1}, {0x0b40, 0x0b40, 1},
		{0x0b47, 0x0b48, 1}, {0x0b4b, 0x0b4c, 1}, {0x0b57, 0x0b57, 1}, {0x0b5c, 0x0b5d, 1},
		{0x0b5f, 0x0b61, 1}, {0x0b66, 0x0b70, 1}, {0x0b83, 0x0b83, 1}, {0x0b85, 0x0b8a, 1},
		{0x0b8e, 0x0b90, 1}, {0x0b92, 0x0b95, 1}, {0x0b99, 0x0b9a, 1}, {0x0b9c, 0x0b9c, 1},
		{0x0b9e, 0x0b9f, 1}, {0x0ba3, 0x0ba4, 1}, {0x0ba8, 0x0baa, 1}, {0x0bae, 0x0bb5, 1},
		{0x0bb7, 0x0bb9, 1}, {0x0bbe, 0x0bbf, 1}, {0x0bc1, 0x0bc2, 1}, {0x0bc6, 0x0bc8, 1},
		{0x0bca, 0x0bcc, 1}, {0x0bd7, 0x0bd7, 1}, {0x0be7, 0x0bf2, 1}, {0x0c01, 0x0c03, 1},
		{0x0c05, 0x0c0c, 1}, {0x0c0e, 0x0c10, 1}, {0x0c12, 0x0c28, 1}, {0x0c2a, 0x0c33, 1},
		{0x0c35, 0x0c39, 1}, {0x0c41, 0x0c44, 1}, {0x0c60, 0x0c61, 1}, {0x0c66, 0x0c6f, 1},
		{0x0c82, 0x0c83, 1}, {0x0c85, 0x0c8c, 1}, {0x0c8e, 0x0c90, 1}, {0x0c92, 0x0ca8, 1},
		{0x0caa, 0x0cb3, 1}, {0x0cb5, 0x0cb9, 1}, {0x0cbe, 0x0cbe, 1}, {0x0cc0, 0x0cc4, 1},
		{0x0cc7, 0x0cc8, 1}, {0x0cca, 0x0ccb, 1}, {0x0cd5, 0x0cd6, 1}, {0x0cde, 0x0cde, 1},
		{0x0ce0, 0x0ce1, 1}, {0x0ce6, 0x0cef, 1}, {0x0d02, 0x0d03, 1}, {0x0d05, 0x0d0c, 1},
		{0x0d0e, 0x0d10, 1}, {0x0d12, 0x0d28, 1}, {0x0d2a, 0x0d39, 1}, {0x0d3e, 0x0d40, 1},
		{0x0d46, 0x0d48, 1}, {0x0d4a, 0x0d4c, 1}, {0x0d57, 0x0d57, 1}, {0x0d60, 0x0d61, 1},
		{0x0d66, 0x0d6f, 1}, {0x0d82, 0x0d83, 1}, {0x0d85, 0x0d96, 1}, {0x0d9a, 0x0db1, 1},
		{0x0db3, 0x0dbb, 1}, {0x0dbd, 0x0dbd, 1}, {0x0dc0, 0x0dc6, 1}, {0x0dcf, 0x0dd1, 1},
		{0x0dd8, 0x0ddf, 1}, {0x0df2, 0x0df4, 1}, {0x0e01, 0x0e30, 1}, {0x0e32, 0x0e33, 1},
		{0x0e40, 0x0e46, 1}, {0x0e4f, 0x0e5b, 1}, {0x0e81, 0x0e82, 1}, {0x0e84, 0x0e84, 1},
		{0x0e87, 0x0e88, 1}, {0x0e8a, 0x0e8a, 1}, {0x0e8d, 0x0e8d, 1}, {0x0e94, 0x0e97, 1},
		{0x0e99, 0x0e9f, 1}, {0x0ea1, 0x0ea3, 1}, {0x0ea5, 0x0ea5, 1}, {0x0ea7, 0x0ea7, 1},
		{0x0eaa, 0x0eab, 1}, {0x0ead, 0x0eb0, 1}, {0x0eb2, 0x0eb3, 1}, {0x0ebd, 0x0ebd, 1},
		{0x0ec0, 0x0ec4, 1}, {0x0ec6, 0x0ec6, 1}, {0x0ed0, 0x0ed9, 1}, {0x0edc, 0x0edd, 1},
		{0x0f00, 0x0f17, 1}, {0x0f1a, 0x0f34, 1}, {0x0f36, 0x0f36, 1}, {0x0f38, 0x0f38, 1},
		{0x0f3e, 0x0f47, 1}, {0x0f49, 0x0f6a, 1}, {0x0f7f, 0x0f7f, 1}, {0x0f85, 0x0f85, 1},
		{0x0f88, 0x0f8b, 1}, {0x0fbe, 0x0fc5, 1}, {0x0fc7, 0x0fcc, 1}, {0x0fcf, 0x0fcf, 1},
		{0x1000, 0x1021, 1}, {0x1023, 0x1027, 1}, {0x1029, 0x102a, 1}, {0x102c, 0x102c, 1},
		{0x1031, 0x1031, 1}, {0x1038, 0x1038, 1}, {0x1040, 0x1057, 1}, {0x10a0, 0x10c5, 1},
		{0x10d0, 0x10f8, 1}, {0x10fb, 0x10fb, 1}, {0x1100, 0x1159, 1}, {0x115f, 0x11a2, 1},
		{0x11a8, 0x11f9, 1}, {0x1200, 0x1206, 1}, {0x1208, 0x1246, 1}, {0x1248, 0x1248, 1},
		{0x124a, 0x124d, 1}, {0x1250, 0x1256, 1}, {0x1258, 0x1258, 1}, {0x125a, 0x125d, 1},
		{0x1260, 0x1286, 1}, {0x1288, 0x1288, 1}, {0x128a, 0x128d, 1}, {0x1290, 0x12ae, 1},
		{0x12b0, 0x12b0, 1}, {0x12b2, 0x12b5, 1}, {0x12b8, 0x12be, 1}, {0x12c0, 0x12c0, 1},
		{0x12c2, 0x12c5, 1}, {0x12c8, 0x12ce, 1}, {0x12d0, 0x12d6, 1}, {0x12d8, 0x12ee, 1},
		{0x12f0, 0x130e, 1}, {0x1310, 0x1310, 1}, {0x1312, 0x1315, 1}, {0x1318, 0x131e, 1},
		{0x1320, 0x1346, 1}, {0x1348, 0x135a, 1}, {0x1361, 0x137c, 1}, {0x13a0, 0x13f4, 1},
		{0x1401, 0x1676, 1}, {0x1681, 0x169a, 1}, {0x16a0, 0x16f0, 1}, {0x1700, 0x170c, 1},
		{0x170e, 0x1711, 1}, {0x1720, 0x1731, 1}, {0x1735, 0x1736, 1}, {0x1740, 0x1751, 1},
		{0x1760, 0x176c, 1}, {0x176e, 0x1770, 1}, {0x1780, 0x17b6, 1}, {0x17be, 0x17c5, 1},
		{0x17c7, 0x17c8, 1}, {0x17d4, 0x17da, 1}, {0x17dc, 0x17dc, 1}, {0x17e0, 0x17e9, 1},
		{0x1810, 0x1819, 1}, {0x1820, 0x1877, 1}, {0x1880, 0x18a8, 1}, {0x1e00, 0x1e9b, 1},
		{0x1ea0, 0x1ef9, 1}, {0x1f00, 0x1f15, 1}, {0x1f18, 0x1f1d, 1}, {0x1f20, 0x1f45, 1},
		{0x1f48, 0x1f4d, 1}, {0x1f50, 0x1f57, 1}, {0x1f59, 0x1f59, 1}, {0x1f5b, 0x1f5b, 1},
		{0x1f5d, 0x1f5d, 1}, {0x1f5f, 0x1f7d, 1}, {0x1f80, 0x1fb4, 1}, {0x1fb6, 0x1fbc, 1},
		{0x1fbe, 0x1fbe, 1}, {0x1fc2, 0x1fc4, 1}, {0x1fc6, 0x1fcc, 1}, {0x1fd0, 0x1fd3, 1},
		{0x1fd6, 0x1fdb, 1}, {0x1fe0, 0x1fec, 1}, {0x1ff2, 0x1ff4, 1}, {0x1ff6, 0x1ffc, 1},
		{0x200e, 0x200e, 1}, {0x2071, 0x2071, 1}, {0x207f, 0x207f, 1}, {0x2102, 0x2102, 1},
		{0x2107, 0x2107, 1}, {0x210a, 0x2113, 1}, {0x2115, 0x2115, 1}, {0x2119, 0x211d, 1},
		{0x2124, 0x2124, 1}, {0x2126, 0x2126, 1}, {0x2128, 0x2128, 1}, {0x212a, 0x212d, 1},
		{0x212f, 0x2131, 1}, {0x2133, 0x2139, 1}, {0x213d, 0x213f, 1}, {0x2145, 0x2149, 1},
		{0x2160, 0x2183, 1}, {0x2336, 0x237a, 1}, {0x2395, 0x2395, 1}, {0x249c, 0x24e9, 1},
		{0x3005, 0x3007, 1}, {0x3021, 0x3029, 1}, {0x3031, 0x3035, 1}, {0x3038, 0x303c, 1},
		{0x3041, 0x3096, 1}, {0x309d, 0x309f, 1}, {0x30a1, 0x30fa, 1}, {0x30fc, 0x30ff, 1},
		{0x3105, 0x312c, 1}, {0x3131, 0x318e, 1}, {0x3190, 0x31b7, 1}, {0x31f0, 0x321c, 1},
		{0x3220, 0x3243, 1}, {0x3260, 0x327b, 1}, {0x327f, 0x32b0, 1}, {0x32c0, 0x32cb, 1},
		{0x32d0, 0x32fe, 1}, {0x3300, 0x3376, 1}, {0x337b, 0x33dd, 1}, {0x33e0, 0x33fe, 1},
		{0x3400, 0x4db5, 1}, {0x4e00, 0x9fa5, 1}, {0xa000, 0xa48c, 1}, {0xac00, 0xd7a3, 1},
		{0xd800, 0xfa2d, 1}, {0xfa30, 0xfa6a, 1}, {0xfb00, 0xfb06, 1}, {0xfb13, 0xfb17, 1},
		{0xff21, 0xff3a, 1}, {0xff41, 0xff5a, 1}, {0xff66, 0xffbe, 1}, {0xffc2, 0xffc7, 1},
		{0xffca, 0xffcf, 1}, {0xffd2, 0xffd7, 1}, {0xffda, 0xffdc, 1},
	},
	R32: []unicode.Range32{
		{0x10300, 0x1031e, 1}, {0x10320, 0x10323, 1}, {0x10330, 0x1034a, 1},
		{0x10400, 0x10425, 1}, {0x10428, 0x1044d, 1}, {0x1d000, 0x1d0f5, 1},
		{0x1d100, 0x1d126, 1}, {0x1d12a, 0x1d166, 1}, {0x1d16a, 0x1d172, 1},
		{0x1d183, 0x1d184, 1}, {0x1d18c, 0x1d1a9, 1}, {0x1d1ae, 0x1d1dd, 1},
		{0x1d400, 0x1d454, 1}, {0x1d456, 0x1d49c, 1}, {0x1d49e, 0x1d49f, 1},
		{0x1d4a2, 0x1d4a2, 1}, {0x1d4a5, 0x1d4a6, 1}, {0x1d4a9, 0x1d4ac, 1},
		{0x1d4ae, 0x1d4b9, 1}, {0x1d4bb, 0x1d4bb, 1}, {0x1d4bd, 0x1d4c0, 1},
		{0x1d4c2, 0x1d4c3, 1}, {0x1d4c5, 0x1d505, 1}, {0x1d507, 0x1d50a, 1},
		{0x1d50d, 0x1d514, 1}, {0x1d516, 0x1d51c, 1}, {0x1d51e, 0x1d539, 1},
		{0x1d53b, 0x1d53e, 1}, {0x1d540, 0x1d544, 1}, {0x1d546, 0x1d546, 1},
		{0x1d54a, 0x1d550, 1}, {0x1d552, 0x1d6a3, 1}, {0x1d6a8, 0x1d7c9, 1},
		{0x20000, 0x2a6d6, 1}, {0x2f800, 0x2fa1d, 1}, {0xf0000, 0xffffd, 1},
		{0x100000, 0x10fffd, 1},
	},
	LatinOffset: 7,
}
