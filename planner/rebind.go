package planner

// Re-binding cached plans to a statement's own constants. A plan built from
// `... WHERE id = 42` is cached under the normalized text `... id = $i`
// and serves `... WHERE id = 43` too: every key value that came from a
// literal says which one (KeyValue.Lit, its place in Normalize's list), and
// the router reads the executed statement's literal there instead of the
// value the plan was built with. This file maps the parser's constant
// locations to those places and decides whether a plan may be shared.

import (
	"fmt"
	"strings"
)

// literalMap finds, for the location of a constant in the parse tree, the
// Normalize literal it came from.
type literalMap struct {
	sql  string
	lits []Literal
	pos  map[int]int // Literal.Pos -> 1-based index
	kept map[int]bool
}

func newLiteralMap(sql string) *literalMap {
	var trace normTrace
	_, lits := appendNormalized(nil, nil, sql, &trace)
	m := &literalMap{sql: sql, lits: lits, pos: make(map[int]int, len(lits)), kept: make(map[int]bool, len(trace.kept))}
	for i, l := range lits {
		m.pos[l.Pos] = i + 1
	}
	for _, k := range trace.kept {
		m.kept[k[0]] = true
	}
	return m
}

// lookup maps a constant's location. ok is false when the location is
// neither a literal Normalize took out nor one it kept verbatim (so a plan
// holding the constant's value must not be shared). PostgreSQL folds a
// minus sign into a numeric constant and reports the minus sign's
// location: negate says the value is the literal negated.
func (m *literalMap) lookup(loc int) (lit int, negate, ok bool) {
	if m == nil || loc < 0 || loc >= len(m.sql) {
		return 0, false, false
	}
	if i, found := m.pos[loc]; found {
		return i, false, true
	}
	if m.kept[loc] {
		return 0, false, true
	}
	j := loc
	for j < len(m.sql) && m.sql[j] == '-' && !(j+1 < len(m.sql) && m.sql[j+1] == '-') {
		negate = !negate
		j, _ = skipSpaceAndComments(m.sql, j+1)
	}
	if j == loc {
		return 0, false, false
	}
	if i, found := m.pos[j]; found {
		return i, negate, true
	}
	if m.kept[j] {
		return 0, false, true
	}
	return 0, false, false
}

// Text returns the value's text for the statement being executed, whose
// literals (in Normalize's order, as PlanCache.Lookup returns them) are
// lits: the literal Lit stands for, decoded, or Literal when the value did
// not come from a literal. A parameter's value is the router's to read.
func (v KeyValue) Text(lits []Literal) (string, error) {
	if v.Lit == 0 {
		return v.Literal, nil
	}
	if v.Lit > len(lits) {
		return "", fmt.Errorf("planner: key value refers to literal %d of a statement with %d", v.Lit, len(lits))
	}
	s, err := lits[v.Lit-1].Value()
	if err != nil {
		return "", err
	}
	if v.Negate {
		if strings.HasPrefix(s, "-") {
			return s[1:], nil
		}
		return "-" + s, nil
	}
	return s, nil
}

// Bind returns the value with Literal replaced by Text(lits).
func (v KeyValue) Bind(lits []Literal) (KeyValue, error) {
	if v.Lit == 0 {
		return v, nil
	}
	s, err := v.Text(lits)
	if err != nil {
		return KeyValue{}, err
	}
	v.Literal = s
	return v, nil
}

// bindable reports whether v re-binds exactly: re-reading the literals of
// the statement it came from gives back its value. (It does not for a
// -0, whose sign the parser drops, or a numeric the parser spells
// differently from Literal.Value.)
func (v KeyValue) bindable(lits []Literal) bool {
	if v.Param > 0 || v.Lit == 0 {
		return true
	}
	s, err := v.Text(lits)
	return err == nil && s == v.Literal
}

// keysBindable reports whether every key re-binds.
func keysBindable(keys []KeyValue, lits []Literal) bool {
	for _, k := range keys {
		if !k.bindable(lits) {
			return false
		}
	}
	return true
}

// rebindable decides Plan.Rebindable: a plan may serve every statement
// with its normalized text when nothing in it depends on literal values
// except through Lit. Rewritten SQL embeds the literals as written, so it
// is shared only when the statement has none.
func rebindable(p *Plan, lits []Literal) bool {
	if p.Analysis != nil && p.Analysis.literalBound {
		return false
	}
	if p.valueDependent {
		return false
	}
	ok := true
	walkPrimitives(p.Root, func(pr Primitive) {
		switch x := pr.(type) {
		case *Route:
			if x.SQL != "" && len(lits) > 0 {
				ok = false
			}
			if !keysBindable(x.Keys, lits) || x.NewKey != nil && !x.NewKey.bindable(lits) {
				ok = false
			}
		case *InsertSplit:
			ok = false
		case *Filter, *Limit:
			// Their constants are the statement's own.
			if len(lits) > 0 {
				ok = false
			}
		}
	})
	if ok && p.Inner != nil {
		ok = rebindable(p.Inner, lits)
	}
	return ok
}

// walkPrimitives calls f for every primitive of the tree, parents first.
func walkPrimitives(p Primitive, f func(Primitive)) {
	if p == nil {
		return
	}
	f(p)
	for _, in := range p.Inputs() {
		walkPrimitives(in, f)
	}
}
