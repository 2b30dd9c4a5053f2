package health

// LSNs are what lag is measured in (DESIGN.md section 4: bytes of WAL, not
// replay timestamps, which mislead on an idle primary) and what a session's
// read-your-writes position is, so they are parsed on every poll and
// compared on the router's hot path: a plain integer, parsed without
// allocating.

import (
	"errors"
	"math"
	"strconv"
)

// LSN is a PostgreSQL write-ahead log position (pg_lsn): a byte offset
// into the WAL, so the difference of two LSNs is a number of bytes.
type LSN uint64

// errBadLSN is returned for anything that is not "X/X" with 1 to 8 hex
// digits on each side, which is what pg_lsn's input function accepts.
var errBadLSN = errors.New("health: malformed LSN")

// ParseLSN parses PostgreSQL's text form of an LSN, "16/B374D848": the
// high and low 32 bits in hexadecimal, either case.
func ParseLSN(s string) (LSN, error) {
	hi, rest, ok := parseHex32(s)
	if !ok || len(rest) == 0 || rest[0] != '/' {
		return 0, errBadLSN
	}
	lo, rest, ok := parseHex32(rest[1:])
	if !ok || len(rest) != 0 {
		return 0, errBadLSN
	}
	return LSN(uint64(hi)<<32 | uint64(lo)), nil
}

// parseHex32 reads 1 to 8 hex digits from the start of s.
func parseHex32(s string) (v uint32, rest string, ok bool) {
	n := 0
	for n < len(s) && n <= 8 {
		d, isHex := hexDigit(s[n])
		if !isHex {
			break
		}
		v = v<<4 | uint32(d)
		n++
	}
	if n == 0 || n > 8 {
		return 0, s, false
	}
	return v, s[n:], true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String formats l as PostgreSQL does ("%X/%X"), so that a token a client
// reads can be pasted into SQL as a pg_lsn.
func (l LSN) String() string {
	var b [17]byte
	out := strconv.AppendUint(b[:0], uint64(l>>32), 16)
	out = append(out, '/')
	out = strconv.AppendUint(out, uint64(uint32(l)), 16)
	for i, c := range out {
		if 'a' <= c && c <= 'f' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out)
}

// lagBytes is how far replay is behind primary, 0 when it is not behind
// (a replica polled after the primary may have replayed past the
// primary's sampled position).
func lagBytes(primary, replay LSN) int64 {
	switch {
	case primary <= replay:
		return 0
	case primary-replay > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(primary - replay)
}
