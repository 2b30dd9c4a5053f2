package planner

// Query strings with several statements (the simple protocol's
// "SELECT 1; SELECT 2"). The router sends such a string whole to one
// target, so it is planned as one Route only when every statement goes to
// the same place as written: all to the first shard (or any shard), all
// to one named shard, all to one key's shard, or all DDL broadcast to
// every shard. Transaction control, SET and SHOW go wherever the others
// go. Anything else is refused; sent one by one, each statement is
// planned on its own.

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
)

const sendSeparately = "send the statements one at a time, so each is routed on its own"

func (b *builder) multi(stmts []*pg.RawStmt) *Plan {
	analyses := make([]*Analysis, len(stmts))
	plans := make([]*Plan, len(stmts))
	for i, raw := range stmts {
		plans[i] = b.statement(raw.Stmt)
		analyses[i] = plans[i].Analysis
	}
	combined := combineAnalyses(analyses)
	p := &Plan{Analysis: combined, Statements: analyses}
	refuse := func(format string, args ...any) *Plan {
		p.Root = &Refuse{Refusal: Refusal{Code: "0A000", Message: sprintf(format, args...), Hint: sendSeparately}}
		p.spansShards = true // a shard hint sends the whole string to one shard
		return p
	}
	var root *Route
	for i, sp := range plans {
		a := analyses[i]
		if r, ok := sp.Root.(*Refuse); ok {
			p.Root, p.spansShards = r, sp.spansShards
			return p
		}
		if neutral(a) {
			continue
		}
		r, ok := sp.Root.(*Route)
		if !ok || r.SQL != "" || r.NewKey != nil || sp.Explain {
			return refuse("statement %d of the query string (%s) cannot run in a string of several statements", i+1, a.Command)
		}
		if root == nil {
			c := *r
			root = &c
			continue
		}
		merged, ok := b.sameTarget(root, r)
		if !ok {
			return refuse("the statements of this query string go to different shards")
		}
		root = merged
	}
	if root == nil {
		root = &Route{Target: TargetFirst}
	}
	p.Root = root
	return p
}

// neutral statements run wherever the others of the string go.
func neutral(a *Analysis) bool {
	switch a.Kind {
	case EmptyStatement:
		return true
	case UtilityStatement:
		switch a.Command {
		case "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "RESET", "SHOW":
			return true
		}
	}
	return false
}

// sameTarget combines two routes that go to one place as written.
func (bl *builder) sameTarget(a, b *Route) (*Route, bool) {
	c := *a
	c.Write = a.Write || b.Write
	switch {
	case (a.Target == TargetFirst || a.Target == TargetAny) && (b.Target == TargetFirst || b.Target == TargetAny):
		// Reference tables are on the first shard too.
		if a.Target != b.Target {
			c.Target = TargetFirst
		}
		return &c, true
	case a.Target == TargetNamed && b.Target == TargetNamed:
		return &c, a.Shard == b.Shard
	case a.Target == TargetKeys && b.Target == TargetKeys:
		return &c, singleTarget(a) && singleTarget(b) && a.KeyType == b.KeyType && bl.sameValue(a.Keys[0], b.Keys[0])
	case a.Target == TargetAll && b.Target == TargetAll:
		// Broadcast DDL: in or outside a transaction, never both.
		return &c, a.Ordered && b.Ordered && a.Write == b.Write
	}
	return nil, false
}

// sameValue: two key values that are one key. Whether two literals are
// holds for this text only: the plan is then not shared.
func (bl *builder) sameValue(a, b KeyValue) bool {
	if a.Param > 0 || b.Param > 0 || a == b {
		return a == b
	}
	// Either answer holds for these values only.
	bl.valueDependent = true
	return a.Literal == b.Literal && a.Quoted == b.Quoted && a.Cast == b.Cast
}

// combineAnalyses describes a query string with several statements: its
// tables, whether all of it is read-only, the first reason any statement
// needs a single shard.
func combineAnalyses(as []*Analysis) *Analysis {
	c := &Analysis{Kind: MultiStatement, ReadOnly: true}
	for _, a := range as {
		c.Tables = append(c.Tables, a.Tables...)
		if !a.ReadOnly && c.ReadOnly {
			c.ReadOnly, c.SideEffect = false, a.SideEffect
		}
		if c.SingleShard == "" {
			c.SingleShard = a.SingleShard
		}
		c.literalBound = c.literalBound || a.literalBound
		c.KeyUpdate = c.KeyUpdate || a.KeyUpdate
	}
	c.Tables = slices.Clip(c.Tables)
	return c
}
