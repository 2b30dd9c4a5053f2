package planner

// A small SQL lexer: enough to split a simple-protocol string into
// statements and read the keywords the router must act on (PREPARE,
// EXECUTE, SET, ...) without the cost of a full parse. It understands
// comments (nested block comments too), standard and escape strings, quoted
// identifiers and dollar quoting, so a semicolon or keyword inside any of
// those is never mistaken for one outside.

import (
	"strings"
	"unicode/utf8"
)

type tokenKind uint8

const (
	tokWord   tokenKind = iota // keyword or unquoted identifier, lower-cased
	tokIdent                   // "quoted identifier", unquoted and case kept
	tokString                  // a standard string literal keeps its text; others do not
	tokNumber
	tokPunct // one character of punctuation or an operator character
	tokSemicolon
)

type token struct {
	kind tokenKind
	text string
}

// lex returns the statements of sql as token lists, dropping empty ones.
func lex(sql string) [][]token {
	var stmts [][]token
	var cur []token
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth := 0
			for i < len(sql) {
				if sql[i] == '/' && i+1 < len(sql) && sql[i+1] == '*' {
					depth++
					i += 2
				} else if sql[i] == '*' && i+1 < len(sql) && sql[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == ';':
			if len(cur) > 0 {
				stmts = append(stmts, cur)
				cur = nil
			}
			i++
		case c == '\'':
			j := skipString(sql, i, false)
			// The text is kept (quotes undoubled) so set_config('a.b', ...)
			// can name the setting it changes.
			text := ""
			if j-1 > i+1 && sql[j-1] == '\'' {
				text = strings.ReplaceAll(sql[i+1:j-1], "''", "'")
			}
			cur = append(cur, token{kind: tokString, text: text})
			i = j
		case (c == 'e' || c == 'E') && i+1 < len(sql) && sql[i+1] == '\'':
			i = skipString(sql, i+1, true)
			cur = append(cur, token{kind: tokString})
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(sql) {
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					j++
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			cur = append(cur, token{kind: tokIdent, text: b.String()})
			i = j
		case c == '$' && i+1 < len(sql) && (sql[i+1] == '$' || isIdentStart(sql[i+1])):
			if end, ok := skipDollarQuote(sql, i); ok {
				cur = append(cur, token{kind: tokString})
				i = end
			} else {
				cur = append(cur, token{kind: tokPunct, text: "$"})
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(sql) && isIdentPart(sql[j]) {
				j++
			}
			cur = append(cur, token{kind: tokWord, text: strings.ToLower(sql[i:j])})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && (sql[j] >= '0' && sql[j] <= '9' || sql[j] == '.' || sql[j] == '_') {
				j++
			}
			cur = append(cur, token{kind: tokNumber, text: sql[i:j]})
			i = j
		default:
			_, size := utf8.DecodeRuneInString(sql[i:])
			cur = append(cur, token{kind: tokPunct, text: sql[i : i+size]})
			i += size
		}
	}
	if len(cur) > 0 {
		stmts = append(stmts, cur)
	}
	return stmts
}

// skipString returns the index after the string literal starting at the
// quote at i; backslashes escape only in E” strings.
func skipString(sql string, i int, backslash bool) int {
	j := i + 1
	for j < len(sql) {
		switch sql[j] {
		case '\\':
			if backslash {
				j += 2
				continue
			}
		case '\'':
			if j+1 < len(sql) && sql[j+1] == '\'' {
				j += 2
				continue
			}
			return j + 1
		}
		j++
	}
	return j
}

// skipDollarQuote handles $tag$...$tag$; ok is false when the $ starts a
// parameter reference such as $1 or is not a well-formed opening tag.
func skipDollarQuote(sql string, i int) (int, bool) {
	j := i + 1
	for j < len(sql) && sql[j] != '$' {
		if !isIdentPart(sql[j]) {
			return 0, false
		}
		j++
	}
	if j >= len(sql) {
		return 0, false
	}
	tag := sql[i : j+1]
	end := strings.Index(sql[j+1:], tag)
	if end < 0 {
		return len(sql), true
	}
	return j + 1 + end + len(tag), true
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}
