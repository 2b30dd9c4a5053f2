package copysplit

// The COPY options that change how rows and fields are found, their
// defaults, and the checks PostgreSQL makes on them: a splitter built on
// options the server would refuse could only disagree with it.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/pgerror"
)

// Options are the COPY FROM STDIN options, as the router read them from the
// statement (format text or csv; binary is not handled here).
type Options struct {
	CSV       bool
	Delimiter byte // 0: tab in text format, comma in CSV
	// Null is the NULL option's string, used when NullSet; otherwise the
	// format's default: \N in text, an unquoted empty string in CSV.
	Null    string
	NullSet bool
	Quote   byte // CSV only; 0: '"'
	Escape  byte // CSV only; 0: the quote character
	// Header says the first line is a header (HEADER true or MATCH; text
	// and CSV since PostgreSQL 15). It is reported as a Row with Header
	// set, never parsed for a key.
	Header bool
	// KeyField is the 0-based position of the sharding key among the
	// fields of a line: the key column's position in the COPY column list,
	// or, without one, among the table's columns that COPY reads (not
	// dropped, not generated).
	KeyField int
	// KeyName names the key column in "missing data for column" errors.
	KeyName string
	// ForceNotNull and ForceNull say the key column is named by CSV's
	// FORCE_NOT_NULL or FORCE_NULL option: an unquoted NULL string is the
	// NULL string's value, or a quoted one is NULL.
	ForceNotNull, ForceNull bool
	// Encoding is the COPY's ENCODING option, else the session's
	// client_encoding; "" means UTF8. Encodings whose multibyte characters
	// may contain ASCII bytes (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) are
	// refused: PostgreSQL converts them before looking for delimiters, a
	// byte scanner would find false ones.
	Encoding string
	// MaxRowBytes bounds one row, header included (default 1 GiB, which is
	// PostgreSQL's own limit for a line).
	MaxRowBytes int
}

// Codes of the errors this package makes, PostgreSQL's own.
const (
	badCopyFileFormat     pgerror.Code = "22P04"
	invalidParameterValue pgerror.Code = "22023"
	featureNotSupported   pgerror.Code = "0A000"
	programLimitExceeded  pgerror.Code = "54000"
)

const defaultMaxRow = 1 << 30

// resolved fills in the defaults and checks what PostgreSQL checks
// (ProcessCopyOptions), with its messages.
func (o Options) resolved() (Options, error) {
	if o.KeyField < 0 {
		return o, errors.New("copysplit: KeyField is negative")
	}
	if o.MaxRowBytes < 0 {
		return o, errors.New("copysplit: MaxRowBytes is negative")
	}
	if o.MaxRowBytes == 0 {
		o.MaxRowBytes = defaultMaxRow
	}
	if o.Delimiter == 0 {
		o.Delimiter = '\t'
		if o.CSV {
			o.Delimiter = ','
		}
	}
	if !o.NullSet {
		o.Null = `\N`
		if o.CSV {
			o.Null = ""
		}
	}
	if !o.CSV {
		switch {
		case o.Quote != 0:
			return o, pgerror.New(featureNotSupported, "COPY quote available only in CSV mode")
		case o.Escape != 0:
			return o, pgerror.New(featureNotSupported, "COPY escape available only in CSV mode")
		case o.ForceNotNull:
			return o, pgerror.New(featureNotSupported, "COPY force not null available only in CSV mode")
		case o.ForceNull:
			return o, pgerror.New(featureNotSupported, "COPY force null available only in CSV mode")
		}
	} else {
		if o.Quote == 0 {
			o.Quote = '"'
		}
		if o.Escape == 0 {
			o.Escape = o.Quote
		}
	}
	for _, c := range []struct {
		what string
		b    byte
	}{{"delimiter", o.Delimiter}, {"quote", o.Quote}, {"escape", o.Escape}} {
		// A byte with the high bit set is part of a multibyte character.
		if c.b >= 0x80 {
			return o, pgerror.New(featureNotSupported, "COPY %s must be a single one-byte character", c.what)
		}
	}
	if o.Delimiter == '\r' || o.Delimiter == '\n' {
		return o, pgerror.New(invalidParameterValue, "COPY delimiter cannot be newline or carriage return")
	}
	if strings.ContainsAny(o.Null, "\r\n") {
		return o, pgerror.New(invalidParameterValue, "COPY null representation cannot use newline or carriage return")
	}
	if !o.CSV && strings.IndexByte(`\.abcdefghijklmnopqrstuvwxyz0123456789`, o.Delimiter) >= 0 {
		return o, pgerror.New(invalidParameterValue, "COPY delimiter cannot be \"%c\"", o.Delimiter)
	}
	if o.CSV && o.Delimiter == o.Quote {
		return o, pgerror.New(invalidParameterValue, "COPY delimiter and quote must be different")
	}
	if strings.IndexByte(o.Null, o.Delimiter) >= 0 {
		return o, pgerror.New(featureNotSupported, "COPY delimiter must not appear in the NULL specification")
	}
	if o.CSV && strings.IndexByte(o.Null, o.Quote) >= 0 {
		return o, pgerror.New(featureNotSupported, "CSV quote character must not appear in the NULL specification")
	}
	if !asciiSafe(o.Encoding) {
		return o, pgerror.New(featureNotSupported, "COPY with encoding %s cannot be split by shard", o.Encoding).
			WithHint("Use UTF8 or another encoding whose multibyte characters never contain ASCII bytes (SET client_encoding or ENCODING).")
	}
	return o, nil
}

// asciiSafe reports whether in encoding name every byte below 0x80 is
// the ASCII character, so delimiters, quotes, backslashes and newlines
// can be found byte by byte. PostgreSQL's server encodings all are; the
// client-only ones listed here are not. Names are compared as PostgreSQL
// does: case-insensitive, ignoring everything but letters and digits.
func asciiSafe(name string) bool {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		}
	}
	switch b.String() {
	case "sjis", "shiftjis", "mskanji", "win932", "windows932",
		"big5", "win950", "windows950",
		"gbk", "win936", "windows936",
		"uhc", "win949", "windows949",
		"gb18030", "johab":
		return false
	}
	return true
}

// String describes the options the way COPY would spell them, for errors
// and logs.
func (o Options) String() string {
	format := "text"
	if o.CSV {
		format = "csv"
	}
	return fmt.Sprintf("FORMAT %s, DELIMITER %q, NULL %q, HEADER %v, key field %d", format, string(o.Delimiter), o.Null, o.Header, o.KeyField)
}
