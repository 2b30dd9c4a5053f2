package router

// Session settings under transaction pooling. The client's settings are
// whatever PostgreSQL itself reports as set by the session (pg_settings
// source 'session'), read back after any transaction that may have changed
// them; so ROLLBACK, SET LOCAL and set_config(..., true) are honoured by the
// server's own rules rather than imitated. Before a client's statements run
// on a server connection, settings that differ are applied with
// set_config(), which takes pg_settings' own text for every kind of value.

import (
	"maps"
	"strings"
)

// startupSettings turns startup packet parameters (application_name,
// client_encoding, options='-c name=value ...') into settings to apply.
func startupSettings(params map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		if k == "options" {
			for name, val := range parseOptions(v) {
				out[name] = val
			}
			continue
		}
		out[k] = v
	}
	return out
}

// parseOptions reads libpq's options string: -c name=value or --name=value,
// separated by spaces, with backslash escaping.
func parseOptions(s string) map[string]string {
	var args []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inArg = true
		case c == ' ' || c == '\t' || c == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var kv string
		switch {
		case a == "-c" && i+1 < len(args):
			i++
			kv = args[i]
		case strings.HasPrefix(a, "-c"):
			kv = a[2:]
		case strings.HasPrefix(a, "--"):
			kv = a[2:]
		default:
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		out[strings.ReplaceAll(name, "-", "_")] = val
	}
	return out
}

func equalSettings(a, b map[string]string) bool { return maps.Equal(a, b) }

func cloneSettings(m map[string]string) map[string]string { return maps.Clone(m) }

// settingsQuery builds the statements that turn have into want.
func settingsQuery(want, have map[string]string) string {
	var b strings.Builder
	first := true
	for _, k := range sortedKeys(want) {
		if hv, ok := have[k]; ok && hv == want[k] {
			continue
		}
		if first {
			b.WriteString("SELECT ")
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString("pg_catalog.set_config(")
		b.WriteString(quoteLiteral(k))
		b.WriteString(", ")
		b.WriteString(quoteLiteral(want[k]))
		b.WriteString(", false)")
	}
	if !first {
		b.WriteString(";")
	}
	for _, k := range sortedKeys(have) {
		if _, ok := want[k]; !ok {
			b.WriteString("RESET ")
			b.WriteString(quoteIdent(k))
			b.WriteString(";")
		}
	}
	return b.String()
}

// quoteLiteral quotes as an escape string, which means the same whatever
// standard_conforming_strings says.
func quoteLiteral(s string) string {
	var b strings.Builder
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// restoreStartupSettings follows a statement that may have reset settings
// (RESET ALL, DISCARD ALL, SET x TO DEFAULT) with a query of the proxy's
// own that puts back the client's startup settings it reset: in
// PostgreSQL a reset returns to the startup packet's values, but the
// proxy applied those with set_config, so the server would return to its
// own defaults. The client's ReadyForQuery is held until the follow-up
// is answered, so the client sees the right ParameterStatus first.
func (s *session) restoreStartupSettings() error {
	if len(s.startup) == 0 || len(s.queue) == 0 {
		return nil
	}
	last := &s.queue[len(s.queue)-1]
	if last.kind != 'Q' && last.kind != 'S' {
		return nil
	}
	var b strings.Builder
	b.WriteString("SELECT pg_catalog.set_config(v.name, v.val, false) FROM (VALUES ")
	for i, k := range sortedKeys(s.startup) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + quoteLiteral(k) + ", " + quoteLiteral(s.startup[k]) + ")")
	}
	// Custom settings are not in pg_settings: one that is empty was reset.
	b.WriteString(") AS v(name, val) WHERE CASE WHEN strpos(v.name, '.') > 0" +
		" THEN coalesce(pg_catalog.current_setting(v.name, true), '') = ''" +
		" ELSE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_settings p WHERE p.name = v.name AND p.source = 'session') END")
	if err := s.server.WriteFrame('Q', append([]byte(b.String()), 0)); err != nil {
		return &serverLostError{err: err}
	}
	last.holdReady = true
	s.queue = append(s.queue, expect{kind: 'Q', swallow: true, swallowErrors: true, forwardStatus: true, releaseHeld: true})
	return nil
}

// hasForeignCustomSettings reports whether a connection holds a custom
// (dotted) setting the client does not have.
func hasForeignCustomSettings(have, want map[string]string) bool {
	for k := range have {
		if strings.Contains(k, ".") {
			if _, ok := want[k]; !ok {
				return true
			}
		}
	}
	return false
}
