package planner

// Properties of Normalize that need its placeholder offsets (hence an
// internal test): every literal has exactly one placeholder; putting the
// literals back where their placeholders are gives a statement with the
// same key; changing literal values keeps the key; and the literals are
// the constants PostgreSQL's own scanner (pg_query) finds.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// checkNormalize checks the properties on one statement; scan also
// compares with pg_query's scanner.
func checkNormalize(t *testing.T, sql string, scan bool) {
	t.Helper()
	var tr normTrace
	out, lits := appendNormalized(nil, nil, sql, &tr)
	norm := string(out)

	// Deterministic, and the same as the exported function.
	if n2, l2 := Normalize(sql); n2 != norm || fmt.Sprint(l2) != fmt.Sprint(lits) {
		t.Fatalf("%q: Normalize differs from appendNormalized: %q vs %q", sql, n2, norm)
	}

	// One placeholder per literal, naming its kind; literals in order,
	// where they say they are.
	if len(tr.marks) != len(lits) {
		t.Fatalf("%q: %d placeholders for %d literals", sql, len(tr.marks), len(lits))
	}
	prevEnd := 0
	for k, l := range lits {
		m := tr.marks[k]
		if m+2 > len(norm) || norm[m] != '$' || norm[m+1] != l.Kind.placeholder() {
			t.Fatalf("%q -> %q: placeholder %d at %d is not $%c", sql, norm, k, m, l.Kind.placeholder())
		}
		if l.Pos < prevEnd || l.Pos+len(l.Text) > len(sql) || sql[l.Pos:l.Pos+len(l.Text)] != l.Text || l.Text == "" {
			t.Fatalf("%q: literal %d %+v out of place", sql, k, l)
		}
		prevEnd = l.Pos + len(l.Text)
		_, _ = l.Value() // must not panic
	}

	// Literals put back at their placeholders: the same key and literals.
	var b strings.Builder
	last := 0
	for k, m := range tr.marks {
		b.WriteString(norm[last:m])
		b.WriteString(lits[k].Text)
		last = m + 2
	}
	b.WriteString(norm[last:])
	back := b.String()
	norm2, lits2 := Normalize(back)
	if norm2 != norm && strings.Contains(sql, "/*") && strings.Contains(norm, "--") {
		// 'a' /* */ -- shard: x<newline> 'b' is two strings (a block
		// comment stops a continuation) and normalizes to $s -- shard:
		// x<newline>$s; with the strings put back the space left for the
		// block comment lets them continue. Both are syntax errors.
		return
	}
	if norm2 != norm {
		t.Fatalf("%q -> %q; literals put back %q -> %q", sql, norm, back, norm2)
	}
	if len(lits2) != len(lits) {
		t.Fatalf("%q: %d literals, put back %q: %d", sql, len(lits), back, len(lits2))
	}
	for k := range lits {
		if lits2[k].Text != lits[k].Text || lits2[k].Kind != lits[k].Kind {
			t.Fatalf("%q: literal %d %+v, put back %+v", sql, k, lits[k], lits2[k])
		}
	}

	// Other values of the same kinds: the same key.
	if mut, changed := mutateLiterals(sql, lits); changed {
		norm3, lits3 := Normalize(mut)
		if norm3 != norm || len(lits3) != len(lits) {
			t.Fatalf("%q -> %q; with other values %q -> %q", sql, norm, mut, norm3)
		}
		for k := range lits {
			if lits3[k].Kind != lits[k].Kind || lits3[k].Pos != lits[k].Pos {
				t.Fatalf("%q: literal %d %+v, with other values %+v", sql, k, lits[k], lits3[k])
			}
		}
	}

	if scan {
		compareWithScanner(t, sql, lits, tr.kept)
	}
}

// mutateLiterals changes the values of the literals it can change without
// changing how the statement lexes: digits (a first digit never becomes 0,
// so no 0x appears), letters inside quotes of one-line strings, bits.
func mutateLiterals(sql string, lits []Literal) (string, bool) {
	b := []byte(sql)
	changed := false
	for k, l := range lits {
		if k > 0 && lits[k-1].Pos+len(lits[k-1].Text) == l.Pos {
			continue // 0b0 then 2 (in 0b02): a 1 there would join them
		}
		t := b[l.Pos : l.Pos+len(l.Text)]
		switch l.Kind {
		case LiteralInteger, LiteralNumeric:
			// Integers (up to 2^31-1) only get smaller and numerics only
			// larger, so neither changes kind.
			top := byte('9')
			from := 0
			if len(t) > 2 && t[0] == '0' {
				switch t[1] | 0x20 {
				case 'x':
					from = 2
				case 'o':
					top, from = '7', 2
				case 'b':
					top, from = '1', 2
				}
			}
			for k := from; k < len(t); k++ {
				c := t[k]
				switch {
				case !isDigit(c) || k == 0 && c == '0':
				case l.Kind == LiteralInteger && c > '0' && (k > 0 || c > '1'):
					t[k] = c - 1
				case l.Kind == LiteralNumeric && c < top:
					t[k] = c + 1
				default:
					continue
				}
				changed = changed || t[k] != c
			}
		case LiteralString, LiteralBitString:
			if strings.ContainsAny(l.Text, "\n\r") {
				continue
			}
			q := strings.IndexByte(l.Text, '\'')
			if q < 0 || l.Text[0] == 'u' || l.Text[0] == 'U' || l.Text[0] == '$' {
				continue
			}
			for k := q + 1; k < len(t)-1; k++ {
				c := t[k]
				switch {
				case l.Kind == LiteralBitString && (c == '0' || c == '1'):
					t[k] = '0' + '1' - c
				case l.Kind == LiteralString && c >= 'a' && c <= 'z':
					t[k] = 'a' + (c-'a'+1)%26
				default:
					continue
				}
				changed = true
			}
		}
	}
	return string(b), changed
}

// compareWithScanner checks the literals against the constants pg_query's
// scanner finds: each literal starts at a constant of its kind, and each
// constant is a literal, a constant kept verbatim, or inside one of them
// (UESCAPE's string; a continuation holding a comment, which libpg_query
// splits and PostgreSQL does not).
func compareWithScanner(t *testing.T, sql string, lits []Literal, kept [][2]int) {
	t.Helper()
	if strings.IndexByte(sql, 0) >= 0 {
		return // C strings end there
	}
	res, err := pg.Scan(sql)
	if err != nil {
		return
	}
	kinds := map[pg.Token]LiteralKind{
		pg.Token_ICONST: LiteralInteger, pg.Token_FCONST: LiteralNumeric,
		pg.Token_SCONST: LiteralString, pg.Token_USCONST: LiteralString,
		pg.Token_BCONST: LiteralBitString, pg.Token_XCONST: LiteralBitString,
	}
	type span struct{ start, end int }
	var spans []span
	byStart := map[int]LiteralKind{}
	for _, l := range lits {
		spans = append(spans, span{l.Pos, l.Pos + len(l.Text)})
		byStart[l.Pos] = l.Kind
	}
	for _, k := range kept {
		spans = append(spans, span{k[0], k[1]})
		byStart[k[0]] = 0
	}
	consts := map[int]LiteralKind{}
	for _, tok := range res.Tokens {
		kind, ok := kinds[tok.Token]
		if !ok {
			continue
		}
		start := int(tok.Start)
		consts[start] = kind
		if _, ok := byStart[start]; ok {
			continue
		}
		inside := false
		for _, s := range spans {
			inside = inside || s.start < start && start < s.end
		}
		if !inside {
			t.Fatalf("%q: PostgreSQL's scanner has a %s constant at %d (%q) that Normalize missed", sql, tok.Token, start, sql[start:tok.End])
		}
	}
	for _, l := range lits {
		if kind, ok := consts[l.Pos]; !ok || kind != l.Kind {
			t.Fatalf("%q: literal %+v is not a %s constant for PostgreSQL's scanner", sql, l, l.Kind)
		}
	}
}

var normalizeSeeds = []string{
	"SELECT id, name FROM accounts WHERE id = 42",
	"select * from t where a in (1, 2, 3) and b = 'x''y' and c = E'a\\'b' order by 1, 2 desc limit 10 offset 5",
	"/* shard: s2 */ SELECT -1, x::numeric(10,2), date'2020-01-01', N'abc' -- hi\n FROM \"Tab\" t WHERE d->>'k' @> '{}' AND a != 1.5e3",
	"select $tag$ x $tag$, $1, U&'d!0061t' UESCAPE '!', B'101', x'1F', 'a'\n'b'",
	"SET search_path = 'a', 'b'; select set_config('x', 'y', false), 5",
	"-- shard: s1\nselect 1 -- target: primary",
	"select distinct on (1) a, 2 from t group by 1 having count(*) > 3",
	"SELECT 1_000, 0x1F, 0o17, 0b101, .5, 1., 1e10, 1..2, 1abc, 1.5.5, 0x, 0b'1'",
	"SELECT 'a' \n -- c\n 'b', 'a'\n-- shard: x\n'b', U&\"x\" /* c */ UESCAPE '!'",
	"SELECT e'\\\\', $$, $a, $1$, $$x$$y$$",
	"COPY t FROM STDIN (DELIMITER ',')",
	"SELECT x::app.t(3), y::\"T\"(2), z::pg_catalog.varchar(4)",
	"SELECT ((((((((((1))))))))))",
	")))(((1",
	"SELECT U&'\\0041' UESCAPE",
	"/* /* */",
}

func FuzzNormalize(f *testing.F) {
	for _, s := range normalizeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		checkNormalize(t, sql, true)
	})
}

// TestNormalizeCorpus runs the property checks, PostgreSQL's scanner
// included, over the seeds and every statement of the key-extraction
// golden cases.
func TestNormalizeCorpus(t *testing.T) {
	sqls := append([]string(nil), normalizeSeeds...)
	data, err := os.ReadFile("testdata/keys_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		sqls = append(sqls, c.Query)
	}
	for _, sql := range sqls {
		checkNormalize(t, sql, true)
	}
	t.Logf("%d statements", len(sqls))
}

func TestNormalizeDeepNesting(t *testing.T) {
	sql := "SELECT " + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100) + ", 2"
	norm, lits := Normalize(sql)
	if !strings.Contains(norm, "(1)") || len(lits) != 1 || lits[0].Text != "2" {
		t.Fatalf("deeply nested literal should be kept, the one after replaced: %q %v", norm, lits)
	}
}
