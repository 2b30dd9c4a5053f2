package planner

// Query levels: each SELECT (and each INSERT/UPDATE/DELETE) is a level with
// the FROM items its column names resolve against, an enclosing level for
// correlated names, and the CTEs it declares. A level is "partitioned" when
// every row it yields comes from exactly one shard, so running it on each
// shard and concatenating gives PostgreSQL's answer; a level that needs
// every row of a sharded table at once (LIMIT or an aggregate in a
// subquery, rows of a reference table repeated by every shard) is exact
// only when its keys are on one shard.

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

func newLevel(parent, outer *level) *level {
	return &level{parent: parent, outer: outer, rep: -1}
}

func topLevel() *level { return &level{top: true, rep: -1} }

type level struct {
	parent *level // where names not found here are looked up (correlation)
	outer  *level // the enclosing level, for CTE names
	top    bool   // the statement itself: its merges are the router's
	semi   bool   // an EXISTS/IN conjunct of its parent's WHERE
	ctes   []*cte
	items  []*item
	merged []mergedColumn // columns of JOIN ... USING / NATURAL JOIN

	sharded     string // a sharded table read at or below this level
	correlated  bool   // a conjunct equates a key here with an outer key
	partitioned bool   // set when the level ends
	rep         int    // key node of a table that partitions its rows, -1 if none

	limit, aggregate, groupBy, groupingSets, distinct bool
	groupKey, distinctKey                             bool
	setop                                             string
	targets                                           []*pg.Node
	windows, windowDefs                               []*pg.WindowDef

	outputs []output
	exact   int // how many leading outputs have certain positions; -1: unknown
}

// item is one FROM entry: a table, a subquery, a CTE reference or a
// function.
type item struct {
	name     string // what columns are qualified with: alias or table name
	schema   string // an unaliased table's schema (schema.table.column)
	table    int    // index into Analysis.Tables, -1 otherwise
	node     int    // key node of a sharded table, -1 otherwise
	key      string
	cols     []string // a table's columns, when known
	outputs  []output // a subquery's or CTE's columns
	complete bool     // cols or outputs name every column
	// rep is a key node of a sharded table whose rows partition the
	// item's rows (each row is on exactly one shard); -1 if they are not
	// partitioned (a reference table, a function, a global subquery).
	rep      int
	sharded  string // a sharded table it reads
	nullable bool   // on the nullable side of an outer join
}

type output struct {
	name string
	node int // key node, -1 otherwise
}

type mergedColumn struct {
	name string
	ref  colRef
}

type cte struct {
	name  string
	lv    *level
	refs  int
	pairs []ctePair
}

type ctePair struct{ inner, ref int }

// colRef is a resolved column: its key node (-1 if it is no sharding key),
// the item it was found in and that item's level.
type colRef struct {
	node int
	it   *item
	lv   *level
}

// hasColumn answers yes (1), no (0) or maybe (-1).
func (it *item) hasColumn(col string) int {
	if it.table >= 0 {
		if it.node >= 0 && col == it.key {
			return 1
		}
		for _, c := range it.cols {
			if c == col {
				return 1
			}
		}
		if it.complete {
			return 0
		}
		return -1
	}
	for _, o := range it.outputs {
		if o.name == col {
			return 1
		}
	}
	if it.complete {
		return 0
	}
	return -1
}

func (it *item) column(col string) int {
	if it.table >= 0 {
		if it.node >= 0 && col == it.key {
			return it.node
		}
		return -1
	}
	found := -1
	for _, o := range it.outputs {
		if o.name == col {
			if found >= 0 || o.node < 0 {
				return -1 // ambiguous or not a key
			}
			found = o.node
		}
	}
	return found
}

// resolve finds the column a ColumnRef names, like PostgreSQL: the nearest
// level that has it. It gives up (ok false) where PostgreSQL would need
// column lists it does not have, or would report an ambiguity.
func resolve(lv *level, cr *pg.ColumnRef) (colRef, bool) {
	f := cr.Fields
	for _, n := range f {
		if n.GetString_() == nil {
			return colRef{}, false // a star
		}
	}
	switch len(f) {
	case 1:
		col := strVal(f[0])
		for l := lv; l != nil; l = l.parent {
			for _, m := range l.merged {
				if m.name == col {
					return m.ref, m.ref.lv != nil
				}
			}
			var found *item
			maybe := false
			for _, it := range l.items {
				switch it.hasColumn(col) {
				case 1:
					if found != nil {
						return colRef{}, false
					}
					found = it
				case -1:
					maybe = true
				}
			}
			if maybe {
				return colRef{}, false
			}
			if found != nil {
				return colRef{node: found.column(col), it: found, lv: l}, true
			}
		}
	case 2, 3, 4:
		rel, col := strVal(f[len(f)-2]), strVal(f[len(f)-1])
		schema := ""
		if len(f) >= 3 {
			schema = strVal(f[len(f)-3])
		}
		for l := lv; l != nil; l = l.parent {
			var found *item
			for _, it := range l.items {
				if it.name != rel || schema != "" && it.schema != schema {
					continue
				}
				if found != nil {
					return colRef{}, false
				}
				found = it
			}
			if found != nil {
				if found.hasColumn(col) == 0 {
					return colRef{}, false
				}
				return colRef{node: found.column(col), it: found, lv: l}, true
			}
		}
	}
	return colRef{}, false
}

// resolveKey returns the key node a column expression names at lv itself,
// for GROUP BY, DISTINCT and PARTITION BY: a key that an outer join can
// turn into NULL would put rows of every shard into one group.
func resolveKey(lv *level, n *pg.Node) int {
	cr := n.GetColumnRef()
	if cr == nil {
		return -1
	}
	r, ok := resolve(lv, cr)
	if !ok || r.lv != lv || r.it.nullable {
		return -1
	}
	return r.node
}

// findCTE looks a name up among the CTEs visible from lv.
func findCTE(lv *level, name string) *cte {
	for l := lv; l != nil; l = l.outer {
		for i := len(l.ctes) - 1; i >= 0; i-- {
			if l.ctes[i].name == name {
				return l.ctes[i]
			}
		}
	}
	return nil
}

// with analyzes a WITH clause; its CTEs become visible at lv.
func (an *analyzer) with(lv *level, w *pg.WithClause) {
	if w == nil {
		return
	}
	for _, n := range w.Ctes {
		ce := n.GetCommonTableExpr()
		if ce == nil {
			continue
		}
		c := &cte{name: ce.Ctename}
		if w.Recursive {
			lv.ctes = append(lv.ctes, c) // it may name itself
		}
		sub := newLevel(lv.parent, lv)
		switch q := ce.Ctequery.GetNode().(type) {
		case *pg.Node_SelectStmt:
			an.selectInto(sub, q.SelectStmt)
			if w.Recursive && q.SelectStmt.Op != pg.SetOperation_SETOP_NONE && sub.sharded != "" {
				an.needOneShard(
					fmt.Sprintf("recursive CTE %s over sharded table %s needs rows from every shard", ce.Ctename, sub.sharded),
					fmt.Sprintf("filter %s by its key so the recursion reads one shard", sub.sharded))
				sub.partitioned = false
			}
		default:
			an.note("a writable CTE")
			an.dml(sub, ce.Ctequery)
		}
		c.lv = sub
		renameOutputs(sub, ce.Aliascolnames)
		if !w.Recursive {
			lv.ctes = append(lv.ctes, c)
		}
		an.ctes = append(an.ctes, c)
	}
}

// renameOutputs applies column aliases (AS s(a, b)) by position.
func renameOutputs(lv *level, names []*pg.Node) {
	if len(names) == 0 {
		return
	}
	if len(names) > lv.exact {
		lv.outputs, lv.exact = nil, -1 // columns no longer known
		return
	}
	outs := make([]output, len(lv.outputs))
	copy(outs, lv.outputs)
	for i, n := range names {
		outs[i].name = strVal(n)
	}
	lv.outputs = outs
}

// fromItem analyzes one FROM entry and adds its items to lv. rep is the key
// node of a table that partitions its rows, -1 if they are not partitioned.
func (an *analyzer) fromItem(lv *level, n *pg.Node) (items []*item, rep int) {
	switch x := n.GetNode().(type) {
	case *pg.Node_RangeVar:
		it := an.relation(lv, x.RangeVar, false, true)
		return []*item{it}, it.rep
	case *pg.Node_RangeTableSample:
		return an.fromItem(lv, x.RangeTableSample.Relation)
	case *pg.Node_JoinExpr:
		return an.join(lv, x.JoinExpr)
	case *pg.Node_RangeSubselect:
		rs := x.RangeSubselect
		sub := newLevel(lv.parent, lv)
		if rs.Lateral {
			sub.parent = lv
		}
		if s := rs.Subquery.GetSelectStmt(); s != nil {
			an.selectInto(sub, s)
		}
		it := &item{table: -1, node: -1, rep: -1, sharded: sub.sharded, complete: true}
		if sub.partitioned || sub.correlated {
			// A LATERAL subquery correlated on the key is evaluated
			// next to the outer row's shard.
			it.rep = sub.rep
		}
		if rs.Alias != nil {
			it.name = rs.Alias.Aliasname
			renameOutputs(sub, rs.Alias.Colnames)
		}
		it.outputs, it.complete = sub.outputs, sub.exact == len(sub.outputs)
		if !sub.partitioned {
			it.outputs = unlinked(it.outputs)
		}
		lv.items = append(lv.items, it)
		lv.noteSharded(sub.sharded)
		return []*item{it}, it.rep
	case *pg.Node_RangeFunction:
		rf := x.RangeFunction
		an.walk(lv, n, false)
		it := &item{table: -1, node: -1, rep: -1}
		if rf.Alias != nil {
			it.name = rf.Alias.Aliasname
			for _, c := range rf.Alias.Colnames {
				it.outputs = append(it.outputs, output{name: strVal(c), node: -1})
			}
		} else if len(rf.Functions) == 1 {
			if l := rf.Functions[0].GetList(); l != nil && len(l.Items) > 0 {
				if fc := l.Items[0].GetFuncCall(); fc != nil && len(fc.Funcname) > 0 {
					it.name = strVal(fc.Funcname[len(fc.Funcname)-1])
				}
			}
		}
		lv.items = append(lv.items, it)
		return []*item{it}, -1
	default:
		// XMLTABLE, JSON_TABLE, ...: rows computed on every shard.
		an.walk(lv, n, false)
		it := &item{table: -1, node: -1, rep: -1}
		lv.items = append(lv.items, it)
		return []*item{it}, -1
	}
}

func unlinked(outs []output) []output {
	c := make([]output, len(outs))
	for i, o := range outs {
		c[i] = output{name: o.name, node: -1}
	}
	return c
}

func (lv *level) noteSharded(name string) {
	if lv.sharded == "" {
		lv.sharded = name
	}
}

// relation adds a table or CTE reference to lv (to its items when visible).
func (an *analyzer) relation(lv *level, rv *pg.RangeVar, write, visible bool) *item {
	alias := ""
	if rv.Alias != nil {
		alias = rv.Alias.Aliasname
	}
	if rv.Schemaname == "" && !write {
		if c := findCTE(lv, rv.Relname); c != nil {
			return an.cteRef(lv, c, rv, alias)
		}
	}
	tc, ok := an.schema.Resolve(rv.Relname, rv.Schemaname)
	if !ok {
		tc = TableConfig{Schema: rv.Schemaname, Name: rv.Relname}
	}
	idx := len(an.out.Tables)
	an.out.Tables = append(an.out.Tables, TableAccess{Table: tc, Unknown: !ok, Alias: alias, Write: write})
	it := &item{name: rv.Relname, table: idx, node: -1, rep: -1, key: tc.Key}
	if alias != "" {
		it.name = alias
	} else {
		it.schema = tc.Schema
	}
	it.cols = an.schema.Columns(tc)
	it.complete = len(it.cols) > 0
	if tc.Kind == Sharded {
		it.node = an.g.newNode(idx)
		it.rep, it.sharded = it.node, tc.Name
		if !write {
			lv.noteSharded(tc.Name)
		}
	}
	if visible {
		lv.items = append(lv.items, it)
	}
	return it
}

func (an *analyzer) cteRef(lv *level, c *cte, rv *pg.RangeVar, alias string) *item {
	it := &item{name: rv.Relname, table: -1, node: -1, rep: -1, complete: c.lv != nil && c.lv.exact == len(c.lv.outputs)}
	if alias != "" {
		it.name = alias
	}
	if c.lv == nil { // a recursive reference to the CTE being defined
		lv.items = append(lv.items, it)
		return it
	}
	c.refs++
	it.sharded = c.lv.sharded
	if c.lv.partitioned {
		it.rep = c.lv.rep
	}
	it.outputs = make([]output, len(c.lv.outputs))
	for i, o := range c.lv.outputs {
		it.outputs[i] = output{name: o.name, node: -1}
		if o.node >= 0 && c.lv.partitioned {
			v := an.g.newNode(-1)
			c.pairs = append(c.pairs, ctePair{inner: o.node, ref: v})
			it.outputs[i].node = v
		}
	}
	if rv.Alias != nil && len(rv.Alias.Colnames) > 0 {
		if len(rv.Alias.Colnames) > c.lv.exact {
			it.outputs, it.complete = unlinked(it.outputs), false
		} else {
			for i, n := range rv.Alias.Colnames {
				it.outputs[i].name = strVal(n)
			}
		}
	}
	lv.noteSharded(c.lv.sharded)
	lv.items = append(lv.items, it)
	return it
}

// join analyzes a JoinExpr: its two sides, then its condition, which binds
// keys only for the side(s) whose rows it filters.
func (an *analyzer) join(lv *level, j *pg.JoinExpr) ([]*item, int) {
	left, lrep := an.fromItem(lv, j.Larg)
	right, rrep := an.fromItem(lv, j.Rarg)
	all := append(append([]*item{}, left...), right...)
	qc := &qualCtx{lv: lv}
	// Rows of an outer join's preserved side come back without a partner:
	// they are partitioned only if that side is.
	rep := an.combine(lrep, rrep)
	markNullable := func(items []*item) {
		for _, it := range items {
			it.nullable = true
		}
	}
	switch j.Jointype {
	case pg.JoinType_JOIN_LEFT:
		qc.outer, qc.nullable = true, right
		markNullable(right)
		if lrep < 0 {
			rep = -1
		}
	case pg.JoinType_JOIN_RIGHT:
		qc.outer, qc.nullable = true, left
		markNullable(left)
		if rrep < 0 {
			rep = -1
		}
	case pg.JoinType_JOIN_FULL:
		qc.outer = true
		markNullable(all)
		if lrep < 0 || rrep < 0 {
			rep = -1
		}
	}
	using := j.UsingClause
	var natural []string
	if j.IsNatural {
		natural = commonColumns(left, right)
	}
	for _, col := range append(names(using), natural...) {
		l, lok := resolveIn(lv, left, col)
		r, rok := resolveIn(lv, right, col)
		if lok && rok && l.node >= 0 && r.node >= 0 {
			an.keyEquality(qc, l, r)
		}
		m := mergedColumn{name: col}
		switch {
		case j.Jointype == pg.JoinType_JOIN_RIGHT && rok:
			m.ref = r
		case j.Jointype != pg.JoinType_JOIN_FULL && j.Jointype != pg.JoinType_JOIN_RIGHT && lok:
			m.ref = l
		}
		lv.merged = append(lv.merged, m)
	}
	an.qual(qc, j.Quals)
	if j.Alias != nil {
		// (a JOIN b) AS j hides a and b: the join's columns are j's.
		it := &item{name: j.Alias.Aliasname, table: -1, node: -1, rep: rep}
		for _, sub := range all {
			it.outputs = append(it.outputs, sub.allOutputs()...)
			if !sub.complete {
				it.outputs = unlinked(it.outputs)
			}
		}
		lv.items = append(lv.items, it)
	}
	return all, rep
}

// combine joins two partitioned row sources: they must be colocated.
func (an *analyzer) combine(a, b int) int {
	if a < 0 {
		return b
	}
	if b >= 0 && a != b {
		an.pairs = append(an.pairs, [2]int{a, b})
	}
	return a
}

func names(ns []*pg.Node) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, strVal(n))
	}
	return out
}

func (it *item) allOutputs() []output {
	if it.table < 0 {
		return it.outputs
	}
	outs := make([]output, 0, len(it.cols))
	for _, c := range it.cols {
		n := -1
		if c == it.key {
			n = it.node
		}
		outs = append(outs, output{name: c, node: n})
	}
	return outs
}

// commonColumns returns the column names both sides of a NATURAL JOIN
// have; nil when a side's columns are not all known.
func commonColumns(left, right []*item) []string {
	var out []string
	for _, l := range left {
		if !l.complete {
			return nil
		}
		for _, o := range l.allOutputs() {
			for _, r := range right {
				if !r.complete {
					return nil
				}
				if r.hasColumn(o.name) == 1 {
					out = append(out, o.name)
				}
			}
		}
	}
	return out
}

// resolveIn finds an unqualified column among some of lv's items.
func resolveIn(lv *level, items []*item, col string) (colRef, bool) {
	var found *item
	for _, it := range items {
		switch it.hasColumn(col) {
		case 1:
			if found != nil {
				return colRef{}, false
			}
			found = it
		case -1:
			return colRef{}, false
		}
	}
	if found == nil {
		return colRef{}, false
	}
	return colRef{node: found.column(col), it: found, lv: lv}, true
}
