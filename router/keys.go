package router

// From key values to keyspace positions: a literal or a bound parameter is
// read as the key column's type (so '42' on a bigint key is the number 42,
// and 'abc' fails with 22P02 as the server would fail) and hashed with
// PostgreSQL's own extended hash function for that type.

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// boundParams are a Bind's parameter values as the client sent them.
type boundParams struct {
	formats []int16 // Bind's format codes: none (all text), one (all), or one each
	values  [][]byte
	oids    []uint32 // the statement's parameter types (0: unspecified)
}

func (p *boundParams) format(i int) int16 {
	switch len(p.formats) {
	case 0:
		return 0
	case 1:
		return p.formats[0]
	}
	if i < len(p.formats) {
		return p.formats[i]
	}
	return 0
}

func (p *boundParams) oid(i int) uint32 {
	if i < len(p.oids) {
		return p.oids[i]
	}
	return 0
}

// errNoKey: the value cannot equal any key (NULL, or a number with a
// fraction compared with an integer key): no row matches, any shard may
// answer.
var errNoKey = errors.New("value matches no key")

// keyIDs returns the keyspace positions of a key value (several for an
// array parameter). Values that match no row are left out.
func keyIDs(v planner.KeyValue, keyType string, lits []planner.Literal, sql string, params *boundParams) ([]keyspace.ID, error) {
	if v.Param > 0 {
		i := v.Param - 1
		if params == nil || i >= len(params.values) {
			return nil, pgerror.New(pgerror.ProtocolViolation, "bind message supplies %d parameters, but the statement needs $%d", paramCount(params), v.Param)
		}
		raw := params.values[i]
		if raw == nil {
			return nil, nil
		}
		if v.ArrayParam {
			return arrayKeyIDs(raw, params.format(i), keyType)
		}
		id, err := paramKeyID(raw, params.format(i), params.oid(i), keyType)
		if errors.Is(err, errNoKey) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []keyspace.ID{id}, nil
	}
	text, quoted := literalText(v, lits)
	id, err := textKeyID(text, keyType, quoted)
	if errors.Is(err, errNoKey) {
		return nil, nil
	}
	if err != nil {
		return nil, withPosition(err, v, lits, sql)
	}
	return []keyspace.ID{id}, nil
}

func paramCount(p *boundParams) int {
	if p == nil {
		return 0
	}
	return len(p.values)
}

// literalText is the value of a literal key as written in the statement
// being executed (which may differ from the one the plan was built from).
func literalText(v planner.KeyValue, lits []planner.Literal) (string, bool) {
	if v.Lit > 0 && v.Lit <= len(lits) {
		if t, err := v.Text(lits); err == nil {
			return t, lits[v.Lit-1].Kind == planner.LiteralString
		}
	}
	return v.Literal, v.Quoted
}

// withPosition points an error about a literal at it, as PostgreSQL does
// (a 1-based character position in the statement).
func withPosition(err error, v planner.KeyValue, lits []planner.Literal, sql string) error {
	pe, ok := err.(*pgerror.Error)
	if !ok || v.Lit == 0 || v.Lit > len(lits) || sql == "" {
		return err
	}
	pos := lits[v.Lit-1].Pos
	if pos > len(sql) {
		return err
	}
	c := *pe
	c.Position = utf8.RuneCountInString(sql[:pos]) + 1
	return &c
}

// paramKeyID reads a bound parameter as the key's type.
func paramKeyID(raw []byte, format int16, oid uint32, keyType string) (keyspace.ID, error) {
	if format == 0 {
		return textKeyID(string(raw), keyType, true)
	}
	switch oid {
	case 20, 21, 23:
		var n int64
		switch len(raw) {
		case 2:
			n = int64(int16(binary.BigEndian.Uint16(raw)))
		case 4:
			n = int64(int32(binary.BigEndian.Uint32(raw)))
		case 8:
			n = int64(binary.BigEndian.Uint64(raw))
		default:
			return 0, pgerror.New(pgerror.ProtocolViolation, "incorrect binary data format in bind parameter")
		}
		return intKeyID(n, keyType)
	case 25, 1043, 1042, 19, 0:
		return textKeyID(string(raw), keyType, true)
	case 2950:
		if len(raw) != 16 {
			return 0, pgerror.New(pgerror.ProtocolViolation, "incorrect binary data format in bind parameter")
		}
		if !isUUIDType(keyType) {
			return 0, pgerror.New(pgerror.FeatureNotSupported, "a uuid parameter compared with a %s sharding key is not supported", keyType)
		}
		return keyspace.UUID([16]byte(raw)), nil
	}
	return 0, pgerror.New(pgerror.FeatureNotSupported, "a binary parameter of type %d for a sharding key is not supported", oid).
		WithHint("send the key as text, int2/int4/int8, uuid or varchar")
}

func intKeyID(n int64, keyType string) (keyspace.ID, error) {
	switch keyType {
	case "int8", "int4", "int2":
		return keyspace.Int(n), nil
	}
	if isTextType(keyType) {
		return keyspace.Text(strconv.FormatInt(n, 10)), nil
	}
	return 0, pgerror.New(pgerror.FeatureNotSupported, "an integer parameter for a %s sharding key is not supported", keyType)
}

func isTextType(t string) bool {
	return t == "text" || t == "varchar" || t == "bpchar" || t == "name"
}

func isUUIDType(t string) bool { return t == "uuid" }

// textKeyID parses a key written as text. quoted is false for an unquoted
// number in the SQL text, which PostgreSQL types as a number: 4.2 equals
// no integer key rather than failing.
func textKeyID(s, keyType string, quoted bool) (keyspace.ID, error) {
	switch keyType {
	case "int8", "int4", "int2":
		n, err := parseIntKey(s, keyType, quoted)
		if err != nil {
			return 0, err
		}
		return keyspace.Int(n), nil
	case "text", "varchar", "name":
		return keyspace.Text(s), nil
	case "bpchar":
		// bpchar ignores trailing spaces; its cast to text drops them.
		return keyspace.Text(strings.TrimRight(s, " ")), nil
	case "uuid":
		u, ok := parseUUID(s)
		if !ok {
			return 0, pgerror.New(pgerror.InvalidTextRepresentation, "invalid input syntax for type uuid: %q", s)
		}
		return keyspace.UUID(u), nil
	}
	return 0, pgerror.New(pgerror.FeatureNotSupported, "sharding keys of type %s are not supported", keyType).
		WithHint("shard by an integer, text, varchar or uuid column")
}

var typeMessageName = map[string]string{"int8": "bigint", "int4": "integer", "int2": "smallint"}

func parseIntKey(s, keyType string, quoted bool) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			if !quoted {
				// A bare number wider than the key is compared as the
				// wider type: it equals no key.
				return 0, errNoKey
			}
			return 0, pgerror.New(pgerror.NumericValueOutOfRange, "value %q is out of range for type %s", s, typeMessageName[keyType])
		}
		if !quoted {
			// An unquoted 4.2 or 1e3 is a numeric constant; it equals an
			// integer key only if it is integral.
			if f, ferr := strconv.ParseFloat(t, 64); ferr == nil && f == float64(int64(f)) && !strings.ContainsAny(t, "eE") {
				return int64(f), nil
			}
			return 0, errNoKey
		}
		return 0, pgerror.New(pgerror.InvalidTextRepresentation, "invalid input syntax for type %s: %q", typeMessageName[keyType], s)
	}
	if (keyType == "int4" && n != int64(int32(n))) || (keyType == "int2" && n != int64(int16(n))) {
		if !quoted {
			return 0, errNoKey
		}
		return 0, pgerror.New(pgerror.NumericValueOutOfRange, "value %q is out of range for type %s", s, typeMessageName[keyType])
	}
	return n, nil
}

// parseUUID accepts uuid_in's forms: 32 hex digits, optionally in braces,
// with a hyphen allowed after any group of four digits.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return u, false
		}
		s = s[1 : len(s)-1]
	}
	var digits []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' {
			if len(digits) == 0 || len(digits)%4 != 0 || i == len(s)-1 || s[i+1] == '-' {
				return u, false
			}
			continue
		}
		digits = append(digits, c)
	}
	if len(digits) != 32 {
		return u, false
	}
	if _, err := hex.Decode(u[:], digits); err != nil {
		return u, false
	}
	return u, true
}

// arrayKeyIDs reads an array parameter (key = ANY($1)).
func arrayKeyIDs(raw []byte, format int16, keyType string) ([]keyspace.ID, error) {
	var out []keyspace.ID
	add := func(id keyspace.ID, err error) error {
		if errors.Is(err, errNoKey) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, id)
		return nil
	}
	if format == 0 {
		elems, err := parseTextArray(string(raw))
		if err != nil {
			return nil, err
		}
		for _, e := range elems {
			if e == nil {
				continue
			}
			if err := add(textKeyID(*e, keyType, true)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	// Binary array: ndim, has-null flag, element type, then per dimension
	// size and lower bound, then length-prefixed elements.
	bad := pgerror.New(pgerror.ProtocolViolation, "incorrect binary data format in array bind parameter")
	if len(raw) < 12 {
		return nil, bad
	}
	ndim := int(binary.BigEndian.Uint32(raw))
	elemOID := binary.BigEndian.Uint32(raw[8:])
	if ndim == 0 {
		return nil, nil
	}
	if ndim != 1 || len(raw) < 20 {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint32(raw[12:]))
	p := raw[20:]
	for range n {
		if len(p) < 4 {
			return nil, bad
		}
		l := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if l < 0 {
			continue
		}
		if int(l) > len(p) {
			return nil, bad
		}
		if err := add(paramKeyID(p[:l], 1, elemOID, keyType)); err != nil {
			return nil, err
		}
		p = p[l:]
	}
	return out, nil
}

// parseTextArray parses a one-dimensional array literal ({1,2,"a b",NULL}).
func parseTextArray(s string) ([]*string, error) {
	bad := func() error {
		return pgerror.New(pgerror.InvalidTextRepresentation, "malformed array literal: %q", s)
	}
	t := strings.TrimSpace(s)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return nil, bad()
	}
	body := t[1 : len(t)-1]
	var out []*string
	if strings.TrimSpace(body) == "" {
		return nil, nil
	}
	i := 0
	for {
		for i < len(body) && body[i] == ' ' {
			i++
		}
		var b strings.Builder
		quoted := false
		if i < len(body) && body[i] == '"' {
			quoted = true
			i++
			for i < len(body) && body[i] != '"' {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				b.WriteByte(body[i])
				i++
			}
			if i >= len(body) {
				return nil, bad()
			}
			i++
		} else {
			for i < len(body) && body[i] != ',' {
				if body[i] == '{' || body[i] == '"' {
					return nil, bad()
				}
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				b.WriteByte(body[i])
				i++
			}
		}
		v := b.String()
		if !quoted {
			v = strings.TrimSpace(v)
		}
		if !quoted && strings.EqualFold(v, "NULL") {
			out = append(out, nil)
		} else {
			out = append(out, &v)
		}
		for i < len(body) && body[i] == ' ' {
			i++
		}
		if i >= len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, bad()
		}
		i++
	}
}

func splitHostPort(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(p), nil
}
