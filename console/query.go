package console

// The console's query parser. A client's query string may hold several
// statements, comments and quoted text, so it is lexed the way PostgreSQL
// lexes it (just enough to find statement boundaries and words), split at
// semicolons, and each statement is matched against the command table.
// The console understands only SHOW <command>; everything else is an error
// reported in the statement's turn.

import (
	"strings"
	"unicode/utf8"

	"github.com/shardproxy/shardproxy/pgerror"
)

type tokenKind uint8

const (
	tokWord   tokenKind = iota // keyword or identifier, ASCII-lowercased
	tokQuoted                  // "quoted identifier", kept as written
	tokString                  // 'string', E'string', $tag$string$tag$
	tokNumber
	tokParam // $1
	tokSemicolon
	tokOther // an operator or punctuation character
)

type token struct {
	kind tokenKind
	text string // the word's name; for other kinds the source text
	pos  int    // byte offset in the query
}

// statement is one non-empty statement of a query string: the command it
// names, or the error it raises when its turn comes.
type statement struct {
	cmd *command
	err *pgerror.Error
}

// parseQuery splits a query string into its statements. Statements with no
// tokens (";;", comments only) are dropped, so an empty result means an
// empty query. A lexical error (an unterminated quote or comment) fails the
// whole string, as in PostgreSQL: its statement boundaries are unknown.
func parseQuery(q string) ([]statement, *pgerror.Error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	var out []statement
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && toks[i].kind != tokSemicolon {
			continue
		}
		if i > start {
			end := len(q)
			if i < len(toks) {
				end = toks[i].pos
			}
			out = append(out, resolve(q, toks[start:i], end))
		}
		start = i + 1
	}
	return out, nil
}

// resolve matches one statement's tokens (never empty) against the command
// table; end is the byte offset where the statement ends.
func resolve(q string, toks []token, end int) statement {
	if toks[0].kind != tokWord || toks[0].text != "show" {
		return statement{err: pgerror.New(pgerror.FeatureNotSupported,
			"the admin console only answers SHOW commands").
			WithHint("%s; connect to another database to run SQL", helpHint())}
	}
	if len(toks) == 1 {
		pe := syntaxError(q, "syntax error at end of input", end)
		return statement{err: pe.WithHint("%s", helpHint())}
	}
	name := toks[1]
	if name.kind != tokWord && name.kind != tokQuoted {
		pe := syntaxError(q, "syntax error at or near "+quoteNear(name.text), name.pos)
		return statement{err: pe.WithHint("%s", helpHint())}
	}
	if len(toks) > 2 {
		pe := syntaxError(q, "syntax error at or near "+quoteNear(toks[2].text), toks[2].pos)
		return statement{err: pe.WithHint("console commands take no arguments; %s", helpHint())}
	}
	cmd := lookup(name.text)
	if cmd == nil {
		pe := syntaxError(q, "unrecognized console command \"SHOW "+name.text+"\"", name.pos)
		return statement{err: pe.WithHint("%s", helpHint())}
	}
	return statement{cmd: cmd}
}

// syntaxError is a 42601 error whose position (1-based, in characters, as
// PostgreSQL counts it) lets psql point at the offending word.
func syntaxError(q, msg string, bytePos int) *pgerror.Error {
	pe := pgerror.New(pgerror.SyntaxError, "%s", msg)
	pe.Position = utf8.RuneCountInString(q[:bytePos]) + 1
	return pe
}

// quoteNear quotes a token for "at or near", shortened so a huge token does
// not make a huge message.
func quoteNear(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// lex cuts q into tokens, skipping white space and comments.
func lex(q string) ([]token, *pgerror.Error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			nl := strings.IndexByte(q[i:], '\n')
			if nl < 0 {
				i = len(q)
			} else {
				i += nl + 1
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end, ok := skipBlockComment(q, i)
			if !ok {
				return nil, syntaxError(q, "unterminated /* comment", i)
			}
			i = end
		case c == '\'':
			end, ok := skipString(q, i+1, false)
			if !ok {
				return nil, syntaxError(q, "unterminated quoted string", i)
			}
			toks = append(toks, token{kind: tokString, text: q[i:end], pos: i})
			i = end
		case (c == 'e' || c == 'E') && i+1 < len(q) && q[i+1] == '\'':
			end, ok := skipString(q, i+2, true)
			if !ok {
				return nil, syntaxError(q, "unterminated quoted string", i)
			}
			toks = append(toks, token{kind: tokString, text: q[i:end], pos: i})
			i = end
		case c == '"':
			end, ok := skipQuotedIdent(q, i+1)
			if !ok {
				return nil, syntaxError(q, "unterminated quoted identifier", i)
			}
			name := strings.ReplaceAll(q[i+1:end-1], `""`, `"`)
			toks = append(toks, token{kind: tokQuoted, text: name, pos: i})
			i = end
		case c == '$':
			if i+1 < len(q) && isDigit(q[i+1]) {
				end := i + 1
				for end < len(q) && isDigit(q[end]) {
					end++
				}
				toks = append(toks, token{kind: tokParam, text: q[i:end], pos: i})
				i = end
				break
			}
			if tag, ok := dollarTag(q, i); ok {
				closing := strings.Index(q[i+len(tag):], tag)
				if closing < 0 {
					return nil, syntaxError(q, "unterminated dollar-quoted string", i)
				}
				end := i + len(tag) + closing + len(tag)
				toks = append(toks, token{kind: tokString, text: q[i:end], pos: i})
				i = end
				break
			}
			toks = append(toks, token{kind: tokOther, text: "$", pos: i})
			i++
		case isIdentStart(c):
			end := i + 1
			for end < len(q) && isIdentCont(q[end]) {
				end++
			}
			toks = append(toks, token{kind: tokWord, text: lowerASCII(q[i:end]), pos: i})
			i = end
		case isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1]):
			end := i + 1
			for end < len(q) && (isIdentCont(q[end]) || q[end] == '.') {
				end++
			}
			toks = append(toks, token{kind: tokNumber, text: q[i:end], pos: i})
			i = end
		case c == ';':
			toks = append(toks, token{kind: tokSemicolon, text: ";", pos: i})
			i++
		default:
			toks = append(toks, token{kind: tokOther, text: q[i : i+1], pos: i})
			i++
		}
	}
	return toks, nil
}

// skipBlockComment returns the offset after the comment starting at i;
// PostgreSQL's block comments nest.
func skipBlockComment(q string, i int) (int, bool) {
	depth := 0
	for i < len(q) {
		switch {
		case q[i] == '/' && i+1 < len(q) && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && i+1 < len(q) && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return i, false
}

// skipString returns the offset after the closing quote of a string whose
// body starts at i. A doubled quote is a quote; with backslashes (E'...')
// a backslash escapes the next byte.
func skipString(q string, i int, backslashes bool) (int, bool) {
	for i < len(q) {
		switch {
		case backslashes && q[i] == '\\':
			i += 2
		case q[i] == '\'':
			if i+1 < len(q) && q[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1, true
		default:
			i++
		}
	}
	return len(q), false
}

// skipQuotedIdent returns the offset after the closing double quote of an
// identifier whose body starts at i.
func skipQuotedIdent(q string, i int) (int, bool) {
	for i < len(q) {
		if q[i] == '"' {
			if i+1 < len(q) && q[i+1] == '"' {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(q), false
}

// dollarTag returns the $tag$ that opens a dollar-quoted string at i.
func dollarTag(q string, i int) (string, bool) {
	j := i + 1
	if j < len(q) && q[j] != '$' {
		if !isIdentStart(q[j]) {
			return "", false
		}
		for j < len(q) && isIdentCont(q[j]) && q[j] != '$' {
			j++
		}
	}
	if j >= len(q) || q[j] != '$' {
		return "", false
	}
	return q[i : j+1], true
}

// Character classes as PostgreSQL's scanner has them; bytes from 0x80 are
// parts of multibyte characters, which may appear in identifiers.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}
func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// lowerASCII folds an unquoted identifier as PostgreSQL does for ASCII.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
