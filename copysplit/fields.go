package copysplit

// Finding the key field in one complete line, the way
// CopyReadAttributesText and CopyReadAttributesCSV split a line into
// fields, stopping at the key: where a field ends depends on every escape
// before it, so the fields before the key are walked with the server's
// exact rules, and the ones after it are the server's business.

import (
	"bytes"
	"strconv"
)

// textKey returns the key field of a text-format line. The key is a slice
// of line unless it holds escapes; then it is decoded into s.key.
func (s *Splitter) textKey(line []byte) (key []byte, null bool, err error) {
	delim := s.o.Delimiter
	p := 0
	for field := 0; ; field++ {
		start := p
		end, found, escaped := p, false, false
		// Fast path: the field ends at the next delimiter unless a
		// backslash comes first.
		d := bytes.IndexByte(line[p:], delim)
		seg := line[p:]
		if d >= 0 {
			seg = line[p : p+d]
		}
		if bytes.IndexByte(seg, '\\') < 0 {
			end = p + len(seg)
			found = d >= 0
			p = end + 1
		} else {
			escaped = true
			end, p, found = textFieldEnd(line, p, delim)
		}
		if field == s.o.KeyField {
			raw := line[start:end]
			// The NULL string is compared with the raw, undecoded field.
			if bytes.Equal(raw, s.null) {
				return nil, true, nil
			}
			if !escaped {
				return raw, false, nil
			}
			s.key = unescapeText(s.key[:0], raw)
			return s.key, false, nil
		}
		if !found {
			return nil, false, s.missingKey()
		}
	}
}

// textFieldEnd walks a field from p as CopyReadAttributesText does: end is
// where its raw text ends, next where the following field starts, found
// whether a delimiter ended it. Octal and hex escapes swallow up to three
// or two digits, which matters when the delimiter is a capital hex digit.
func textFieldEnd(line []byte, p int, delim byte) (end, next int, found bool) {
	for {
		end = p
		if p >= len(line) {
			return end, p, false
		}
		c := line[p]
		p++
		if c == delim {
			return end, p, true
		}
		if c != '\\' {
			continue
		}
		if p >= len(line) {
			// A lone backslash at the end is dropped from the field.
			return end, p, false
		}
		c = line[p]
		p++
		switch {
		case c >= '0' && c <= '7':
			for n := 0; n < 2 && p < len(line) && line[p] >= '0' && line[p] <= '7'; n++ {
				p++
			}
		case c == 'x':
			for n := 0; n < 2 && p < len(line) && isHex(line[p]); n++ {
				p++
			}
		}
	}
}

// unescapeText appends the value of a raw text-format field to dst.
func unescapeText(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		i++
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i >= len(raw) {
			break
		}
		c = raw[i]
		i++
		switch c {
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 0; n < 2 && i < len(raw) && raw[i] >= '0' && raw[i] <= '7'; n++ {
				v = v<<3 + int(raw[i]-'0')
				i++
			}
			c = byte(v) // PostgreSQL keeps the low 8 bits too
		case 'x':
			if i < len(raw) && isHex(raw[i]) {
				v := hexValue(raw[i])
				i++
				if i < len(raw) && isHex(raw[i]) {
					v = v<<4 + hexValue(raw[i])
					i++
				}
				c = v
			}
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'v':
			c = '\v'
		}
		dst = append(dst, c)
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexValue(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// csvKey returns the key field of a CSV line. The key is a slice of line
// unless it was quoted; then it is assembled in s.key.
func (s *Splitter) csvKey(line []byte) (key []byte, null bool, err error) {
	delim, quote, esc := s.o.Delimiter, s.o.Quote, s.o.Escape
	p := 0
	for field := 0; ; field++ {
		isKey := field == s.o.KeyField
		start := p
		// Fast path: an unquoted field up to the next delimiter.
		d := bytes.IndexByte(line[p:], delim)
		seg := line[p:]
		if d >= 0 {
			seg = line[p : p+d]
		}
		if bytes.IndexByte(seg, quote) < 0 {
			if isKey {
				return s.csvValue(seg, seg, false)
			}
			if d < 0 {
				return nil, false, s.missingKey()
			}
			p += d + 1
			continue
		}

		// The field has quotes: walk it as CopyReadAttributesCSV does,
		// toggling between unquoted and quoted parts.
		out := s.key[:0]
		end, found := p, false
	walk:
		for {
			for { // not in quote
				end = p
				if p >= len(line) {
					break walk
				}
				c := line[p]
				p++
				if c == delim {
					found = true
					break walk
				}
				if c == quote {
					break
				}
				if isKey {
					out = append(out, c)
				}
			}
			for { // in quote
				if p >= len(line) {
					return nil, false, s.formatError("unterminated CSV quoted field", "")
				}
				c := line[p]
				p++
				// An escape escapes only the escape or the quote; tested
				// before the closing quote, as escape and quote are
				// usually the same character.
				if c == esc && p < len(line) && (line[p] == esc || line[p] == quote) {
					if isKey {
						out = append(out, line[p])
					}
					p++
					continue
				}
				if c == quote {
					break
				}
				if isKey {
					out = append(out, c)
				}
			}
		}
		if isKey {
			s.key = out
			return s.csvValue(line[start:end], out, true)
		}
		if !found {
			return nil, false, s.missingKey()
		}
	}
}

// csvValue applies the NULL rules to the key field: only an unquoted field
// equal to the NULL string is NULL, and FORCE_NOT_NULL / FORCE_NULL turn
// one into the other.
func (s *Splitter) csvValue(raw, value []byte, quoted bool) ([]byte, bool, error) {
	null := !quoted && bytes.Equal(raw, s.null)
	switch {
	case null && s.o.ForceNotNull:
		return s.null, false, nil
	case !null && s.o.ForceNull && bytes.Equal(value, s.null):
		return nil, true, nil
	case null:
		return nil, true, nil
	}
	return value, false, nil
}

// missingKey is PostgreSQL's error for a line with too few fields, named
// after the key column: the server would name the first missing column,
// which may come before the key, but either way the row is refused.
func (s *Splitter) missingKey() error {
	if s.o.KeyName != "" {
		return s.formatError(`missing data for column "`+s.o.KeyName+`"`, "")
	}
	return s.formatError("missing data for the key column (field "+strconv.Itoa(s.o.KeyField+1)+")", "")
}
