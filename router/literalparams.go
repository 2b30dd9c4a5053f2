package router

// Literal parameters (pool.literal_parameters, off by default). A simple
// query such as pgbench's `SELECT abalance FROM pgbench_accounts WHERE aid
// = 4711` is parsed and planned by PostgreSQL every time, because the value
// is part of the text. With the option on, the proxy sends it as a named
// prepared statement with the routing key's literals as parameters (`WHERE
// aid = $1`), Bind, Describe, Execute and Sync, and shows the client the
// answer a simple query gets: the server skips parsing and, once its
// generic plan is as good, planning.
//
// Only literals whose meaning cannot change are rewritten: the sharding
// key compared with = or IN, where a parameter takes the key column's type
// exactly as the literal would have. A quoted literal has no type of its
// own, so it always qualifies; a bare number qualifies only when the key's
// type holds every value of the number's own type (an int4 literal against
// an int4, int8 or numeric key; an int2 key only when the value fits), so
// that no comparison that PostgreSQL would answer with "false" becomes an
// out-of-range error. Negated or cast literals, statements with other
// literals (whose every value would make another server statement) and
// every statement with side effects on the session stay as written.

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/planner"
)

// literalRewrite is the current simple query's rewritten form; ok is
// false when it goes to the server as written. Its buffers are reused.
type literalRewrite struct {
	ok     bool
	text   []byte   // the statement with $n for the key literals
	values []string // the parameters, in $n order
	// names caches server statement names by rewritten text, under the
	// search_path namesPath.
	names     map[string]string
	namesPath string
	// keys is scratch for the keys in text order.
	keys []planner.KeyValue
}

// maxRewriteNames bounds literalRewrite.names; it starts over when full.
const maxRewriteNames = 256

// planLiteralParams decides whether the simple query sql, routed to one
// shard by rt, is rewritten, and prepares the rewrite.
func (s *session) planLiteralParams(rt *routing, sql string) {
	lr := &s.litRewrite
	lr.ok = false
	if !s.r.cfg.LiteralParameters || s.mode != PoolTransaction || s.txStatus == 'E' {
		return
	}
	route, isRoute := rt.plan.Root.(*planner.Route)
	a := rt.plan.Analysis
	if !isRoute || a == nil || route.SQL != "" || route.NewKey != nil || len(route.Keys) == 0 || a.Inner != nil {
		return
	}
	switch a.Kind {
	case planner.SelectStatement, planner.UpdateStatement, planner.DeleteStatement:
	default:
		return
	}
	// $ would be a parameter or a dollar quote, ; a second statement.
	if strings.ContainsAny(strings.TrimRight(sql, "; \t\r\n"), "$;") {
		return
	}
	lr.keys = append(lr.keys[:0], route.Keys...)
	for _, k := range lr.keys {
		if k.Lit == 0 || k.Lit > len(rt.lits) || k.Param != 0 || k.Negate || k.Cast != "" ||
			!literalKeepsMeaning(rt.lits[k.Lit-1], route.KeyType) || !comparedForEquality(sql, rt.lits, k.Lit-1) {
			return
		}
	}
	// Text order; a literal named by two keys is one parameter.
	keys := lr.keys
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && rt.lits[keys[j].Lit-1].Pos < rt.lits[keys[j-1].Lit-1].Pos; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	text := lr.text[:0]
	values := lr.values[:0]
	at, last := 0, 0
	for _, k := range keys {
		if k.Lit == last {
			continue
		}
		last = k.Lit
		lit := rt.lits[k.Lit-1]
		v, err := lit.Value()
		if err != nil {
			return
		}
		values = append(values, v)
		text = append(text, sql[at:lit.Pos]...)
		text = append(text, '$')
		text = strconv.AppendInt(text, int64(len(values)), 10)
		at = lit.Pos + len(lit.Text)
	}
	if len(values) != len(rt.lits) {
		// Another literal stays in the text: each of its values would be
		// a server statement of its own, prepared once and evicted
		// unused (an UPDATE ... SET n = n + 5 WHERE id = 7).
		return
	}
	text = append(text, sql[at:]...)
	lr.text, lr.values, lr.ok = text, values, true
}

// literalKeepsMeaning: lit, written where a value of keyType is expected,
// means the same as a parameter of keyType holding its value.
func literalKeepsMeaning(lit planner.Literal, keyType string) bool {
	switch lit.Kind {
	case planner.LiteralString:
		return true // unknown-typed either way
	case planner.LiteralInteger:
		switch keyType {
		case "int4", "int8", "numeric":
			return true
		case "int2":
			v, err := lit.Value()
			if err != nil {
				return false
			}
			n, err := strconv.ParseInt(v, 10, 16)
			return err == nil && n >= -32768 && n <= 32767
		}
	case planner.LiteralNumeric:
		// An int8-sized integer against an int8 key, or anything numeric
		// against a numeric key; a decimal against an integer key would
		// turn "false" into an error.
		switch keyType {
		case "numeric":
			return true
		case "int8":
			v, err := lit.Value()
			if err != nil {
				return false
			}
			_, err = strconv.ParseInt(v, 10, 64)
			return err == nil
		}
	}
	return false
}

// comparedForEquality: literal i stands right of an = or in an IN list of
// literals, where a parameter takes the other side's type. Elsewhere (an
// ARRAY[...], a row comparison, a function argument) a parameter could be
// typed otherwise than the literal was.
func comparedForEquality(sql string, lits []planner.Literal, i int) bool {
	j := lastNonSpace(sql, lits[i].Pos)
	if j < 0 {
		return false
	}
	if sql[j] == '=' {
		return j == 0 || !strings.ContainsRune("<>!=", rune(sql[j-1]))
	}
	// Back over the list's earlier elements, each a literal, to its "(".
	for sql[j] == ',' {
		end := lastNonSpace(sql, j) + 1
		prev := -1
		for m := range lits {
			if lits[m].Pos+len(lits[m].Text) == end {
				prev = m
				break
			}
		}
		if prev < 0 {
			return false
		}
		if j = lastNonSpace(sql, lits[prev].Pos); j < 0 {
			return false
		}
	}
	if sql[j] != '(' {
		return false
	}
	w := lastNonSpace(sql, j)
	return w >= 1 && strings.EqualFold(sql[w-1:w+1], "in") && (w < 2 || !isIdentByte(sql[w-2]))
}

// lastNonSpace is the index of the last byte before end that is not white
// space, or -1.
func lastNonSpace(sql string, end int) int {
	for j := end - 1; j >= 0; j-- {
		switch sql[j] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
		default:
			return j
		}
	}
	return -1
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// rewriteServerName is the server statement for the rewritten text under
// the session's search_path.
func (s *session) rewriteServerName() string {
	lr := &s.litRewrite
	searchPath := s.settings["search_path"]
	if lr.names == nil || lr.namesPath != searchPath {
		lr.names, lr.namesPath = make(map[string]string), searchPath
	}
	if name, ok := lr.names[string(lr.text)]; ok {
		return name
	}
	if len(lr.names) >= maxRewriteNames {
		clear(lr.names)
	}
	name := serverStatementName(string(lr.text), nil, "search_path="+searchPath)
	lr.names[string(lr.text)] = name
	return name
}

// sendLiteralParams sends the rewritten query as Parse (when the server
// connection lacks it), Bind, Describe, Execute and Sync, and queues their
// answers so that the client sees what a simple query gets: a
// RowDescription (no NoData), the rows, the command tag and ReadyForQuery.
func (s *session) sendLiteralParams() error {
	lr := &s.litRewrite
	lr.ok = false
	sc := s.server
	name := s.rewriteServerName()
	epoch := s.r.schemaEpoch.Load()
	buf := s.scratch[:0]
	present, stale := sc.lookupPrepared(name, epoch)
	if stale {
		if err := s.closeServerStatement(name); err != nil {
			return err
		}
	}
	if !present || stale {
		// No parameter types: the server infers them.
		buf = appendParse(buf, name, lr.text, nil)
		s.queue = append(s.queue, expect{kind: 'P', swallow: true, serverName: name, epoch: epoch})
	}
	buf = s.appendLiteralRun(buf, name)
	s.scratch = buf
	if err := sc.WriteRaw(buf); err != nil {
		return &serverLostError{err: err}
	}
	s.queue = append(s.queue,
		expect{kind: 'B', swallow: true, serverName: name},
		expect{kind: 'D', dropNoData: true},
		expect{kind: 'E'},
		expect{kind: 'S'})
	return nil
}

// appendLiteralRun appends the rewritten query's Bind of the server
// statement name, with the literals as text parameters, and a Describe,
// Execute and Sync of its portal.
func (s *session) appendLiteralRun(buf []byte, name string) []byte {
	lr := &s.litRewrite
	start := len(buf)
	buf = appendFrameStart(buf, 'B')
	buf = append(buf, 0)                  // unnamed portal
	buf = append(append(buf, name...), 0) // statement
	buf = append(buf, 0, 0)               // parameters in text
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(lr.values)))
	for _, v := range lr.values {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
		buf = append(buf, v...)
	}
	buf = append(buf, 0, 0) // results in text
	buf = finishFrame(buf, start)
	buf = append(buf, 'D', 0, 0, 0, 6, 'P', 0)
	buf = append(buf, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0)
	return append(buf, 'S', 0, 0, 0, 4)
}

// appendParse appends a Parse of query as the server statement name.
func appendParse[T string | []byte](buf []byte, name string, query T, paramOIDs []uint32) []byte {
	start := len(buf)
	buf = appendFrameStart(buf, 'P')
	buf = append(append(buf, name...), 0)
	buf = append(append(buf, query...), 0)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(paramOIDs)))
	for _, oid := range paramOIDs {
		buf = binary.BigEndian.AppendUint32(buf, oid)
	}
	return finishFrame(buf, start)
}
