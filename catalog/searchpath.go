package catalog

// The search_path setting's text as a list of schema names, parsed the way
// PostgreSQL parses it (SplitIdentifierString in varlena.c), so that the
// proxy and the server agree on which schemas a session searches.

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxIdentLen is NAMEDATALEN-1: PostgreSQL truncates longer identifiers.
const maxIdentLen = 63

// ErrSearchPathSyntax is wrapped by ParseSearchPath's errors; PostgreSQL
// rejects the same settings ("invalid value for parameter search_path").
var ErrSearchPathSyntax = errors.New("invalid list syntax in search_path")

// ParseSearchPath splits the text of a search_path setting, such as
// `"$user", public`, into schema names, as PostgreSQL does: names are
// separated by commas with optional whitespace around them; an unquoted
// name is lower-cased (ASCII letters only, as in a UTF-8 database); a
// double-quoted name keeps its case and spaces, with "" standing for one
// quote; every name is truncated to 63 bytes. "$user" is returned as is
// (Resolve expands it). An empty or all-blank setting is an empty path; a
// quoted empty name ("", which is what setting search_path to an empty
// string stores) is kept, and names no schema. Empty unquoted names (a,,b or a trailing
// comma), unterminated quotes and anything else between names are errors.
func ParseSearchPath(setting string) ([]string, error) {
	var names []string
	i := skipSpace(setting, 0)
	if i == len(setting) {
		return names, nil
	}
	for {
		var name string
		if i < len(setting) && setting[i] == '"' {
			var b strings.Builder
			j := i + 1
			for {
				k := strings.IndexByte(setting[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("%w: unterminated quoted name at byte %d of %q", ErrSearchPathSyntax, i, setting)
				}
				b.WriteString(setting[j : j+k])
				j += k + 1
				if j < len(setting) && setting[j] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				break
			}
			name, i = b.String(), j
		} else {
			j := i
			for j < len(setting) && setting[j] != ',' && !isSpace(setting[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("%w: empty name at byte %d of %q", ErrSearchPathSyntax, i, setting)
			}
			name, i = downcase(setting[i:j]), j
		}
		names = append(names, truncateIdent(name))

		i = skipSpace(setting, i)
		switch {
		case i == len(setting):
			return names, nil
		case setting[i] == ',':
			i = skipSpace(setting, i+1)
		default:
			return nil, fmt.Errorf("%w: unexpected %q at byte %d of %q", ErrSearchPathSyntax, setting[i], i, setting)
		}
	}
}

// isSpace is PostgreSQL 15's scanner_isspace: the lexer's whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// downcase lower-cases ASCII letters only, as downcase_identifier does in a
// multi-byte encoding.
func downcase(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
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

// truncateIdent cuts s to at most maxIdentLen bytes without splitting a
// UTF-8 character, as truncate_identifier does.
func truncateIdent(s string) string {
	if len(s) <= maxIdentLen {
		return s
	}
	n := 0
	for n < len(s) {
		_, size := utf8.DecodeRuneInString(s[n:])
		if n+size > maxIdentLen {
			break
		}
		n += size
	}
	return s[:n]
}
