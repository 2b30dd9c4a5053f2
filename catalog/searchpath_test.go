package catalog_test

// ParseSearchPath against the rules of PostgreSQL's SplitIdentifierString.
// The integration test in test/catalog checks the same inputs against a
// server, which accepts and rejects exactly these settings.

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shardproxy/shardproxy/catalog"
)

func TestParseSearchPath(t *testing.T) {
	long := strings.Repeat("a", 70)
	// 31 two-byte characters are 62 bytes; the 32nd would make 64.
	wide := strings.Repeat("é", 40)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"default", `"$user", public`, []string{"$user", "public"}},
		{"unquoted $user", `$user,public`, []string{"$user", "public"}},
		{"two", `a,b`, []string{"a", "b"}},
		{"quoted keeps case and spaces", `"Quoted Schema", x`, []string{"Quoted Schema", "x"}},
		{"unquoted folds ASCII only", `MySchema, ÉCOLE`, []string{"myschema", "\u00c9cole"}},
		{"empty", ``, []string{}},
		{"blank", " \t\n\r\f ", []string{}},
		{"spaces around", "  a ,\tb\n,c  ", []string{"a", "b", "c"}},
		{"one", `public`, []string{"public"}},
		{"doubled quote", `"a""b", "c"""`, []string{`a"b`, `c"`}},
		{"quoted comma", `"a,b",c`, []string{"a,b", "c"}},
		{"quoted empty", `""`, []string{""}},
		{"quote inside unquoted", `a"b`, []string{`a"b`}},
		{"pg_catalog listed", `public, pg_catalog`, []string{"public", "pg_catalog"}},
		{"long unquoted truncated", long, []string{long[:63]}},
		{"long quoted truncated", `"` + long + `"`, []string{long[:63]}},
		{"truncated at a character", `"` + wide + `"`, []string{wide[:62]}},
		{"duplicates kept", `a, a`, []string{"a", "a"}},
		{"vertical tab is not space", "a\v", []string{"a\v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := catalog.ParseSearchPath(tc.in)
			if err != nil {
				t.Fatalf("ParseSearchPath(%q): %v", tc.in, err)
			}
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ParseSearchPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseSearchPathErrors(t *testing.T) {
	for _, in := range []string{
		`a,,b`, `a,`, `,a`, `a, `, `,`,
		`a b`, `"a" b`, `"a"b`, `"unterminated`, `a, "b`, `"a"""b`,
		"a \v", // \v is not whitespace to PostgreSQL 15's lexer
	} {
		t.Run(in, func(t *testing.T) {
			got, err := catalog.ParseSearchPath(in)
			if !errors.Is(err, catalog.ErrSearchPathSyntax) {
				t.Fatalf("ParseSearchPath(%q) = %q, %v; want ErrSearchPathSyntax", in, got, err)
			}
		})
	}
}

// FuzzParseSearchPath checks what must hold for any input: no panic, names
// within 63 bytes, valid UTF-8 names from valid UTF-8 input, and a path
// that parses again to itself once every name is quoted.
func FuzzParseSearchPath(f *testing.F) {
	for _, s := range []string{`"$user", public`, `a,b`, `"Quoted Schema", x`, ``, ` a , b `,
		`"a""b"`, `a,,b`, `"x`, strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		names, err := catalog.ParseSearchPath(in)
		if err != nil {
			return
		}
		quoted := make([]string, len(names))
		for i, n := range names {
			if len(n) > 63 {
				t.Fatalf("name %q longer than 63 bytes", n)
			}
			if utf8.ValidString(in) && !utf8.ValidString(n) {
				t.Fatalf("invalid UTF-8 name %q from %q", n, in)
			}
			quoted[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
		}
		again, err := catalog.ParseSearchPath(strings.Join(quoted, ", "))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("%q parsed to %q; quoted again %q, %v", in, names, again, err)
		}
	})
}
