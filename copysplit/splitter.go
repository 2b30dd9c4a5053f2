package copysplit

// The Splitter finds the rows in a COPY stream however the client chunked
// it, the way PostgreSQL's CopyReadLineText does (line endings fixed by the
// first line, backslash escapes, the \. end marker, CSV quotes spanning
// lines), so that every shard, given a subset of the rows, reads each row
// exactly as one server reading the whole stream would have.

import (
	"bytes"
	"fmt"

	"github.com/shardproxy/shardproxy/pgerror"
)

// Row is one line of COPY data. Its slices are valid only until the emit
// function returns: copy what you keep.
type Row struct {
	// Data is the row exactly as the client sent it, line terminator
	// included, to forward unchanged. The last row lacks a terminator when
	// the data did; a row cut short by the \. marker is the part before it.
	Data []byte
	// Key is the key field's value, de-escaped (text) or de-quoted (CSV);
	// nil for the header.
	Key []byte
	// Null says the key field is NULL.
	Null bool
	// Header marks the header line (Options.Header): send it to every
	// shard (each server skips or checks its own copy) or drop it.
	Header bool
}

type eolType uint8

const (
	eolUnknown eolType = iota // no line seen yet: the first line decides
	eolNL
	eolCR
	eolCRNL
)

// lineState is how far the current line has been scanned, so a line split
// across chunks is never scanned twice.
type lineState struct {
	off     int // bytes of the line already scanned
	inQuote bool
	lastEsc bool
	started bool // a character of the line has been processed (CSV \.)
}

// Splitter splits one COPY FROM STDIN stream into rows. Not safe for
// concurrent use; one per COPY.
type Splitter struct {
	o    Options
	null []byte
	eol  eolType
	// special marks the bytes the line scanner must look at; runs of
	// other bytes are skipped in a tight loop.
	special [256]bool

	pend []byte // an incomplete line, carried to the next Feed
	ls   lineState
	key  []byte // the de-escaped key, when it had escapes

	wantHeader bool
	ended      bool  // the data ended (\. or End)
	eofInQuote bool  // the stream ended inside a CSV quoted field
	err        error // sticky: once failed, always failed
	lines      int   // lines read, for error details
}

// New returns a Splitter for one COPY with the given options. Options
// PostgreSQL would refuse are refused with its error.
func New(opts Options) (*Splitter, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	// key is never nil, so an empty key is told from the header's.
	s := &Splitter{o: o, null: []byte(o.Null), wantHeader: o.Header, key: make([]byte, 0, 64)}
	for _, c := range []byte{'\\', '\r', '\n'} {
		s.special[c] = true
	}
	if o.CSV {
		s.special[o.Quote] = true
		s.special[o.Escape] = true
	}
	return s, nil
}

// Options returns the options in force, defaults filled in.
func (s *Splitter) Options() Options { return s.o }

// Ended reports whether the data has ended: End was called, or the \.
// marker was seen, after which PostgreSQL ignores everything up to
// CopyDone, and so does Feed.
func (s *Splitter) Ended() bool { return s.ended }

// Feed consumes one chunk of COPY data (a CopyData message's payload, or
// any other piece) and calls emit for each row it completes, in order.
// Rows within the chunk are passed as slices of it; a row spanning chunks
// is assembled in a buffer the Splitter reuses. An error from emit stops
// Feed and is returned as is; a malformed stream gives a *pgerror.Error
// with PostgreSQL's code and message. Either way the Splitter stays
// failed.
func (s *Splitter) Feed(chunk []byte, emit func(Row) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended || len(chunk) == 0 {
		return nil
	}
	if len(s.pend) > 0 {
		// Finish the pending line first, then go back to reading the
		// chunk in place.
		old := len(s.pend)
		s.pend = append(s.pend, chunk...)
		n, err := s.consume(s.pend, false, true, emit)
		if err != nil {
			return s.fail(err)
		}
		if n == 0 || s.ended || n < old {
			if !s.ended && n > 0 {
				m, err := s.consume(s.pend[n:], false, false, emit)
				if err != nil {
					return s.fail(err)
				}
				n += m
			}
			return s.keep(s.pend[n:], true)
		}
		chunk = chunk[n-old:]
		s.pend = s.pend[:0]
		if s.ended {
			return nil
		}
	}
	n, err := s.consume(chunk, false, false, emit)
	if err != nil {
		return s.fail(err)
	}
	return s.keep(chunk[n:], false)
}

// End is called at CopyDone: the bytes after the last line terminator
// form the last row.
func (s *Splitter) End(emit func(Row) error) error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return nil
	}
	if _, err := s.consume(s.pend, true, false, emit); err != nil {
		return s.fail(err)
	}
	s.pend = s.pend[:0]
	s.ended = true
	return nil
}

// keep makes rest the pending line; inPend says it is a suffix of pend
// rather than of the caller's chunk.
func (s *Splitter) keep(rest []byte, inPend bool) error {
	if s.ended {
		s.pend = s.pend[:0]
		return nil
	}
	if len(rest) > s.o.MaxRowBytes {
		return s.fail(s.tooLong())
	}
	if inPend {
		s.pend = s.pend[:copy(s.pend, rest)] // copy handles the overlap
	} else {
		s.pend = append(s.pend[:0], rest...)
	}
	return nil
}

func (s *Splitter) fail(err error) error {
	s.err = err
	return err
}

// consume emits the lines of buf (all of them, or only the first if one)
// and returns how many bytes they took; the rest is an incomplete line.
// At eof the rest is the last line.
func (s *Splitter) consume(buf []byte, eof, one bool, emit func(Row) error) (int, error) {
	start := 0
	for start < len(buf) {
		res, end, next, err := s.scanLine(buf, start, eof)
		if err != nil {
			return start, err
		}
		switch res {
		case needMore:
			return start, nil
		case lineDone:
			if err := s.row(buf[start:end], buf[start:next], emit); err != nil {
				return start, err
			}
			start = next
		case dataDone:
			// PostgreSQL processes what precedes \. (or the end of the
			// data) as a last line, unless it is empty.
			if end > start {
				if s.eofInQuote && !s.wantHeader {
					return start, s.formatError("unterminated CSV quoted field", "")
				}
				if err := s.row(buf[start:end], buf[start:end], emit); err != nil {
					return start, err
				}
			}
			s.ended = true
			return next, nil
		}
		if one {
			break
		}
	}
	return start, nil
}

// row emits one line; content is data without its terminator.
func (s *Splitter) row(content, data []byte, emit func(Row) error) error {
	if len(data) > s.o.MaxRowBytes {
		return s.tooLong()
	}
	s.lines++
	if s.wantHeader {
		s.wantHeader = false
		return emit(Row{Data: data, Header: true})
	}
	var key []byte
	var null bool
	var err error
	if s.o.CSV {
		key, null, err = s.csvKey(content)
	} else {
		key, null, err = s.textKey(content)
	}
	if err != nil {
		return err
	}
	return emit(Row{Data: data, Key: key, Null: null})
}

type scanResult uint8

const (
	needMore scanResult = iota // the line goes on past buf
	lineDone                   // a line ended with its terminator
	dataDone                   // the data ended: \. or the end of input
)

// scanLine finds the end of the line starting at buf[start], resuming
// where the last call stopped. It follows CopyReadLineText statement by
// statement; where PostgreSQL looks ahead and would load more data, this
// returns needMore with the state from before the character that needed
// it. contentEnd is where the line's data ends, next where the following
// line starts.
func (s *Splitter) scanLine(buf []byte, start int, eof bool) (res scanResult, contentEnd, next int, err error) {
	csv := s.o.CSV
	quote, esc := s.o.Quote, s.o.Escape
	hasEsc := csv && esc != quote
	st := s.ls
	p := start + st.off

	if st.off == 0 && (s.eol == eolNL || s.eol == eolUnknown) && (!csv || quote != '\n') {
		// Most lines hold none of the characters that matter: find the
		// newline and check the line for them with the vectorised search.
		if i := bytes.IndexByte(buf[p:], '\n'); i >= 0 {
			seg := buf[p : p+i]
			plain := bytes.IndexByte(seg, '\r') < 0
			if plain && csv {
				plain = bytes.IndexByte(seg, quote) < 0 && (len(seg) == 0 || seg[0] != '\\')
			} else if plain {
				plain = bytes.IndexByte(seg, '\\') < 0
			}
			if plain {
				s.eol = eolNL
				return lineDone, p + i, p + i + 1, nil
			}
		}
	}

	// Where PostgreSQL would load more data to look ahead, this stops
	// (goto more) with the state from before the character at prev.
	var prev int
	var saved lineState
	for {
		if p >= len(buf) {
			if !eof {
				st.off = p - start
				s.ls = st
				return needMore, 0, 0, nil
			}
			s.eofInQuote = csv && st.inQuote
			s.ls = lineState{}
			return dataDone, p, p, nil
		}
		if st.started {
			// Nothing in a run of ordinary bytes changes the state, but
			// for ending an escape sequence in CSV.
			q := p
			for q < len(buf) && !s.special[buf[q]] {
				q++
			}
			if q > p {
				st.lastEsc = false
				p = q
				continue
			}
		}
		prev, saved = p, st
		c := buf[p]
		p++
		if csv {
			// Look-ahead for these is secured before the quote state
			// changes, as PostgreSQL does.
			if (c == '\\' || c == '\r') && p >= len(buf) && !eof {
				goto more
			}
			if st.inQuote && hasEsc && c == esc {
				st.lastEsc = !st.lastEsc
			}
			if c == quote && !st.lastEsc {
				st.inQuote = !st.inQuote
			}
			if !hasEsc || c != esc {
				st.lastEsc = false
			}
		}

		if c == '\r' && (!csv || !st.inQuote) {
			if s.eol == eolUnknown || s.eol == eolCRNL {
				if p >= len(buf) && !eof {
					goto more
				}
				if p < len(buf) && buf[p] == '\n' {
					p++
					s.eol = eolCRNL
				} else {
					if s.eol == eolCRNL {
						return 0, 0, 0, s.crError()
					}
					s.eol = eolCR
				}
			} else if s.eol == eolNL {
				return 0, 0, 0, s.crError()
			}
			s.ls = lineState{}
			return lineDone, prev, p, nil
		}

		if c == '\n' && (!csv || !st.inQuote) {
			if s.eol == eolCR || s.eol == eolCRNL {
				if csv {
					return 0, 0, 0, s.formatError("unquoted newline found in data", "Use quoted CSV field to represent newline.")
				}
				return 0, 0, 0, s.formatError("literal newline found in data", `Use "\n" to represent newline.`)
			}
			s.eol = eolNL
			s.ls = lineState{}
			return lineDone, prev, p, nil
		}

		// In CSV, \. ends the data only alone at the start of a line;
		// in text, anywhere, and a backslash escapes whatever follows.
		if c == '\\' && (!csv || !st.started) {
			if p >= len(buf) {
				if !eof {
					goto more
				}
				// A backslash just before the end is data.
				s.eofInQuote = csv && st.inQuote
				s.ls = lineState{}
				return dataDone, p, p, nil
			}
			if buf[p] == '.' {
				m, end, err := s.endMarker(buf, p+1, eof)
				switch {
				case err != nil:
					return 0, 0, 0, err
				case m == markerMore:
					goto more
				case m == markerFound:
					s.eofInQuote = false
					s.ls = lineState{}
					return dataDone, prev, end, nil
				}
				// CSV data that merely starts with \. : carry on after
				// the backslash.
			} else if !csv {
				p++ // the escaped character is data, whatever it is
			}
		}
		st.started = true
	}
more:
	saved.off = prev - start
	s.ls = saved
	return needMore, 0, 0, nil
}

type markerResult uint8

const (
	markerNot markerResult = iota
	markerFound
	markerMore
)

// endMarker checks what follows "\." (at buf[q]): the end-of-data marker
// needs a line terminator of the stream's style. At the end of the input
// PostgreSQL reads a NUL there.
func (s *Splitter) endMarker(buf []byte, q int, eof bool) (markerResult, int, error) {
	csv := s.o.CSV
	at := func(i int) byte {
		if i < len(buf) {
			return buf[i]
		}
		return 0
	}
	if s.eol == eolCRNL {
		if q >= len(buf) && !eof {
			return markerMore, 0, nil
		}
		c2 := at(q)
		q++
		if c2 == '\n' {
			if !csv {
				return 0, 0, s.formatError("end-of-copy marker does not match previous newline style", "")
			}
			return markerNot, 0, nil
		} else if c2 != '\r' {
			if !csv {
				return 0, 0, s.formatError("end-of-copy marker corrupt", "")
			}
			return markerNot, 0, nil
		}
	}
	if q >= len(buf) && !eof {
		return markerMore, 0, nil
	}
	c2 := at(q)
	q++
	if c2 != '\r' && c2 != '\n' {
		if !csv {
			return 0, 0, s.formatError("end-of-copy marker corrupt", "")
		}
		return markerNot, 0, nil
	}
	if (s.eol == eolNL && c2 != '\n') || (s.eol == eolCRNL && c2 != '\n') || (s.eol == eolCR && c2 != '\r') {
		return 0, 0, s.formatError("end-of-copy marker does not match previous newline style", "")
	}
	return markerFound, min(q, len(buf)), nil
}

func (s *Splitter) tooLong() error {
	return pgerror.New(programLimitExceeded, "COPY line is longer than %d bytes", s.o.MaxRowBytes).
		WithDetail("at line %d of the COPY data", s.lines+1)
}

func (s *Splitter) crError() error {
	if s.o.CSV {
		return s.formatError("unquoted carriage return found in data", "Use quoted CSV field to represent carriage return.")
	}
	return s.formatError("literal carriage return found in data", `Use "\r" to represent carriage return.`)
}

// formatError is PostgreSQL's bad_copy_file_format error; where PostgreSQL
// names the line in the error's context, the detail does.
func (s *Splitter) formatError(msg, hint string) error {
	e := pgerror.New(badCopyFileFormat, "%s", msg).WithDetail("at line %d of the COPY data", s.lines+1)
	if hint != "" {
		e = e.WithHint("%s", hint)
	}
	return e
}

// String describes the splitter for logs.
func (s *Splitter) String() string {
	return fmt.Sprintf("copysplit(%s; %d lines)", s.o, s.lines)
}
