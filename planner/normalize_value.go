package planner

// Decoding a literal's text into its value, so a cached plan can be re-bound
// to a statement's own constants without parsing it: the rules of
// PostgreSQL's scanner for every string form (escapes, Unicode escapes,
// continuation lines), and its reading of integers in other bases.

import (
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shardproxy/shardproxy/pgerror"
)

// characterNotInRepertoire is the SQLSTATE PostgreSQL reports for a string
// that is not valid in the server encoding (E'\xff', E'\0').
const characterNotInRepertoire pgerror.Code = "22021"

// Value returns the literal's value as PostgreSQL reads it:
//
//   - integer: decimal digits without underscores or leading zeros
//     (0x1F is "31", 1_000 is "1000");
//   - numeric: the text without underscores ("1.5e3"), an integer too
//     large for an int4 in decimal (0xFFFFFFFFF is "68719476735");
//   - string: the contents, quotes doubled or escaped, escapes and
//     continuation lines resolved;
//   - bit string: binary digits (X'1F' is "00011111").
//
// A literal PostgreSQL would reject (a bad escape, an invalid bit digit, a
// string that is not valid UTF-8) gives a *pgerror.Error.
func (l Literal) Value() (string, error) {
	t := l.Text
	if t == "" {
		return "", pgerror.New(pgerror.SyntaxError, "empty literal")
	}
	switch l.Kind {
	case LiteralInteger:
		return integerValue(t)
	case LiteralNumeric:
		if len(t) > 2 && t[0] == '0' {
			switch t[1] | 0x20 {
			case 'x', 'o', 'b':
				return integerValue(t) // an integer too large for an int4
			}
		}
		return strings.ReplaceAll(t, "_", ""), nil
	case LiteralString:
		switch t[0] {
		case '\'':
			return quotedValue(t, 0, false)
		case 'e', 'E':
			return quotedValue(t, 1, true)
		case 'u', 'U':
			return unicodeValue(t)
		case '$':
			return dollarValue(t)
		}
	case LiteralBitString:
		switch t[0] {
		case 'b', 'B':
			return bitValue(t, false)
		case 'x', 'X':
			return bitValue(t, true)
		}
	}
	return "", pgerror.New(pgerror.SyntaxError, "not a %s literal: %s", l.Kind, t)
}

func integerValue(t string) (string, error) {
	t = strings.ReplaceAll(t, "_", "")
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] | 0x20 {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
	}
	if base == 10 {
		t = strings.TrimLeft(t, "0")
		if t == "" {
			t = "0"
		}
		for i := 0; i < len(t); i++ {
			if !isDigit(t[i]) {
				return "", pgerror.New(pgerror.SyntaxError, "invalid integer literal %q", t)
			}
		}
		return t, nil
	}
	if u, err := strconv.ParseUint(t[2:], base, 64); err == nil {
		return strconv.FormatUint(u, 10), nil
	}
	// Too large for 64 bits: PostgreSQL makes it a numeric.
	var b big.Int
	if _, ok := b.SetString(t[2:], base); !ok {
		return "", pgerror.New(pgerror.SyntaxError, "invalid integer literal %q", t)
	}
	return b.String(), nil
}

// segments calls f with the contents of each quoted segment of t starting
// with the quote at q (a literal continued over lines has several), and
// returns the offset after the last one. esc: backslashes escape the next
// byte (the contents are passed on undecoded).
func segments(t string, q int, esc bool, f func(seg string) error) (int, error) {
	for {
		if q >= len(t) || t[q] != '\'' {
			return 0, pgerror.New(pgerror.SyntaxError, "malformed string literal %q", t)
		}
		j := q + 1
		for {
			if j >= len(t) {
				return 0, pgerror.New(pgerror.SyntaxError, "unterminated quoted string")
			}
			if esc && t[j] == '\\' {
				j += 2
				continue
			}
			if t[j] == '\'' {
				if j+1 < len(t) && t[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			j++
		}
		if err := f(t[q+1 : j]); err != nil {
			return 0, err
		}
		next, _ := quoteContinue(t, j+1)
		if next < 0 {
			return j + 1, nil
		}
		q = next
	}
}

// quotedValue decodes '...' or E'...' (esc) with the quote at q.
func quotedValue(t string, q int, esc bool) (string, error) {
	var b strings.Builder
	b.Grow(len(t))
	end, err := segments(t, q, esc, func(seg string) error {
		if !esc {
			b.WriteString(strings.ReplaceAll(seg, "''", "'"))
			return nil
		}
		return unescapeE(&b, seg)
	})
	if err != nil {
		return "", err
	}
	if end != len(t) {
		return "", pgerror.New(pgerror.SyntaxError, "malformed string literal %q", t)
	}
	return checkEncoding(b.String())
}

// unescapeE decodes one segment of an E'x' string.
func unescapeE(b *strings.Builder, seg string) error {
	var high rune // pending high surrogate from \uD8xx
	for i := 0; i < len(seg); {
		c := seg[i]
		if c == '\'' { // a doubled quote inside the segment
			b.WriteByte('\'')
			i += 2
			continue
		}
		if c != '\\' || i+1 >= len(seg) {
			if high != 0 {
				return errUnicodeSurrogate()
			}
			b.WriteByte(c)
			i++
			continue
		}
		d := seg[i+1]
		i += 2
		if high != 0 && d != 'u' && d != 'U' {
			return errUnicodeSurrogate()
		}
		switch d {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(d - '0')
			for k := 0; k < 2 && i < len(seg) && isOctDigit(seg[i]); k++ {
				v = v*8 + int(seg[i]-'0')
				i++
			}
			b.WriteByte(byte(v))
		case 'x':
			if i >= len(seg) || !isHexDigit(seg[i]) {
				b.WriteByte('x') // \x without digits is a plain x
				continue
			}
			v := hexVal(seg[i])
			i++
			if i < len(seg) && isHexDigit(seg[i]) {
				v = v*16 + hexVal(seg[i])
				i++
			}
			b.WriteByte(byte(v))
		case 'u', 'U':
			n := 4
			if d == 'U' {
				n = 8
			}
			if len(seg)-i < n || !allHex(seg[i:i+n]) {
				return pgerror.New(pgerror.SyntaxError, "invalid Unicode escape").
					WithHint("Unicode escapes must be \\uXXXX or \\UXXXXXXXX.")
			}
			r := rune(hexNumber(seg[i : i+n]))
			i += n
			var err error
			if high, err = addRune(b, high, r); err != nil {
				return err
			}
		default:
			b.WriteByte(d)
		}
	}
	if high != 0 {
		return errUnicodeSurrogate()
	}
	return nil
}

// addRune writes r, pairing surrogates as PostgreSQL does; it returns the
// high surrogate still waiting for its pair.
func addRune(b *strings.Builder, high, r rune) (rune, error) {
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if high != 0 {
			return 0, errUnicodeSurrogate()
		}
		return r, nil
	case r >= 0xDC00 && r <= 0xDFFF:
		if high == 0 {
			return 0, errUnicodeSurrogate()
		}
		r = 0x10000 + (high-0xD800)<<10 + (r - 0xDC00)
	case high != 0:
		return 0, errUnicodeSurrogate()
	}
	if r == 0 || r > utf8.MaxRune {
		return 0, pgerror.New(pgerror.SyntaxError, "invalid Unicode escape value")
	}
	b.WriteRune(r)
	return 0, nil
}

func errUnicodeSurrogate() error {
	return pgerror.New(pgerror.SyntaxError, "invalid Unicode surrogate pair")
}

// unicodeValue decodes U&'...' [UESCAPE 'c'].
func unicodeValue(t string) (string, error) {
	if len(t) < 3 || t[1] != '&' {
		return "", pgerror.New(pgerror.SyntaxError, "malformed string literal %q", t)
	}
	var raw strings.Builder
	end, err := segments(t, 2, false, func(seg string) error {
		raw.WriteString(strings.ReplaceAll(seg, "''", "'"))
		return nil
	})
	if err != nil {
		return "", err
	}
	escape := byte('\\')
	if end < len(t) {
		e, err := uescapeChar(t, end)
		if err != nil {
			return "", err
		}
		escape = e
	}
	return unescapeUnicode(raw.String(), escape)
}

// uescapeChar reads the escape character of the UESCAPE clause at j.
func uescapeChar(t string, j int) (byte, error) {
	k, _ := skipSpaceAndComments(t, j)
	k += len("uescape")
	k, _ = skipSpaceAndComments(t, k)
	var s string
	var err error
	if k < len(t) && t[k] == '\'' {
		s, err = quotedValue(t[k:], 0, false)
	} else {
		s, err = quotedValue(t[k:], 1, true)
	}
	if err != nil {
		return 0, err
	}
	if len(s) != 1 || isHexDigit(s[0]) || s[0] == '+' || s[0] == '\'' || s[0] == '"' || isSpaceByte(s[0]) {
		return 0, pgerror.New(pgerror.SyntaxError, "invalid Unicode escape character")
	}
	return s[0], nil
}

// unescapeUnicode resolves \XXXX and \+XXXXXX (with esc for \) in s.
func unescapeUnicode(s string, esc byte) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	var high rune
	for i := 0; i < len(s); {
		if s[i] != esc {
			if high != 0 {
				return "", errUnicodeSurrogate()
			}
			b.WriteByte(s[i])
			i++
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == esc:
			if high != 0 {
				return "", errUnicodeSurrogate()
			}
			b.WriteByte(esc)
			i += 2
			continue
		case i+5 <= len(s) && allHex(s[i+1:i+5]):
			r := rune(hexNumber(s[i+1 : i+5]))
			i += 5
			var err error
			if high, err = addRune(&b, high, r); err != nil {
				return "", err
			}
		case i+8 <= len(s) && s[i+1] == '+' && allHex(s[i+2:i+8]):
			r := rune(hexNumber(s[i+2 : i+8]))
			i += 8
			var err error
			if high, err = addRune(&b, high, r); err != nil {
				return "", err
			}
		default:
			return "", pgerror.New(pgerror.SyntaxError, "invalid Unicode escape").
				WithHint("Unicode escapes must be \\XXXX or \\+XXXXXX.")
		}
	}
	if high != 0 {
		return "", errUnicodeSurrogate()
	}
	return checkEncoding(b.String())
}

// dollarValue returns the body of $tag$...$tag$.
func dollarValue(t string) (string, error) {
	k := strings.IndexByte(t[1:], '$')
	if k < 0 {
		return "", pgerror.New(pgerror.SyntaxError, "malformed dollar-quoted string")
	}
	tag := t[:k+2]
	if len(t) < 2*len(tag) || !strings.HasSuffix(t, tag) {
		return "", pgerror.New(pgerror.SyntaxError, "unterminated dollar-quoted string")
	}
	return t[len(tag) : len(t)-len(tag)], nil
}

// bitValue decodes B'...' or X'...' (hex) into binary digits.
func bitValue(t string, hex bool) (string, error) {
	var b strings.Builder
	end, err := segments(t, 1, false, func(seg string) error {
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case !hex && (c == '0' || c == '1'):
				b.WriteByte(c)
			case hex && isHexDigit(c):
				v := hexVal(c)
				for k := 3; k >= 0; k-- {
					b.WriteByte('0' + byte(v>>k&1))
				}
			case hex:
				return pgerror.New(pgerror.InvalidTextRepresentation, "%q is not a valid hexadecimal digit", string(c))
			default:
				return pgerror.New(pgerror.InvalidTextRepresentation, "%q is not a valid binary digit", string(c))
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if end != len(t) {
		return "", pgerror.New(pgerror.SyntaxError, "malformed bit string literal %q", t)
	}
	return b.String(), nil
}

// checkEncoding refuses what a UTF-8 server refuses in a string.
func checkEncoding(s string) (string, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return "", pgerror.New(characterNotInRepertoire, "invalid byte sequence for encoding \"UTF8\"")
	}
	return s, nil
}

func hexVal(c byte) int {
	switch {
	case c <= '9':
		return int(c - '0')
	case c >= 'a':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func hexNumber(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*16 + hexVal(s[i])
	}
	return v
}
