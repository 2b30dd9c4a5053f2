package console_test

// The query parser alone: how a query string splits into statements and
// what each resolves to, and a fuzz target that it never panics.

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shardproxy/shardproxy/console"
	"github.com/shardproxy/shardproxy/pgerror"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		query string
		want  []string
		err   pgerror.Code // of the whole string
	}{
		{"SHOW SHARDS", []string{"shards"}, ""},
		{"show shards;", []string{"shards"}, ""},
		{"SHOW\tSHARDS\n;\n", []string{"shards"}, ""},
		{"SHOW SHARDS;SHOW RANGES;show tables", []string{"shards", "ranges", "tables"}, ""},
		{";;SHOW POOLS;;", []string{"pools"}, ""},
		{"", nil, ""},
		{"   ", nil, ""},
		{"-- SHOW SHARDS", nil, ""},
		{"/* SHOW SHARDS */", nil, ""},
		{"/* a /* b */ c */ SHOW NODES", []string{"nodes"}, ""},
		{"SHOW -- trailing\n VERSION", []string{"version"}, ""},
		{`SHOW "replicas"`, []string{"replicas"}, ""},
		{`SHOW "Replicas"`, []string{"error 42601"}, ""},
		{"SHOW HELP; SHOW BOGUS; SHOW VERSION", []string{"help", "error 42601", "version"}, ""},
		{"SELECT 1; SHOW VERSION", []string{"error 0A000", "version"}, ""},
		{"SELECT ';'; SHOW VERSION", []string{"error 0A000", "version"}, ""},
		{`SELECT E'\';'; SHOW VERSION`, []string{"error 0A000", "version"}, ""},
		{`SELECT '\'; SHOW VERSION`, []string{"error 0A000", "version"}, ""}, // standard strings have no backslash escapes
		{`SELECT "a;""b"; SHOW VERSION`, []string{"error 0A000", "version"}, ""},
		{"SELECT $$;$$; SHOW VERSION", []string{"error 0A000", "version"}, ""},
		{"SELECT $tag$ $$; $tag$; SHOW VERSION", []string{"error 0A000", "version"}, ""},
		{"SELECT $1; SHOW VERSION", []string{"error 0A000", "version"}, ""},
		{"SHOW $1", []string{"error 42601"}, ""},
		{"SHOW", []string{"error 42601"}, ""},
		{"SHOW SHARDS NOW", []string{"error 42601"}, ""},
		{"SHOW ;", []string{"error 42601"}, ""},
		{"SHOW 'x'", []string{"error 42601"}, ""},
		{"show$x", []string{"error 0A000"}, ""},
		{"SHOW 'x", nil, pgerror.SyntaxError},
		{`SHOW "x`, nil, pgerror.SyntaxError},
		{"SHOW /* x", nil, pgerror.SyntaxError},
		{"SELECT $q$ x", nil, pgerror.SyntaxError},
		{"SELECT E'\\'", nil, pgerror.SyntaxError},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := console.ParseQuery(tt.query)
			if tt.err != "" {
				var pe *pgerror.Error
				if !asPgError(err, &pe) || pe.Code != tt.err {
					t.Fatalf("error %v, want SQLSTATE %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func asPgError(err error, pe **pgerror.Error) bool { return errors.As(err, pe) }

// FuzzConsoleQuery: any query string parses without panicking, into
// statements that are each a command or an error with a SQLSTATE, and a
// string that is a known command parses to it whatever surrounds it.
func FuzzConsoleQuery(f *testing.F) {
	for _, seed := range []string{
		"SHOW SHARDS", "show ranges;", "SHOW POOLS; SHOW NODES", "", ";;", "-- x", "/* /* */", "/* x */ SHOW VERSION",
		"SELECT 'a;b'; SHOW HELP", `SHOW "tables"`, "SHOW $1", "SELECT $a$;$a$", "SELECT $", "E'\\''", "SHOW é",
		"\xff\xfe SHOW", "SHOW SHARDS\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got, err := console.ParseQuery(q)
		if err != nil {
			var pe *pgerror.Error
			if !asPgError(err, &pe) || pe.Code != pgerror.SyntaxError {
				t.Fatalf("%q: whole-string error %v is not a 42601", q, err)
			}
			if pe.Position < 1 || pe.Position > utf8.RuneCountInString(q)+1 {
				t.Fatalf("%q: position %d outside the query", q, pe.Position)
			}
			return
		}
		for _, s := range got {
			if s == "" {
				t.Fatalf("%q: an empty statement result in %q", q, got)
			}
		}
		// Appending a statement adds exactly that statement, unless q
		// may leave a comment or a quote open.
		if strings.ContainsAny(q, "-/'\"$") {
			return
		}
		more, err := console.ParseQuery(q + ";SHOW VERSION")
		if err != nil || len(more) != len(got)+1 || more[len(more)-1] != "version" {
			t.Fatalf("%q + SHOW VERSION: %q, %v (alone: %q)", q, more, err, got)
		}
	})
}
