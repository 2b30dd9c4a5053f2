package twopc

// Global transaction identifiers. A gid is the only thing that ties a
// prepared transaction on a shard back to the node that coordinated it, so
// its format has to be recognisable by a LIKE pattern, parseable, unique
// across restarts without any stored counter, and short enough for
// PostgreSQL.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// GIDPrefix starts every gid this package makes, so recovery can find them
// with `gid LIKE 'shardproxy:%'` and leave other prepared transactions
// (an application's own, another tool's) alone.
const GIDPrefix = "shardproxy:"

// MaxGIDLen is the longest gid PostgreSQL accepts: GIDSIZE is 200 bytes
// including the terminating NUL.
const MaxGIDLen = 199

// MaxNodeIDLen bounds a node id so that every gid fits in MaxGIDLen: the
// prefix (11), a colon, 13 base-36 digits of nanoseconds, a dot and 16 hex
// digits leave 157 bytes; 128 keeps a margin for a longer unique part.
const MaxNodeIDLen = 128

// CheckNodeID reports whether id can be embedded in a gid: non-empty, at
// most MaxNodeIDLen bytes, valid UTF-8 without control characters (a gid
// shows up in logs and in pg_prepared_xacts).
func CheckNodeID(id string) error {
	switch {
	case id == "":
		return errors.New("twopc: empty node id")
	case len(id) > MaxNodeIDLen:
		return fmt.Errorf("twopc: node id %q is longer than %d bytes", id, MaxNodeIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("twopc: node id %q is not valid UTF-8", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("twopc: node id %q contains a control character", id)
		}
	}
	return nil
}

// NewGID returns a fresh gid for a transaction coordinated by nodeID:
// "shardproxy:<node>:<unix nanoseconds, base 36>.<64 random bits, hex>".
// The clock makes it unique across restarts and the random part across
// transactions started in the same nanosecond (or after the clock stepped
// back). It panics if nodeID fails CheckNodeID: configuration is validated
// long before the first transaction, so that is a programming error.
func NewGID(nodeID string) string { return newGID(nodeID, rand.Uint32()) }

// newGID is NewGID whose random part starts with 32 bits naming the
// process that coordinates (its incarnation), so recovery can tell a gid
// of another live process running with the same node id (incarnationOf).
func newGID(nodeID string, incarnation uint32) string {
	if err := CheckNodeID(nodeID); err != nil {
		panic(err)
	}
	b := make([]byte, 0, len(GIDPrefix)+len(nodeID)+1+13+1+16)
	b = append(b, GIDPrefix...)
	b = append(b, nodeID...)
	b = append(b, ':')
	b = strconv.AppendInt(b, time.Now().UnixNano(), 36)
	b = append(b, '.')
	r := uint64(incarnation)<<32 | uint64(rand.Uint32())
	const hexDigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(r>>uint(shift))&0xf])
	}
	return string(b)
}

// ParseGID splits a gid made by NewGID into the node that coordinated it and
// when it was made. ok is false for anything else, including prepared
// transactions that merely start with GIDPrefix.
func ParseGID(gid string) (nodeID string, created time.Time, ok bool) {
	rest, found := strings.CutPrefix(gid, GIDPrefix)
	if !found || len(gid) > MaxGIDLen {
		return "", time.Time{}, false
	}
	// The node id may itself contain colons; the unique part never does.
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", time.Time{}, false
	}
	node, unique := rest[:i], rest[i+1:]
	stamp, random, found := strings.Cut(unique, ".")
	if !found || len(random) != 16 || CheckNodeID(node) != nil {
		return "", time.Time{}, false
	}
	for j := 0; j < len(random); j++ {
		if c := random[j]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", time.Time{}, false
		}
	}
	nanos, err := strconv.ParseInt(stamp, 36, 64)
	if err != nil || nanos < 0 || stamp != strconv.FormatInt(nanos, 36) {
		return "", time.Time{}, false
	}
	return node, time.Unix(0, nanos), true
}

// incarnationOf returns the first 32 bits of a gid's random part: the
// incarnation of the process that made it, for gids made by newGID.
func incarnationOf(gid string) (uint32, bool) {
	i := strings.LastIndexByte(gid, '.')
	if i < 0 || len(gid)-i-1 != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(gid[i+1:i+9], 16, 32)
	return uint32(v), err == nil
}

// checkGID accepts what PostgreSQL accepts as a transaction identifier and
// what the decision log can store.
func checkGID(gid string) error {
	switch {
	case gid == "":
		return errors.New("twopc: empty gid")
	case len(gid) > MaxGIDLen:
		return fmt.Errorf("twopc: gid %q is longer than %d bytes", gid, MaxGIDLen)
	case strings.IndexByte(gid, 0) >= 0:
		return fmt.Errorf("twopc: gid %q contains a NUL byte", gid)
	}
	return nil
}

// Statements of the protocol. The gid is quoted the way libpq's
// PQescapeLiteral does it: an E'...' literal when it holds a backslash, so the
// text means the same whatever standard_conforming_strings says.
func prepareSQL(gid string) string  { return "PREPARE TRANSACTION " + quoteLiteral(gid) }
func commitSQL(gid string) string   { return "COMMIT PREPARED " + quoteLiteral(gid) }
func rollbackSQL(gid string) string { return "ROLLBACK PREPARED " + quoteLiteral(gid) }

func quoteLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	if strings.IndexByte(s, '\\') >= 0 {
		b.WriteString("E'")
	} else {
		b.WriteByte('\'')
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('\'')
	return b.String()
}
