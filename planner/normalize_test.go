package planner_test

// Normalize's rules, one case per rule, and the pairs that must (or must
// not) share a plan-cache key. The benchmarks at the end measure the cost
// a normalized-text lookup adds to every statement that misses the
// raw-text lookup.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// lits renders literals as kind:text, one string, for compact cases.
func lits(ls []planner.Literal) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString(" | ")
		}
		fmt.Fprintf(&b, "%s:%s", l.Kind, l.Text)
	}
	return b.String()
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		name, sql, norm, lits string
	}{
		{"point select", "SELECT id, name FROM accounts WHERE id = 42",
			"select id, name from accounts where id = $i", "integer:42"},
		{"keywords and identifiers lower-cased", "Select ID From Accounts",
			"select id from accounts", ""},
		{"quoted identifiers keep case", `SELECT "Name", "weird ""x""" FROM "Accounts"`,
			`select "Name", "weird ""x""" from "Accounts"`, ""},
		{"unicode identifiers: only ASCII is folded", "SELECT Ünïcode, ÉTÉ FROM tàble",
			"select Ünïcode, ÉtÉ from tàble", ""},
		{"whitespace runs collapse", "SELECT\ta,\n\n  b\r\nFROM  t  ",
			"select a, b from t", ""},
		{"comments dropped", "SELECT /* why */ a -- trailing\nFROM t -- end",
			"select a from t", ""},
		{"a comment separates tokens", "SELECT a/**/FROM/* x */t",
			"select a from t", ""},
		{"nested comments", "SELECT /* a /* b */ still comment */ 1",
			"select $i", "integer:1"},
		{"block hint kept", "/* shard: s2 */ SELECT * FROM t WHERE a = 1",
			"/* shard: s2 */ select * from t where a = $i", "integer:1"},
		{"hint spelled loosely", "SELECT 1 /*  Target : primary */",
			"select $i /*  Target : primary */", "integer:1"},
		{"line hint kept with its newline", "-- shard: s1\nSELECT 1",
			"-- shard: s1\nselect $i", "integer:1"},
		{"comment mentioning a shard dropped", "/* sharding: n/a */ /* my shard: x */ SELECT 1",
			"select $i", "integer:1"},
		{"parameters kept", "SELECT * FROM t WHERE id = $1 AND n = $12",
			"select * from t where id = $1 and n = $12", ""},
		{"minus stays an operator", "SELECT -1, x - -2.5, -x",
			"select -$i, x - -$n, -x", "integer:1 | numeric:2.5"},
		{"numbers", "SELECT 1_000, 0x1F, 0o17, 0b101, 1.5, .5, 1., 1e10, 2.5E-3",
			"select $i, $i, $i, $i, $n, $n, $n, $n, $n",
			"integer:1_000 | integer:0x1F | integer:0o17 | integer:0b101 | numeric:1.5 | numeric:.5 | numeric:1. | numeric:1e10 | numeric:2.5E-3"},
		{"integers beyond int4 are numeric, as for PostgreSQL", "SELECT 2147483647, 2147483648, 0x80000000",
			"select $i, $n, $n", "integer:2147483647 | numeric:2147483648 | numeric:0x80000000"},
		{"number then identifier", "SELECT 1abc, 1.5.5",
			"select $iabc, $n $n", "integer:1 | numeric:1.5 | numeric:.5"},
		{"strings", `SELECT 'it''s', E'it\'s \\', e'\n'`,
			"select $s, $s, $s", `string:'it''s' | string:E'it\'s \\' | string:e'\n'`},
		{"unicode strings", `SELECT U&'d\0061t', u&'d!0061t' UESCAPE '!'`,
			"select $s, $s", `string:U&'d\0061t' | string:u&'d!0061t' UESCAPE '!'`},
		{"national string is nchar", "SELECT N'abc', n'x'",
			"select nchar $s, nchar $s", "string:'abc' | string:'x'"},
		{"dollar quotes", "SELECT $$a'b$$, $fn$ x $$ y $fn$, $q$$q$",
			"select $s, $s, $s", "string:$$a'b$$ | string:$fn$ x $$ y $fn$ | string:$q$$q$"},
		{"bit strings", "SELECT B'101', x'1F'",
			"select $b, $b", "bitstring:B'101' | bitstring:x'1F'"},
		{"continuation is one literal", "SELECT 'a'\n  'b', 'c' 'd'",
			"select $s, $s $s", "string:'a'\n  'b' | string:'c' | string:'d'"},
		{"continuation with a hint kept verbatim", "SELECT 'a'\n-- shard: s1\n'b'",
			"select 'a'\n-- shard: s1\n'b'", ""},
		{"typed literals", "SELECT date'2024-01-01', interval '1 day', '5'::int",
			"select date $s, interval $s, $s::int",
			"string:'2024-01-01' | string:'1 day' | string:'5'"},
		{"casts keep type modifiers", "SELECT x::numeric(10,2), CAST(y AS varchar(20)), z::float(24), 1.5::pg_catalog.numeric(8, 3)",
			"select x::numeric(10,2), cast(y as varchar(20)), z::float(24), $n::pg_catalog.numeric(8, 3)", "numeric:1.5"},
		{"cast to a user type keeps its modifier", `SELECT x::app.money4(2), y::"T"(3), f(4)`,
			`select x::app.money4(2), y::"T"(3), f($i)`, "integer:4"},
		{"operators", `SELECT d->>'k', d#>'{a,b}', t @> '{x}', a != 1, a <> 2, d ? 'k', a||'x'`,
			"select d->>$s, d#>$s, t @> $s, a != $i, a <> $i, d ? $s, a||$s",
			"string:'k' | string:'{a,b}' | string:'{x}' | integer:1 | integer:2 | string:'k' | string:'x'"},
		{"IN list keeps its length", "SELECT * FROM t WHERE a IN (1, 2, 3)",
			"select * from t where a in ($i, $i, $i)", "integer:1 | integer:2 | integer:3"},
		{"positions kept, limits not", "SELECT a, b FROM t WHERE c > 5 GROUP BY 1, 2 HAVING count(*) > 3 ORDER BY 2 DESC, 1 LIMIT 10 OFFSET 20",
			"select a, b from t where c > $i group by 1, 2 having count(*) > $i order by 2 desc, 1 limit $i offset $i",
			"integer:5 | integer:3 | integer:10 | integer:20"},
		{"positions in parentheses", "SELECT a FROM t GROUP BY ROLLUP ((1), 2) ORDER BY (1)",
			"select a from t group by rollup ((1), 2) order by (1)", ""},
		// Parentheses inside a positions clause may be a grouping or a
		// subquery; the lexer cannot tell, so integers stay kept
		// (safe: only sharing is lost).
		{"positions after a nested ORDER BY", "SELECT a FROM t ORDER BY (SELECT b FROM u ORDER BY 1 LIMIT 1), 2 LIMIT 3",
			"select a from t order by (select b from u order by 1 limit 1), 2 limit $i", "integer:3"},
		{"DISTINCT ON positions", "SELECT DISTINCT ON (1) a, 2 FROM t",
			"select distinct on (1) a, $i from t", "integer:2"},
		{"window PARTITION BY", "SELECT row_number() OVER (PARTITION BY 1 ORDER BY 2), 3 FROM t",
			"select row_number() over (partition by 1 order by 2), $i from t", "integer:3"},
		{"SET keeps its values", "SET shardproxy.shard = 's1'",
			"set shardproxy.shard = 's1'", ""},
		{"set_config keeps its arguments", "SELECT set_config('shardproxy.target', 'primary', false), 'x'",
			"select set_config('shardproxy.target', 'primary', false), $s", "string:'x'"},
		{"COPY keeps its options", "COPY t FROM STDIN WITH (DELIMITER ';', NULL 'x')",
			"copy t from stdin with (delimiter ';', null 'x')", ""},
		{"EXPLAIN keeps its values", "EXPLAIN (ROUTE 1) SELECT * FROM t WHERE id = 5",
			"explain (route 1) select * from t where id = 5", ""},
		{"statements are separate", "SET x = 1; SELECT 2",
			"set x = 1; select $i", "integer:2"},
		{"multi-row insert keeps its rows", "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
			"insert into t (a, b) values ($i, $s), ($i, $s)",
			"integer:1 | string:'x' | integer:2 | string:'y'"},
		{"array subscripts and slices", "SELECT a[1], a[2:3] FROM t",
			"select a[$i], a[$i:$i] from t", "integer:1 | integer:2 | integer:3"},
		{"stray dollar", "SELECT $ a",
			"select $ a", ""},
		{"unterminated string", "SELECT 'abc",
			"select $s", "string:'abc"},
		{"unterminated comment", "SELECT 1 /* x",
			"select $i", "integer:1"},
		{"empty", "  -- nothing\n", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			norm, ls := planner.Normalize(c.sql)
			if norm != c.norm {
				t.Errorf("Normalize(%q)\n got %q\nwant %q", c.sql, norm, c.norm)
			}
			if got := lits(ls); got != c.lits {
				t.Errorf("literals of %q\n got %s\nwant %s", c.sql, got, c.lits)
			}
			for _, l := range ls {
				if c.sql[l.Pos:l.Pos+len(l.Text)] != l.Text {
					t.Errorf("literal %q: Pos %d points at %q", l.Text, l.Pos, c.sql[l.Pos:])
				}
			}
		})
	}
}

func TestNormalizeKeys(t *testing.T) {
	share := [][2]string{
		{"SELECT * FROM t WHERE id = 1", "select  *  from T where ID = 22"},
		{"SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = E'b\\'c'"},
		{"SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = $$b$$"},
		{"SELECT * FROM t WHERE id = 1 -- one", "SELECT * FROM t /* two */ WHERE id = 2"},
		{"/* shard: s1 */ SELECT 1", "/* shard: s1 */ SELECT 2"},
		{"SELECT * FROM t LIMIT 10", "SELECT * FROM t LIMIT 20"},
		{"INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'b')"},
	}
	for _, p := range share {
		a, _ := planner.Normalize(p[0])
		b, _ := planner.Normalize(p[1])
		if a != b {
			t.Errorf("%q and %q should share a key: %q, %q", p[0], p[1], a, b)
		}
	}
	differ := [][2]string{
		{"INSERT INTO t (a, b) VALUES (1, 2)", "INSERT INTO t (b, a) VALUES (1, 2)"},
		{"SELECT x.a FROM t x", "SELECT y.a FROM t y"},
		{"SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (1, 2, 3)"},
		{"SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = '1'"},
		{"SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 1.0"},
		{"SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = $1"},
		{"SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = N'x'"},
		{"SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = B'1'"},
		{`SELECT "A" FROM t`, `SELECT "a" FROM t`},
		{"/* shard: s1 */ SELECT 1", "/* shard: s2 */ SELECT 1"},
		{"-- target: primary\nSELECT 1", "-- target: replica\nSELECT 1"},
		{"SELECT a, b FROM t ORDER BY 1", "SELECT a, b FROM t ORDER BY 2"},
		{"SELECT a, b FROM t GROUP BY 1", "SELECT a, b FROM t GROUP BY 2"},
		{"SELECT x::numeric(10,2)", "SELECT x::numeric(10,3)"},
		{"SELECT x::float(24)", "SELECT x::float(53)"},
		{"EXPLAIN (ROUTE 0) SELECT 1", "EXPLAIN (ROUTE 1) SELECT 1"},
		{"SET shardproxy.shard = 's1'", "SET shardproxy.shard = 's2'"},
		{"SELECT set_config('shardproxy.shard', 's1', false)", "SELECT set_config('shardproxy.shard', 's2', false)"},
		{`SELECT U&"d!0061t" UESCAPE '!'`, `SELECT U&"d!0061t" UESCAPE '#'`},
		{"SELECT a-1", "SELECT a--1"},
	}
	for _, p := range differ {
		a, _ := planner.Normalize(p[0])
		b, _ := planner.Normalize(p[1])
		if a == b {
			t.Errorf("%q and %q must not share a key: both %q", p[0], p[1], a)
		}
	}
}

func TestNormalizeDeterministicPositions(t *testing.T) {
	sql := "SELECT -1, 'a', $$b$$, N'c' FROM t"
	_, ls := planner.Normalize(sql)
	want := []planner.Literal{
		{Text: "1", Pos: 8, Kind: planner.LiteralInteger},
		{Text: "'a'", Pos: 11, Kind: planner.LiteralString},
		{Text: "$$b$$", Pos: 16, Kind: planner.LiteralString},
		{Text: "'c'", Pos: 24, Kind: planner.LiteralString},
	}
	if fmt.Sprint(ls) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", ls, want)
	}
}

func TestLiteralValue(t *testing.T) {
	cases := []struct {
		kind       planner.LiteralKind
		text, want string
		code       pgerror.Code // expected error code, "" for none
	}{
		{planner.LiteralInteger, "42", "42", ""},
		{planner.LiteralInteger, "007", "7", ""},
		{planner.LiteralInteger, "1_000_000", "1000000", ""},
		{planner.LiteralInteger, "0x1F", "31", ""},
		{planner.LiteralInteger, "0X_ff", "255", ""},
		{planner.LiteralInteger, "0o17", "15", ""},
		{planner.LiteralInteger, "0b1010", "10", ""},
		{planner.LiteralNumeric, "0xFFFFFFFFFFFFFFFFFF", "4722366482869645213695", ""},
		{planner.LiteralNumeric, "0x8000_0000", "2147483648", ""},
		{planner.LiteralNumeric, "1_0.5e3", "10.5e3", ""},
		{planner.LiteralString, "'it''s'", "it's", ""},
		{planner.LiteralString, "'a'\n -- c\n'b'", "ab", ""},
		{planner.LiteralString, `E'a\'b\\c\nd\x41\101\u00e9\U0001F600'`, "a'b\\c\ndAAé😀", ""},
		{planner.LiteralString, `e'\uD83D\uDE00'`, "😀", ""},
		{planner.LiteralString, `E'\q\x'`, "qx", ""},
		{planner.LiteralString, "E'a'\n'\\n'", "a\n", ""},
		{planner.LiteralString, `E'\uD83D'`, "", pgerror.SyntaxError},
		{planner.LiteralString, `E'\u12'`, "", pgerror.SyntaxError},
		{planner.LiteralString, `E'\xff'`, "", "22021"},
		{planner.LiteralString, `E'\0'`, "", "22021"},
		{planner.LiteralString, `U&'d\0061t\+01F600\\'`, "dat😀\\", ""},
		{planner.LiteralString, "U&'d!0061t' UESCAPE '!'", "dat", ""},
		{planner.LiteralString, "U&'d!0061t' /* c */ uescape\n'!'", "dat", ""},
		{planner.LiteralString, `U&'\D83D\DE00'`, "😀", ""},
		{planner.LiteralString, `U&'\12'`, "", pgerror.SyntaxError},
		{planner.LiteralString, "U&'x' UESCAPE 'a'", "", pgerror.SyntaxError},
		{planner.LiteralString, "$$it's$$", "it's", ""},
		{planner.LiteralString, "$fn$ $$ $fn$", " $$ ", ""},
		{planner.LiteralString, "'abc", "", pgerror.SyntaxError},
		{planner.LiteralString, "$a$abc", "", pgerror.SyntaxError},
		{planner.LiteralBitString, "B'1010'", "1010", ""},
		{planner.LiteralBitString, "X'1F'", "00011111", ""},
		{planner.LiteralBitString, "b'12'", "", pgerror.InvalidTextRepresentation},
		{planner.LiteralBitString, "x'G'", "", pgerror.InvalidTextRepresentation},
	}
	for _, c := range cases {
		got, err := planner.Literal{Text: c.text, Kind: c.kind}.Value()
		if c.code != "" {
			var pe *pgerror.Error
			if !errors.As(err, &pe) || pe.Code != c.code {
				t.Errorf("Value(%q) = %q, %v; want an error with code %s", c.text, got, err, c.code)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Value(%q) = %q, %v; want %q", c.text, got, err, c.want)
		}
	}
}

// TestLiteralValueMatchesPostgres compares Value with the constants
// PostgreSQL's own parser (pg_query) makes of the same literals.
func TestLiteralValueMatchesPostgres(t *testing.T) {
	for _, lit := range []string{
		"42", "007", "1_000", "0x1F", "0o17", "0b101", "12345678901", "0x8000000000000000", "2147483647",
		"'it''s'", "'a'\n'b'", `E'a\'b\\c\nd\x41\101'`, `E'\u00e9\U0001F600'`,
		`e'\uD83D\uDE00'`, `E'\q'`, `E'\v\b\f\r\t'`, "U&'d\\0061t'", "U&'d!0061t' UESCAPE '!'",
		`U&'\+01F600'`, "$$x'y$$", "$t$ $$ $t$", "N'abc'", "'é'",
	} {
		sql := "SELECT " + lit
		_, ls := planner.Normalize(sql)
		if len(ls) != 1 {
			t.Errorf("%q: %d literals", lit, len(ls))
			continue
		}
		got, err := ls[0].Value()
		if err != nil {
			t.Errorf("%q: %v", lit, err)
			continue
		}
		want := postgresConstant(t, sql)
		if ls[0].Kind != planner.LiteralString {
			// pg_query keeps integers too large for an int4 as written.
			if v, err := (planner.Literal{Kind: ls[0].Kind, Text: want}).Value(); err == nil {
				want = v
			}
		}
		if got != want {
			t.Errorf("%q: Value %q, PostgreSQL %q", lit, got, want)
		}
	}
}

// postgresConstant returns the value of the first constant in sql as
// pg_query's parser reads it.
func postgresConstant(t *testing.T, sql string) string {
	t.Helper()
	tree, err := pg.Parse(sql)
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	val := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val
	if tc := val.GetTypeCast(); tc != nil {
		val = tc.Arg
	}
	c := val.GetAConst()
	switch {
	case c.GetIval() != nil:
		return fmt.Sprint(c.GetIval().Ival)
	case c.GetFval() != nil:
		return c.GetFval().Fval
	case c.GetSval() != nil:
		return c.GetSval().Sval
	}
	t.Fatalf("%q: no constant in %v", sql, val)
	return ""
}

var benchNormalize = []struct{ name, sql string }{
	{"point-select", "SELECT id, name, email FROM accounts WHERE id = 42"},
	{"insert-10-rows", "INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h'), (9, 'i'), (10, 'j')"},
	{"join", "SELECT a.name, o.amount FROM accounts a JOIN orders o ON o.account_id = a.id WHERE a.id = ANY($1) AND o.status = 'open' ORDER BY o.created_at DESC LIMIT 20"},
}

func BenchmarkNormalize(b *testing.B) {
	for _, s := range benchNormalize {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s.sql)))
			for b.Loop() {
				planner.Normalize(s.sql)
			}
		})
	}
}
