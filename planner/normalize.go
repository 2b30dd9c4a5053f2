package planner

// The plan cache's key: a statement's text with its literal values taken
// out, so statements that differ only in those values share one cached plan
// (DESIGN.md section 3). pg_query's fingerprint is not used because it
// merges statements whose plans differ: it maps (a,b) and (b,a), different
// aliases, and IN lists of different lengths to one value. This lexer keeps
// everything but the values, following PostgreSQL's own scanner (scan.l):
//
//   - every literal (integer, numeric, string in all its forms, bit string)
//     becomes a placeholder that names its kind: $i, $n, $s or $b. Each
//     literal is its own placeholder, so an IN list keeps its length;
//   - a minus sign stays an operator ("-1" is "-" and the literal 1), as the
//     scanner has it; the parser folds it into the constant later;
//   - unquoted identifiers and keywords are lower-cased (ASCII only, like
//     PostgreSQL); quoted identifiers and $1 parameters are kept as written;
//   - comments are dropped, except hints (a comment whose text starts with
//     shard or target followed by ':' or '='): they change routing;
//   - runs of whitespace outside literals become one space.
//
// Some constants are part of a statement's shape rather than values, and
// are kept verbatim: a plan built for one value would be wrong for another.
// They are integers in ORDER BY, GROUP BY and PARTITION BY clauses and in
// DISTINCT ON lists (output column positions), integers in type modifiers
// (numeric(10,2), varchar(20), float(24) which picks float4 or float8),
// every literal of a SET, COPY or EXPLAIN statement and in set_config()'s
// arguments (setting names, hints, COPY's delimiter, EXPLAIN (ROUTE 0)),
// and a string whose continuation lines hold a hint comment. The rules err
// towards keeping: a literal kept for nothing costs only cache sharing, one
// replaced wrongly would hand a statement another's plan.
//
// The normalized text is a key, never sent to a server. A placeholder is
// '$' and a letter, so it cannot be taken for a $1 parameter; a space is
// put before one that would run into an identifier (date'2024-01-01' is
// date $s). Integers keep PostgreSQL's split: up to 2^31-1 they are
// integers, larger ones numerics (int8 or numeric to the parser), so the
// statements sharing a key have the same kinds of constants.
//
// Literals are reported in text order with their offsets. A plan built from
// one statement is re-bound to another with the same key by position: the
// k-th literal of one is the k-th of the other. An A_Const whose location is
// not a literal's Pos is either a kept constant (same value for every
// statement with this key) or a negated number, whose location PostgreSQL
// reports at the minus sign.
//
// Like pg_query, Normalize assumes standard_conforming_strings is on.

import "strings"

// LiteralKind is the lexical kind of a literal.
type LiteralKind uint8

const (
	LiteralInteger   LiteralKind = iota + 1 // 42, 0x2A, 1_000 (up to 2^31-1): placeholder $i
	LiteralNumeric                          // 4.2, .5, 1e10, 12345678901: placeholder $n
	LiteralString                           // 'x', E'x', U&'x', N'x', $$x$$: placeholder $s
	LiteralBitString                        // B'101', X'1F': placeholder $b
)

func (k LiteralKind) String() string {
	switch k {
	case LiteralInteger:
		return "integer"
	case LiteralNumeric:
		return "numeric"
	case LiteralString:
		return "string"
	case LiteralBitString:
		return "bitstring"
	}
	return "invalid"
}

// placeholder returns the letter that follows '$' in the normalized text.
func (k LiteralKind) placeholder() byte {
	switch k {
	case LiteralInteger:
		return 'i'
	case LiteralNumeric:
		return 'n'
	case LiteralString:
		return 's'
	}
	return 'b'
}

// Literal is one constant taken out of a statement by Normalize.
type Literal struct {
	// Text is the literal as written, a substring of the statement: prefix,
	// quotes, escapes and continuation lines included (E'it\'s', U&'x'
	// UESCAPE '!', 'a'<newline>'b'). An N'x' literal's text is 'x': the
	// normalized text spells the prefix as the type name, nchar, as
	// PostgreSQL's scanner does. Value decodes it.
	Text string
	// Pos is the byte offset of Text in the statement.
	Pos  int
	Kind LiteralKind
}

// Normalize returns the plan-cache form of sql and its literals in text
// order (nil when there are none). The literals' texts are substrings of
// sql. See the top of this file for the rules.
func Normalize(sql string) (norm string, literals []Literal) {
	var buf [normStackBytes]byte
	var lits [normStackLiterals]Literal
	out, ls := appendNormalized(buf[:0], lits[:0], sql, nil)
	return string(out), cloneLiterals(ls)
}

// Sizes of the scratch buffers Normalize and the cache keep on the stack;
// longer statements spill to the heap.
const (
	normStackBytes    = 512
	normStackLiterals = 24
)

func cloneLiterals(ls []Literal) []Literal {
	if len(ls) == 0 {
		return nil
	}
	return append(make([]Literal, 0, len(ls)), ls...)
}

// normTrace records, for tests, where the placeholders are in the output
// and which literals were kept verbatim.
type normTrace struct {
	marks []int    // output offset of each placeholder, one per literal
	kept  [][2]int // [start, end) in the input of each literal kept verbatim (or inside a kept identifier)
}

// appendNormalized appends the normalized form of sql to out and its
// literals to lits. The lexer (normalizer.next) only reads; writing
// happens here, on local slices, so callers' stack buffers stay on the
// stack (a slice stored through a pointer would move them to the heap).
func appendNormalized(out []byte, lits []Literal, sql string, trace *normTrace) ([]byte, []Literal) {
	n := normalizer{src: sql, trace: trace, stmtStart: true}
	var sep byte // separator owed before the next token: 0, ' ' or '\n'
	for i := 0; i < len(sql); {
		tok, start, end, kind := n.next(i)
		i = end
		if tok == normSpace {
			if sep == 0 {
				sep = ' '
			}
			continue
		}
		if sep != 0 && len(out) > 0 { // leading whitespace vanishes
			out = append(out, sep)
		}
		sep = 0
		switch tok {
		case normText:
			out = append(out, sql[start:end]...)
		case normLineHint:
			out = append(out, sql[start:end]...)
			sep = '\n' // the comment runs to the end of the line
		case normWord:
			w := len(out)
			out = append(out, sql[start:end]...)
			for k := w; k < len(out); k++ {
				if c := out[k]; c >= 'A' && c <= 'Z' {
					out[k] = c + 'a' - 'A'
				}
			}
		case normLiteral, normNational:
			// A space where the placeholder would run into the token
			// before it: date'2024-01-01' is date $s, not date$s. The
			// boundary is there in the input.
			if k := len(out); k > 0 && isIdentPart(out[k-1]) {
				out = append(out, ' ')
			}
			if tok == normNational {
				out = append(out, "nchar "...)
			}
			if trace != nil {
				trace.marks = append(trace.marks, len(out))
			}
			out = append(out, '$', kind.placeholder())
			lits = append(lits, Literal{Text: sql[start:end], Pos: start, Kind: kind})
		}
	}
	return out, lits
}

// normTok is what the writer does with a token.
type normTok uint8

const (
	normSpace    normTok = iota // whitespace or a dropped comment
	normText                    // written as is
	normWord                    // written lower-cased
	normLineHint                // a -- hint, written as is, then a newline
	normLiteral                 // a placeholder for the literal
	normNational                // nchar and a placeholder for the literal (N'...')
)

// prevToken is the little that the keep-verbatim rules must know about the
// previous token. Comments and whitespace do not change it.
type prevToken uint8

const (
	prevOther      prevToken = iota
	prevDistinct             // DISTINCT
	prevDistinctOn           // DISTINCT ON: a '(' starts a list of positions
	prevCast                 // :: (or a '.' inside a type name after it)
	prevTypeName             // a word that takes a type modifier, or any type name after ::
	prevSetConfig            // set_config: a '(' starts arguments kept verbatim
)

// maxTrackedDepth: parentheses nested deeper than this are not tracked
// one by one; every literal inside them is kept verbatim.
const maxTrackedDepth = 64

// normalizer is the lexer and the context the keep-verbatim rules need.
type normalizer struct {
	src   string
	trace *normTrace

	depth int // parenthesis depth, never below 0
	// Bit d of keepInt: integers at depth >= d are kept verbatim (an ORDER
	// BY or GROUP BY clause that started at depth d, or a type modifier or
	// DISTINCT ON list whose '(' opened depth d). keepAll: the same for
	// every literal (set_config's arguments). A bit is cleared when its
	// parenthesis closes; keepInt's also by a keyword that ends the clause.
	keepInt, keepAll uint64
	stmtKeep         bool // SET, COPY or EXPLAIN statement: every literal verbatim
	stmtStart        bool // no token yet in this statement
	prev             prevToken
	afterCast        bool // prev is prevTypeName because the name follows ::
}

// next reads the token at i. For literals start and end are the
// literal's text (for N'x', the 'x'); end is where the next token begins.
func (n *normalizer) next(i int) (tok normTok, start, end int, kind LiteralKind) {
	s := n.src
	c := s[i]
	switch {
	case isSpaceByte(c):
		j := i + 1
		for j < len(s) && isSpaceByte(s[j]) {
			j++
		}
		return normSpace, i, j, 0
	case c == '-' && i+1 < len(s) && s[i+1] == '-':
		end := lineCommentEnd(s, i)
		if isHint(s[i+2 : end]) {
			return normLineHint, i, end, 0
		}
		return normSpace, i, end, 0
	case c == '/' && i+1 < len(s) && s[i+1] == '*':
		end, closed := blockCommentEnd(s, i)
		body := s[i+2 : end]
		if closed {
			body = s[i+2 : end-2]
		}
		if isHint(body) {
			return normText, i, end, 0
		}
		return normSpace, i, end, 0
	case c == '\'':
		end, hint := scanQuoted(s, i, false, true)
		tok, kind := n.literal(i, end, LiteralString, hint)
		return tok, i, end, kind
	case c == '"':
		return n.quotedIdent(i, i)
	case c == '$':
		return n.dollar(i)
	case isIdentStart(c):
		return n.word(i)
	case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
		end, kind := scanNumber(s, i)
		tok, kind := n.literal(i, end, kind, false)
		return tok, i, end, kind
	case c == '(':
		n.open()
		return normText, i, i + 1, 0
	case c == ')':
		n.close()
		return normText, i, i + 1, 0
	case c == ';':
		n.depth, n.keepInt, n.keepAll = 0, 0, 0
		n.stmtKeep, n.stmtStart = false, true
		n.prev, n.afterCast = prevOther, false
		return normText, i, i + 1, 0
	case c == '.' && i+1 < len(s) && s[i+1] == '.':
		// One token for PostgreSQL too: "..5" is .. and 5, not . and .5.
		n.token(prevOther)
		return normText, i, i + 2, 0
	case c == ':' && i+1 < len(s) && s[i+1] == ':':
		n.token(prevCast)
		return normText, i, i + 2, 0
	case c == '.' && n.prev == prevTypeName && n.afterCast:
		// A qualified type name after :: (x::myschema.mytype(3)).
		n.token(prevCast)
		return normText, i, i + 1, 0
	}
	n.token(prevOther)
	return normText, i, i + 1, 0
}

// token records that a token was read; prev is what it was.
func (n *normalizer) token(prev prevToken) {
	n.prev, n.afterCast, n.stmtStart = prev, false, false
}

// open enters a parenthesis.
func (n *normalizer) open() {
	n.depth++
	if d := n.depth; d < maxTrackedDepth {
		switch n.prev {
		case prevTypeName, prevDistinctOn:
			n.keepInt |= 1 << d
		case prevSetConfig:
			n.keepAll |= 1 << d
		}
	}
	n.token(prevOther)
}

func (n *normalizer) close() {
	if d := n.depth; d > 0 {
		if d < maxTrackedDepth {
			m := uint64(1)<<d - 1
			n.keepInt &= m
			n.keepAll &= m
		}
		n.depth--
	}
	n.token(prevOther)
}

// literal decides whether the literal s[i:end] becomes a placeholder
// (normLiteral) or is kept verbatim (normText). hint: a hint comment sits
// inside it (in a string's continuation), so it is kept.
func (n *normalizer) literal(i, end int, kind LiteralKind, hint bool) (normTok, LiteralKind) {
	n.token(prevOther)
	if hint || n.keepsAll() || kind == LiteralInteger && n.keepInt != 0 {
		if n.trace != nil {
			n.trace.kept = append(n.trace.kept, [2]int{i, end})
		}
		return normText, 0
	}
	return normLiteral, kind
}

// keepsAll: every literal here is kept verbatim.
func (n *normalizer) keepsAll() bool {
	return n.stmtKeep || n.keepAll != 0 || n.depth >= maxTrackedDepth
}

// quotedIdent reads the quoted identifier at q (start is where its U&
// prefix begins, if any).
func (n *normalizer) quotedIdent(start, q int) (normTok, int, int, LiteralKind) {
	s := n.src
	j := q + 1
	for j < len(s) {
		if s[j] == '"' {
			if j+1 < len(s) && s[j+1] == '"' {
				j += 2
				continue
			}
			j++
			break
		}
		j++
	}
	if start != q {
		// U&"d!0061t" UESCAPE '!': the escape character is part of the
		// name, so the clause is kept with it.
		if end, _, ok := uescapeClause(s, j); ok {
			j = end
			if n.trace != nil {
				n.trace.kept = append(n.trace.kept, [2]int{start, j})
			}
		}
	}
	n.name()
	return normText, start, j, 0
}

// name records that an identifier was read: after ::, a type name.
func (n *normalizer) name() {
	cast := n.prev == prevCast
	n.token(prevOther)
	if cast {
		n.prev, n.afterCast = prevTypeName, true
	}
}

// dollar reads a '$' at i: a parameter, a dollar-quoted string, or a stray
// '$' (a syntax error for PostgreSQL, written as is).
func (n *normalizer) dollar(i int) (normTok, int, int, LiteralKind) {
	s := n.src
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		n.token(prevOther)
		return normText, i, j, 0
	}
	for j < len(s) && isDollarTagByte(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		n.token(prevOther)
		return normText, i, i + 1, 0
	}
	tag := s[i : j+1]
	end := len(s)
	if k := strings.Index(s[j+1:], tag); k >= 0 {
		end = j + 1 + k + len(tag)
	}
	tok, kind := n.literal(i, end, LiteralString, false)
	return tok, i, end, kind
}

// word reads an identifier or keyword at i, or a literal with a letter
// prefix (E'x', B'1', X'f', N'x', U&'x') or a U&"x" identifier.
func (n *normalizer) word(i int) (normTok, int, int, LiteralKind) {
	s := n.src
	if i+1 < len(s) {
		switch c, d := s[i]|0x20, s[i+1]; {
		case d == '\'' && (c == 'e' || c == 'b' || c == 'x'):
			kind := LiteralString
			if c != 'e' {
				kind = LiteralBitString
			}
			end, hint := scanQuoted(s, i+1, c == 'e', c == 'e')
			tok, kind := n.literal(i, end, kind, hint)
			return tok, i, end, kind
		case d == '\'' && c == 'n':
			// PostgreSQL reads N'x' as the type name nchar and a string,
			// and so does the normalized text.
			end, hint := scanQuoted(s, i+1, false, true)
			if hint || n.keepsAll() {
				tok, _ := n.literal(i, end, LiteralString, true)
				return tok, i, end, 0
			}
			tok, kind := n.literal(i+1, end, LiteralString, false)
			if tok == normLiteral {
				tok = normNational
			}
			return tok, i + 1, end, kind
		case d == '&' && c == 'u' && i+2 < len(s) && s[i+2] == '\'':
			end, hint := scanQuoted(s, i+2, false, true)
			if e, h, ok := uescapeClause(s, end); ok {
				end, hint = e, hint || h
			}
			tok, kind := n.literal(i, end, LiteralString, hint)
			return tok, i, end, kind
		case d == '&' && c == 'u' && i+2 < len(s) && s[i+2] == '"':
			return n.quotedIdent(i, i+2)
		}
	}
	j, upper := i, false
	for j < len(s) && isIdentPart(s[j]) {
		upper = upper || s[j] >= 'A' && s[j] <= 'Z'
		j++
	}
	n.keyword(s[i:j])
	if !upper {
		return normText, i, j, 0
	}
	return normWord, i, j, 0
}

// keyword updates the context after the identifier or keyword w.
func (n *normalizer) keyword(w string) {
	cast, prev := n.prev == prevCast, n.prev
	stmtStart := n.stmtStart
	n.token(prevOther)
	if cast {
		n.prev, n.afterCast = prevTypeName, true
		return
	}
	if len(w) < 2 || len(w) > len("current_timestamp") {
		return
	}
	var lw [len("current_timestamp")]byte
	for k := 0; k < len(w); k++ {
		c := w[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lw[k] = c
	}
	switch string(lw[:len(w)]) {
	case "by":
		// ORDER BY, GROUP BY, PARTITION BY: output column positions
		// until the clause ends.
		if n.depth < maxTrackedDepth {
			n.keepInt |= 1 << n.depth
		}
	case "distinct":
		n.prev = prevDistinct
	case "on":
		if prev == prevDistinct {
			n.prev = prevDistinctOn
			return
		}
		n.endClause()
	case "limit", "offset", "fetch", "for", "having", "window",
		"union", "intersect", "except", "returning":
		n.endClause()
	case "set", "copy", "explain":
		if stmtStart {
			n.stmtKeep = true
		}
	case "set_config":
		n.prev = prevSetConfig
	case "numeric", "decimal", "dec", "float", "varchar", "char", "character",
		"varying", "nchar", "bpchar", "bit", "time", "timetz", "timestamp",
		"timestamptz", "interval", "second", "current_time", "current_timestamp",
		"localtime", "localtimestamp":
		n.prev = prevTypeName
	}
}

// endClause ends a positions clause at the current depth.
func (n *normalizer) endClause() {
	if n.depth < maxTrackedDepth {
		n.keepInt &^= 1 << n.depth
	}
}

// scanQuoted returns the offset after the quoted literal whose opening
// quote is at q, following continuation lines ('a'<newline>'b' is one
// literal). esc: backslash escapes (E'x'); dbl: two quotes are one (not
// in B'1' or X'f'). hint: a continuation holds a hint comment. An
// unterminated literal runs to the end.
func scanQuoted(s string, q int, esc, dbl bool) (end int, hint bool) {
	j := q + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			if esc {
				j += 2
				continue
			}
		case '\'':
			if dbl && j+1 < len(s) && s[j+1] == '\'' {
				j += 2
				continue
			}
			j++
			k, h := quoteContinue(s, j)
			if k < 0 {
				return j, hint
			}
			hint = hint || h
			j = k + 1
			continue
		}
		j++
	}
	return len(s), hint
}

// quoteContinue looks for a continuation after a closing quote at j:
// whitespace holding at least one newline, and -- comments, then a quote.
// It returns the offset of that quote, or -1.
func quoteContinue(s string, j int) (int, bool) {
	newline, hint := false, false
	for j < len(s) {
		switch c := s[j]; {
		case c == '\n' || c == '\r':
			newline = true
			j++
		case isSpaceByte(c):
			j++
		case c == '-' && j+1 < len(s) && s[j+1] == '-':
			end := lineCommentEnd(s, j)
			hint = hint || isHint(s[j+2:end])
			j = end
		case c == '\'' && newline:
			return j, hint
		default:
			return -1, false
		}
	}
	return -1, false
}

// uescapeClause looks for UESCAPE 'c' after a U& string or identifier
// ending at j, across whitespace and comments as PostgreSQL's parser does.
// It returns the offset after the clause.
func uescapeClause(s string, j int) (end int, hint, ok bool) {
	k, h1 := skipSpaceAndComments(s, j)
	const kw = "uescape"
	if len(s)-k < len(kw) || !equalFoldASCII(s[k:k+len(kw)], kw) ||
		k+len(kw) < len(s) && isIdentPart(s[k+len(kw)]) {
		return 0, false, false
	}
	m, h2 := skipSpaceAndComments(s, k+len(kw))
	var h3 bool
	switch {
	case m < len(s) && s[m] == '\'':
		end, h3 = scanQuoted(s, m, false, true)
	case m+1 < len(s) && s[m]|0x20 == 'e' && s[m+1] == '\'':
		end, h3 = scanQuoted(s, m+1, true, true)
	default:
		return 0, false, false
	}
	return end, h1 || h2 || h3, true
}

// skipSpaceAndComments returns the offset of the next token at or after j.
func skipSpaceAndComments(s string, j int) (int, bool) {
	hint := false
	for j < len(s) {
		switch {
		case isSpaceByte(s[j]):
			j++
		case s[j] == '-' && j+1 < len(s) && s[j+1] == '-':
			end := lineCommentEnd(s, j)
			hint = hint || isHint(s[j+2:end])
			j = end
		case s[j] == '/' && j+1 < len(s) && s[j+1] == '*':
			end, closed := blockCommentEnd(s, j)
			body := s[j+2 : end]
			if closed {
				body = s[j+2 : end-2]
			}
			hint = hint || isHint(body)
			j = end
		default:
			return j, hint
		}
	}
	return j, hint
}

// scanNumber returns the end and kind of the number at i (a digit, or a
// '.' followed by one), as scan.l reads it: 0x/0o/0b integers, underscores
// between digits, "1..2" as 1 .. 2, an exponent only with digits.
func scanNumber(s string, i int) (int, LiteralKind) {
	if s[i] == '0' && i+2 < len(s) {
		var ok func(byte) bool
		var base uint64
		switch s[i+1] | 0x20 {
		case 'x':
			ok, base = isHexDigit, 16
		case 'o':
			ok, base = isOctDigit, 8
		case 'b':
			ok, base = isBinDigit, 2
		}
		if ok != nil {
			j := i + 2
			for {
				if j < len(s) && ok(s[j]) {
					j++
				} else if j+1 < len(s) && s[j] == '_' && ok(s[j+1]) {
					j += 2
				} else {
					break
				}
			}
			if j > i+2 {
				return j, integerKind(s[i+2:j], base)
			}
		}
	}
	kind := LiteralInteger
	j := i
	if s[j] != '.' {
		j = scanDecimal(s, j)
	}
	if j < len(s) && s[j] == '.' {
		if j > i && j+1 < len(s) && s[j+1] == '.' {
			return j, integerKind(s[i:j], 10)
		}
		kind = LiteralNumeric
		j++
		if j < len(s) && isDigit(s[j]) {
			j = scanDecimal(s, j)
		}
	}
	if j < len(s) && s[j]|0x20 == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			return scanDecimal(s, k), LiteralNumeric
		}
	}
	if kind == LiteralInteger {
		kind = integerKind(s[i:j], 10)
	}
	return j, kind
}

// integerKind: PostgreSQL's scanner makes an integer that does not fit in
// an int4 a numeric constant (the parser then types it int8 or numeric),
// and so does Normalize, so that statements sharing a key have the same
// constants in their parse trees. digits may hold underscores.
func integerKind(digits string, base uint64) LiteralKind {
	var v uint64
	for k := 0; k < len(digits); k++ {
		c := digits[k]
		if c == '_' {
			continue
		}
		v = v*base + uint64(hexVal(c))
		if v > 1<<31-1 {
			return LiteralNumeric
		}
	}
	return LiteralInteger
}

// scanDecimal returns the end of the digits at i, single underscores
// between digits included.
func scanDecimal(s string, i int) int {
	for {
		if i < len(s) && isDigit(s[i]) {
			i++
		} else if i+1 < len(s) && s[i] == '_' && isDigit(s[i+1]) {
			i += 2
		} else {
			return i
		}
	}
}

// lineCommentEnd returns the offset of the newline ending the -- comment
// at i, or the end of s.
func lineCommentEnd(s string, i int) int {
	for j := i + 2; j < len(s); j++ {
		if s[j] == '\n' || s[j] == '\r' {
			return j
		}
	}
	return len(s)
}

// blockCommentEnd returns the offset after the (nested) /* comment at i;
// closed is false when it runs to the end of s.
func blockCommentEnd(s string, i int) (end int, closed bool) {
	depth := 1
	j := i + 2
	for j+1 < len(s) {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j += 2
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j, true
			}
		default:
			j++
		}
	}
	return len(s), false
}

// isHint reports whether a comment's text is a routing hint: after
// leading whitespace, "shard" or "target" (any case), optional blanks, then
// ':' or '='. This is wider than the hint syntax on purpose: a comment kept
// in the key only costs sharing, a hint dropped from it would route wrong.
func isHint(body string) bool {
	i := 0
	for i < len(body) && isSpaceByte(body[i]) {
		i++
	}
	body = body[i:]
	for _, w := range [...]string{"shard", "target"} {
		if len(body) >= len(w) && equalFoldASCII(body[:len(w)], w) {
			rest := body[len(w):]
			for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
				rest = rest[1:]
			}
			if len(rest) > 0 && (rest[0] == ':' || rest[0] == '=') {
				return true
			}
		}
	}
	return false
}

// equalFoldASCII compares s with the lower-case ASCII word w.
func equalFoldASCII(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// isSpaceByte: PostgreSQL's whitespace (scan.l's space).
func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isOctDigit(c byte) bool { return c >= '0' && c <= '7' }
func isBinDigit(c byte) bool { return c == '0' || c == '1' }
func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isDollarTagByte: scan.l's dolq_cont (identifier bytes without '$').
func isDollarTagByte(c byte) bool { return c != '$' && isIdentPart(c) }
