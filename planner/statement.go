package planner

// What the router must know about a simple-protocol query string before it
// forwards it: statements that manage per-client state (prepared
// statements, settings) and statements that need a whole server session.

import "strings"

// Kind is the kind of statement the router treats specially.
type Kind uint8

const (
	KindOther      Kind = iota
	KindPrepare         // PREPARE name AS ...
	KindExecute         // EXECUTE name
	KindDeallocate      // DEALLOCATE [PREPARE] name | ALL
	KindDiscardAll      // DISCARD ALL
)

// Statement describes a query string.
type Statement struct {
	Kind Kind
	// Name is the SQL-level prepared statement name (PREPARE, EXECUTE,
	// DEALLOCATE); All is set for DEALLOCATE ALL.
	Name string
	All  bool
	// Multi is true when the string holds more than one statement.
	Multi bool
	// Empty is true when it holds no statement at all.
	Empty bool
	// ChangesSettings: SET, RESET, set_config() or DISCARD somewhere, so
	// the client's settings must be read back after the transaction.
	ChangesSettings bool
	// ExecuteNames lists every EXECUTE'd name in the string.
	ExecuteNames []string
	// ManagesStatements: PREPARE or DEALLOCATE somewhere in the string.
	ManagesStatements bool
	// CustomSettings names the custom (dotted) settings the string sets
	// or resets: PostgreSQL's pg_settings does not list them, so the
	// router must ask for them by name.
	CustomSettings []string
	// Opaque: a DO block or CALL, whose effects on the session (settings,
	// locks, LISTEN, temporary tables) cannot be seen in the text.
	Opaque bool
	// ChangesSchema: CREATE, ALTER or DROP somewhere; statements prepared
	// before it may have a stale result type.
	ChangesSchema bool
	// NeedsSession names the construct that only works with a server
	// session of its own (LISTEN, session advisory locks, temporary
	// tables, WITH HOLD cursors); "" when there is none.
	NeedsSession string
}

// sessionFunctions hold state beyond the transaction on the server session.
var sessionFunctions = map[string]bool{
	"pg_advisory_lock": true, "pg_advisory_lock_shared": true,
	"pg_try_advisory_lock": true, "pg_try_advisory_lock_shared": true,
}

// Analyze describes sql. It never fails: text it cannot make sense of is
// KindOther and goes to the server, which reports the error.
func Analyze(sql string) Statement {
	if plainStatement(sql) {
		return Statement{}
	}
	return analyzeTokens(sql)
}

// leadingWords are the first words Analyze looks at.
var leadingWords = [...]string{"set", "reset", "discard", "do", "call", "alter", "drop", "listen",
	"prepare", "deallocate", "execute", "declare", "create"}

// plainStatement reports, without lexing or allocating, that Analyze would
// find nothing in sql: one statement whose first word is none of those
// Analyze looks at, with no word anywhere that its token scan reacts to.
// Every ordinary SELECT, INSERT, UPDATE and DELETE takes this path; the
// scan is conservative (a trigger word inside a string literal, a comment,
// any ';' before the end or any non-ASCII byte sends the text to the full
// analysis), so it can only be wrong by being slow. Non-ASCII text is
// left out because strings.ToLower folds a few non-ASCII letters (the
// Kelvin sign) to ASCII ones.
func plainStatement(sql string) bool {
	i := 0
	for i < len(sql) && isSpaceByte(sql[i]) {
		i++
	}
	if i == len(sql) || !isIdentStart(sql[i]) {
		return false
	}
	j := i
	for j < len(sql) && isIdentPart(sql[j]) {
		j++
	}
	if first := sql[i:j]; len(first) <= len("deallocate") {
		for _, w := range leadingWords {
			if len(w) == len(first) && w[0] == first[0]|0x20 && strings.EqualFold(first, w) {
				return false
			}
		}
	}
	for k := 0; k < len(sql); k++ {
		c := sql[k]
		if !scanStops[c] {
			continue
		}
		switch {
		case c >= 0x80:
			return false
		case c == ';':
			for k++; k < len(sql); k++ {
				if sql[k] != ';' && !isSpaceByte(sql[k]) {
					return false
				}
			}
			return true
		case c|0x20 == 's' && hasPrefixFold(sql[k:], "set_config"),
			c|0x20 == 'p' && hasPrefixFold(sql[k:], "pg_temp"),
			c|0x20 == 'a' && hasPrefixFold(sql[k:], "advisory_lock"),
			c|0x20 == 'i' && hasPrefixFold(sql[k:], "into") && mayNameTemporary(sql[k+len("into"):]):
			return false
		}
	}
	return true
}

// scanStops are the bytes plainStatement looks at: ';', non-ASCII, and
// the first letters of the words it looks for. Every other byte costs one
// table load.
var scanStops = func() (t [256]bool) {
	for c := 0x80; c < 256; c++ {
		t[c] = true
	}
	for _, c := range ";sSpPaAiI" {
		t[c] = true
	}
	return t
}()

// mayNameTemporary reports whether the text after an INTO could make it
// SELECT ... INTO TEMP (or LOCAL TEMP): its next word is temp, temporary
// or local, or a comment hides what comes next.
func mayNameTemporary(rest string) bool {
	i := 0
	for i < len(rest) && isSpaceByte(rest[i]) {
		i++
	}
	if strings.HasPrefix(rest[i:], "--") || strings.HasPrefix(rest[i:], "/*") {
		return true
	}
	j := i
	for j < len(rest) && isIdentPart(rest[j]) {
		j++
	}
	w := rest[i:j]
	return strings.EqualFold(w, "temp") || strings.EqualFold(w, "temporary") || strings.EqualFold(w, "local")
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case; prefix is lower
// case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if s[i]|0x20 != prefix[i] && s[i] != prefix[i] {
			return false
		}
	}
	return true
}

// analyzeTokens is Analyze's full path: it lexes sql.
func analyzeTokens(sql string) Statement {
	stmts := lex(sql)
	var st Statement
	switch len(stmts) {
	case 0:
		st.Empty = true
		return st
	case 1:
	default:
		st.Multi = true
	}
	for i, toks := range stmts {
		first := word(toks, 0)
		switch first {
		case "set", "reset", "discard":
			st.ChangesSettings = true
			if n, ok := dottedName(toks, 1); ok {
				st.CustomSettings = append(st.CustomSettings, n)
			} else if w := word(toks, 1); (w == "session" || w == "local") && len(toks) > 2 {
				if n, ok := dottedName(toks, 2); ok {
					st.CustomSettings = append(st.CustomSettings, n)
				}
			}
		case "do", "call":
			st.Opaque = true
		case "alter", "drop":
			st.ChangesSchema = true
		case "listen":
			st.NeedsSession = "LISTEN"
		case "prepare", "deallocate":
			st.ManagesStatements = true
		case "execute":
			if n, ok := name(toks, 1); ok {
				st.ExecuteNames = append(st.ExecuteNames, n)
			}
		case "declare":
			for j := 1; j+1 < len(toks); j++ {
				if word(toks, j) == "with" && word(toks, j+1) == "hold" {
					st.NeedsSession = "a WITH HOLD cursor"
				}
			}
		case "create":
			st.ChangesSchema = true
			if w := word(toks, 1); w == "temp" || w == "temporary" ||
				(w == "local" || w == "global") && (word(toks, 2) == "temp" || word(toks, 2) == "temporary") {
				st.NeedsSession = "a temporary table"
			}
		}
		for j, t := range toks {
			if t.kind != tokWord {
				continue
			}
			if t.text == "set_config" {
				st.ChangesSettings = true
				if j+2 < len(toks) && toks[j+1].text == "(" && toks[j+2].kind == tokString && strings.Contains(toks[j+2].text, ".") {
					st.CustomSettings = append(st.CustomSettings, strings.ToLower(toks[j+2].text))
				}
			}
			if t.text == "into" && (word(toks, j+1) == "temp" || word(toks, j+1) == "temporary" ||
				word(toks, j+1) == "local" && (word(toks, j+2) == "temp" || word(toks, j+2) == "temporary")) {
				st.NeedsSession = "a temporary table"
			}
			if t.text == "pg_temp" && j+1 < len(toks) && toks[j+1].text == "." && first == "create" {
				st.NeedsSession = "a temporary table"
			}
			if sessionFunctions[t.text] && j+1 < len(toks) && toks[j+1].text == "(" {
				st.NeedsSession = "a session-level advisory lock (" + t.text + ")"
			}
		}
		if i == 0 && !st.Multi {
			analyzeSingle(&st, first, toks)
		}
	}
	return st
}

func analyzeSingle(st *Statement, first string, toks []token) {
	switch first {
	case "prepare":
		if n, ok := name(toks, 1); ok {
			st.Kind, st.Name = KindPrepare, n
		}
	case "execute":
		if n, ok := name(toks, 1); ok {
			st.Kind, st.Name = KindExecute, n
		}
	case "deallocate":
		i := 1
		if word(toks, i) == "prepare" {
			i++
		}
		if len(toks) != i+1 {
			return
		}
		if word(toks, i) == "all" {
			st.Kind, st.All = KindDeallocate, true
		} else if n, ok := name(toks, i); ok {
			st.Kind, st.Name = KindDeallocate, n
		}
	case "discard":
		if len(toks) == 2 && word(toks, 1) == "all" {
			st.Kind = KindDiscardAll
		}
	}
}

// dottedName reads a custom setting name such as myapp.tenant at i.
func dottedName(toks []token, i int) (string, bool) {
	if i+2 < len(toks) && (toks[i].kind == tokWord || toks[i].kind == tokIdent) && toks[i+1].text == "." &&
		(toks[i+2].kind == tokWord || toks[i+2].kind == tokIdent) {
		return strings.ToLower(toks[i].text + "." + toks[i+2].text), true
	}
	return "", false
}

func word(toks []token, i int) string {
	if i < len(toks) && toks[i].kind == tokWord {
		return toks[i].text
	}
	return ""
}

func name(toks []token, i int) (string, bool) {
	if i >= len(toks) {
		return "", false
	}
	switch toks[i].kind {
	case tokWord, tokIdent:
		return toks[i].text, true
	}
	return "", false
}

// PrepareBody returns the text after "PREPARE name [(types)] AS" in a
// PREPARE statement; the router replays the whole statement, so it only
// needs this for diagnostics.
func PrepareBody(sql string) string {
	i := strings.Index(strings.ToLower(sql), " as ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(sql[i+4:])
}
