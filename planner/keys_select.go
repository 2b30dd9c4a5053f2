package planner

// SELECT levels: FROM, WHERE, the target list and the clauses that need a
// whole table at once (LIMIT, aggregates, DISTINCT, windows, set
// operations), which a subquery may only use where its rows are tied to one
// shard.

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// selectInto analyzes s into the prepared level lv.
func (an *analyzer) selectInto(lv *level, s *pg.SelectStmt) {
	an.with(lv, s.WithClause)
	if s.Op != pg.SetOperation_SETOP_NONE {
		an.setOperation(lv, s)
		return
	}
	rep := -1
	for _, f := range s.FromClause {
		_, r := an.fromItem(lv, f)
		rep = an.combine(rep, r)
	}
	lv.rep = rep
	for _, row := range s.ValuesLists {
		an.walk(lv, row, false)
	}
	an.qual(&qualCtx{lv: lv, where: true}, s.WhereClause)
	lv.targets = s.TargetList
	for _, t := range s.TargetList {
		an.walk(lv, t, true)
	}
	an.outputsOf(lv, s.TargetList, s.ValuesLists)
	for _, g := range s.GroupClause {
		an.walk(lv, g, false)
		lv.groupBy = true
		if g.GetGroupingSet() != nil {
			lv.groupingSets = true
		} else if resolveKey(lv, groupExpr(lv, g)) >= 0 {
			lv.groupKey = true
		}
	}
	if s.HavingClause != nil {
		lv.aggregate = true
		an.walk(lv, s.HavingClause, true)
	}
	for _, w := range s.WindowClause {
		if d := w.GetWindowDef(); d != nil {
			lv.windowDefs = append(lv.windowDefs, d)
		}
		an.walk(lv, w, false)
	}
	for _, o := range s.SortClause {
		an.walk(lv, o, true)
	}
	if len(s.DistinctClause) > 0 {
		lv.distinct = true
		for _, d := range s.DistinctClause {
			if d.GetNode() == nil { // plain DISTINCT: a key among the outputs
				for _, t := range lv.targets {
					if resolveKey(lv, t.GetResTarget().GetVal()) >= 0 {
						lv.distinctKey = true
					}
				}
				continue
			}
			an.walk(lv, d, false)
			if resolveKey(lv, groupExpr(lv, d)) >= 0 {
				lv.distinctKey = true
			}
		}
	}
	if s.LimitCount != nil || s.LimitOffset != nil {
		lv.limit = true
		an.walk(lv, s.LimitCount, false)
		an.walk(lv, s.LimitOffset, false)
	}
	for _, l := range s.LockingClause {
		an.note(lockName(l.GetLockingClause()))
	}
	if s.IntoClause != nil && s.IntoClause.Rel != nil {
		an.note("SELECT INTO")
		an.relation(lv, s.IntoClause.Rel, true, false)
	}
	an.endLevel(lv, rep)
}

// groupExpr maps GROUP BY 2 / DISTINCT ON (2) to the second target.
func groupExpr(lv *level, n *pg.Node) *pg.Node {
	if c := n.GetAConst(); c != nil {
		if i := c.GetIval(); i != nil && i.Ival >= 1 && int(i.Ival) <= len(lv.targets) {
			if rt := lv.targets[i.Ival-1].GetResTarget(); rt != nil {
				return rt.Val
			}
		}
	}
	return n
}

func lockName(l *pg.LockingClause) string {
	switch l.GetStrength() {
	case pg.LockClauseStrength_LCS_FORKEYSHARE:
		return "FOR KEY SHARE"
	case pg.LockClauseStrength_LCS_FORSHARE:
		return "FOR SHARE"
	case pg.LockClauseStrength_LCS_FORNOKEYUPDATE:
		return "FOR NO KEY UPDATE"
	}
	return "FOR UPDATE"
}

// outputsOf records the level's output columns and the keys they carry.
func (an *analyzer) outputsOf(lv *level, targets, values []*pg.Node) {
	if len(targets) == 0 && len(values) > 0 {
		if row := values[0].GetList(); row != nil {
			for i := range row.Items {
				lv.outputs = append(lv.outputs, output{name: fmt.Sprintf("column%d", i+1), node: -1})
			}
		}
		lv.exact = len(lv.outputs)
		return
	}
	certain := true
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) {
			ok := an.expandStar(lv, cr)
			certain = certain && ok
			continue
		}
		o := output{name: rt.Name, node: -1}
		if cr := rt.Val.GetColumnRef(); cr != nil {
			if r, ok := resolve(lv, cr); ok && r.lv == lv {
				o.node = r.node
			}
		}
		if o.name == "" {
			o.name = targetName(rt.Val)
		}
		lv.outputs = append(lv.outputs, o)
		if certain {
			lv.exact = len(lv.outputs)
		}
	}
}

func isStar(cr *pg.ColumnRef) bool {
	return len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// expandStar adds the columns of * or t.*; false when their number or
// order is not known.
func (an *analyzer) expandStar(lv *level, cr *pg.ColumnRef) bool {
	certain := len(lv.merged) == 0 // USING merges columns: positions shift
	var rel string
	if len(cr.Fields) >= 2 {
		rel = strVal(cr.Fields[len(cr.Fields)-2])
	}
	for _, it := range lv.items {
		if rel != "" && it.name != rel {
			continue
		}
		lv.outputs = append(lv.outputs, it.allOutputs()...)
		if it.table >= 0 && it.node >= 0 && len(it.cols) == 0 {
			lv.outputs = append(lv.outputs, output{name: it.key, node: it.node})
		}
		certain = certain && it.complete
	}
	if certain {
		lv.exact = len(lv.outputs)
	}
	return certain
}

// targetName is the column name PostgreSQL gives an unnamed target.
func targetName(n *pg.Node) string {
	switch x := n.GetNode().(type) {
	case *pg.Node_ColumnRef:
		f := x.ColumnRef.Fields
		return strVal(f[len(f)-1])
	case *pg.Node_FuncCall:
		f := x.FuncCall.Funcname
		return strVal(f[len(f)-1])
	case *pg.Node_TypeCast:
		if s := targetName(x.TypeCast.Arg); s != "?column?" {
			return s
		}
		return typeName(x.TypeCast.TypeName)
	}
	return "?column?"
}

// setOperation analyzes UNION/INTERSECT/EXCEPT: each branch is a level of
// its own; the result is partitioned when every branch is and no
// duplicates must be removed across shards.
func (an *analyzer) setOperation(lv *level, s *pg.SelectStmt) {
	var branches []*level
	var walkOps func(n *pg.SelectStmt)
	walkOps = func(n *pg.SelectStmt) {
		if n.Op == pg.SetOperation_SETOP_NONE || n != s &&
			(n.LimitCount != nil || n.LimitOffset != nil || len(n.SortClause) > 0 || n.WithClause != nil) {
			b := newLevel(lv.parent, lv)
			an.selectInto(b, n)
			branches = append(branches, b)
			return
		}
		switch {
		case n.Op == pg.SetOperation_SETOP_INTERSECT:
			lv.setop = "INTERSECT"
		case n.Op == pg.SetOperation_SETOP_EXCEPT:
			lv.setop = "EXCEPT"
		case !n.All && lv.setop == "":
			lv.setop = "UNION"
		}
		if n.Larg != nil {
			walkOps(n.Larg)
		}
		if n.Rarg != nil {
			walkOps(n.Rarg)
		}
	}
	walkOps(s)
	// Branches are not joined: each may be partitioned by another table.
	rep, replicated := -1, false
	for _, b := range branches {
		lv.noteSharded(b.sharded)
		if rep < 0 {
			rep = b.rep
		}
	}
	for _, b := range branches {
		if !b.partitioned {
			rep = -1
			if b.sharded == "" {
				replicated = true
			}
		}
	}
	if len(branches) > 0 {
		for _, o := range branches[0].outputs {
			lv.outputs = append(lv.outputs, output{name: o.name, node: -1})
		}
		lv.exact = min(branches[0].exact, len(lv.outputs))
	}
	for _, o := range s.SortClause {
		an.walk(lv, o, false)
	}
	if s.LimitCount != nil || s.LimitOffset != nil {
		lv.limit = true
	}
	for _, l := range s.LockingClause {
		an.note(lockName(l.GetLockingClause()))
	}
	if lv.top && lv.setop == "UNION" && replicated {
		// The router's merge removes the copies every shard returns of
		// rows that come from no sharded table.
		for _, b := range branches {
			if b.sharded != "" && !b.partitioned {
				rep = -1
				break
			}
			if rep < 0 {
				rep = b.rep
			}
		}
	}
	an.endLevel(lv, rep)
}

// endLevel decides whether the level's rows are partitioned and records a
// reason when the level is exact only on one shard.
func (an *analyzer) endLevel(lv *level, rep int) {
	fromPart := rep >= 0
	lv.rep = rep
	global := ""
	switch {
	case lv.setop != "" && !lv.top:
		global = lv.setop
	case lv.setop == "INTERSECT" || lv.setop == "EXCEPT":
		global = lv.setop
	case lv.limit && !lv.top:
		global = "LIMIT"
	case lv.groupingSets && !lv.top:
		global = "GROUPING SETS"
	case lv.groupBy && !lv.groupKey && !lv.top:
		global = "GROUP BY"
	case lv.aggregate && !lv.groupKey && !lv.top:
		global = "an aggregate"
	case lv.distinct && !lv.distinctKey && !lv.top:
		global = "DISTINCT"
	case an.windowsUnsafe(lv) && !lv.top:
		global = "a window function"
	}
	lv.partitioned = fromPart && global == ""
	if lv.sharded == "" || lv.correlated {
		return
	}
	switch {
	case global != "":
		where := " in a subquery"
		if lv.top {
			where = ""
		}
		an.needOneShard(
			fmt.Sprintf("%s%s over sharded table %s needs rows from every shard", global, where, lv.sharded),
			fmt.Sprintf("filter %s by its key so the subquery reads one shard", lv.sharded))
	case !fromPart:
		an.needOneShard(
			fmt.Sprintf("rows that do not come from sharded table %s would be returned by every shard", lv.sharded),
			fmt.Sprintf("filter %s by its key so the statement reads one shard", lv.sharded))
	}
}

// windowsUnsafe reports a window function not partitioned by a key.
func (an *analyzer) windowsUnsafe(lv *level) bool {
	for _, w := range lv.windows {
		if !windowOnKey(lv, w) {
			return true
		}
	}
	return false
}

func windowOnKey(lv *level, w *pg.WindowDef) bool {
	for range len(lv.windowDefs) + 1 {
		if w == nil {
			return false
		}
		for _, p := range w.PartitionClause {
			if resolveKey(lv, p) >= 0 {
				return true
			}
		}
		if len(w.PartitionClause) > 0 {
			return false
		}
		// OVER w names a WINDOW definition; OVER (w ORDER BY ...) refers
		// to one and inherits its PARTITION BY.
		ref := w.Refname
		if ref == "" {
			ref = w.Name
		}
		var next *pg.WindowDef
		for _, d := range lv.windowDefs {
			if d.Name == ref && d != w {
				next = d
			}
		}
		w = next
	}
	return false
}
