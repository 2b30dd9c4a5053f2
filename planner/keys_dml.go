package planner

// INSERT, UPDATE, DELETE and MERGE: the target table is written; an
// INSERT's rows are routed by their own keys, an UPDATE's or DELETE's by
// the WHERE clause like a SELECT's.

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// dml analyzes a data-modifying statement into the prepared level lv.
func (an *analyzer) dml(lv *level, n *pg.Node) {
	switch x := n.GetNode().(type) {
	case *pg.Node_InsertStmt:
		an.insert(lv, x.InsertStmt)
	case *pg.Node_UpdateStmt:
		an.update(lv, x.UpdateStmt)
	case *pg.Node_DeleteStmt:
		an.delete(lv, x.DeleteStmt)
	case *pg.Node_MergeStmt:
		an.merge(lv, x.MergeStmt)
	}
}

func (an *analyzer) insert(lv *level, s *pg.InsertStmt) {
	an.with(lv, s.WithClause)
	an.note("INSERT")
	target := an.relation(lv, s.Relation, true, false)
	tc := an.out.Tables[target.table].Table
	sharded := tc.Kind == Sharded

	var cols []string
	for _, c := range s.Cols {
		if rt := c.GetResTarget(); rt != nil {
			cols = append(cols, rt.Name)
		}
	}
	if len(cols) == 0 && s.SelectStmt != nil {
		cols = target.cols
	}
	keyPos := -1
	for i, c := range cols {
		if c == tc.Key {
			keyPos = i
		}
	}
	refuse := func(why, hint string) {
		an.refuse(fmt.Sprintf("cannot route INSERT into sharded table %s: %s", tc.Name, why), hint)
		an.out.Rows = nil
	}
	rep := -1
	sel := s.SelectStmt.GetSelectStmt()
	switch {
	case sel == nil: // DEFAULT VALUES
		if sharded {
			refuse(fmt.Sprintf("its sharding key %s has no value", tc.Key),
				fmt.Sprintf("give %s a value", tc.Key))
		}
	case len(sel.ValuesLists) > 0 && len(sel.FromClause) == 0 && sel.Op == pg.SetOperation_SETOP_NONE && sel.WithClause == nil:
		for _, row := range sel.ValuesLists {
			an.walk(lv, row, false)
		}
		if sharded {
			an.routeRows(lv, target, sel.ValuesLists, keyPos, len(cols) > 0 || len(s.Cols) > 0, refuse)
		}
	default:
		sub := newLevel(lv.parent, lv)
		an.selectInto(sub, sel)
		lv.noteSharded(sub.sharded)
		if sub.partitioned {
			rep = sub.rep
		}
		if !sharded {
			break
		}
		switch {
		case keyPos < 0 && len(cols) == 0:
			refuse("its column order is not known", "list the columns")
		case keyPos < 0:
			refuse(fmt.Sprintf("its sharding key %s is not among the columns", tc.Key),
				fmt.Sprintf("list %s among the columns and give it a value in every row", tc.Key))
		case keyPos < sub.exact && sub.outputs[keyPos].node >= 0 && sub.partitioned:
			// The key comes from a colocated table: each shard inserts
			// the rows it already holds the keys of.
			an.g.link(sub.outputs[keyPos].node, target.node, true, false)
		case constantSelect(sel) && keyPos < len(sel.TargetList):
			an.routeRows(lv, target, []*pg.Node{{Node: &pg.Node_List{List: &pg.List{Items: resTargetValues(sel.TargetList)}}}}, keyPos, true, refuse)
		default:
			refuse("the SELECT does not give each row's key as a column of a table colocated with it",
				fmt.Sprintf("insert the rows with VALUES, or select %s from a sharded table joined on its key", tc.Key))
		}
	}
	if sharded {
		lv.rep = target.node // what ON CONFLICT and RETURNING read is on the row's shard
	}
	if oc := s.OnConflictClause; oc != nil {
		excluded := &item{name: "excluded", table: -1, node: -1, rep: -1, outputs: unlinked(target.allOutputs()), complete: target.complete}
		lv.items = append(lv.items, target, excluded)
		an.assignments(lv, target, oc.TargetList)
		an.walk(lv, oc.WhereClause, false)
		lv.items = lv.items[:len(lv.items)-2]
	}
	if len(s.ReturningList) > 0 {
		lv.items = append(lv.items, target)
		for _, r := range s.ReturningList {
			an.walk(lv, r, false)
		}
		an.outputsOf(lv, s.ReturningList, nil)
	}
	if sharded {
		if lv.sharded != "" && rep < 0 {
			// A subquery in VALUES reads a sharded table: the row's
			// shard must hold what it reads.
			an.needOneShard(
				fmt.Sprintf("a subquery in the inserted values reads sharded table %s, which must be on the shard of the row", lv.sharded),
				fmt.Sprintf("filter %s by the key of the inserted row, or read it before the INSERT", lv.sharded))
		}
		// Rows (and RETURNING rows) are each on the shard of their key.
		lv.partitioned, lv.rep = true, target.node
		lv.noteSharded(tc.Name)
		return
	}
	an.endLevel(lv, rep)
}

// routeRows records each VALUES row's key.
func (an *analyzer) routeRows(lv *level, target *item, rows []*pg.Node, keyPos int, haveCols bool, refuse func(why, hint string)) {
	tc := an.out.Tables[target.table].Table
	if keyPos < 0 {
		if !haveCols {
			refuse("its column order is not known", "list the columns")
		} else {
			refuse(fmt.Sprintf("its sharding key %s is not among the columns", tc.Key),
				fmt.Sprintf("list %s among the columns and give it a value in every row", tc.Key))
		}
		return
	}
	keys := make([]KeyValue, 0, len(rows))
	for i, row := range rows {
		items := row.GetList().GetItems()
		if keyPos >= len(items) {
			refuse(fmt.Sprintf("row %d has no value for its sharding key %s", i+1, tc.Key),
				fmt.Sprintf("give %s a value in every row", tc.Key))
			return
		}
		e := items[keyPos]
		v, ok := an.keyValue(e)
		if !ok {
			what := "an expression"
			switch {
			case isNullConst(e):
				what = "NULL"
			case e.GetSetToDefault() != nil:
				what = "DEFAULT"
			}
			refuse(fmt.Sprintf("the sharding key %s of row %d is %s", tc.Key, i+1, what),
				fmt.Sprintf("give %s as a constant or a parameter in every row", tc.Key))
			return
		}
		keys = append(keys, v)
	}
	an.out.Rows = keys
	an.g.bind(target.node, distinctKeys(keys))
}

// constantSelect: SELECT <expressions> without FROM, one row.
func constantSelect(s *pg.SelectStmt) bool {
	return s.Op == pg.SetOperation_SETOP_NONE && len(s.FromClause) == 0 && len(s.ValuesLists) == 0 &&
		s.WhereClause == nil && len(s.GroupClause) == 0 && s.HavingClause == nil && len(s.DistinctClause) == 0
}

func resTargetValues(ts []*pg.Node) []*pg.Node {
	out := make([]*pg.Node, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.GetResTarget().GetVal())
	}
	return out
}

// assignments analyzes SET col = ..., noting an assignment to the key.
func (an *analyzer) assignments(lv *level, target *item, targets []*pg.Node) {
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		an.walk(lv, rt.Val, false)
		if target.node < 0 || rt.Name != target.key || len(rt.Indirection) > 0 {
			continue
		}
		val := rt.Val
		if m := rt.Val.GetMultiAssignRef(); m != nil {
			val = nil
			if row := m.Source.GetRowExpr(); row != nil && m.Colno >= 1 && int(m.Colno) <= len(row.Args) {
				val = row.Args[m.Colno-1]
			}
		}
		if sameKey(lv, target, val) {
			continue
		}
		an.out.KeyUpdate = true
		an.keyTable = target.table
		an.out.NewKey = nil
		if v, ok := an.keyValue(val); ok {
			an.out.NewKey = &v
		}
	}
}

// sameKey: SET id = id, or ON CONFLICT ... SET id = excluded.id (the
// conflicting row has the same key, since unique constraints on sharded
// tables include the key), leave every row where it is.
func sameKey(lv *level, target *item, val *pg.Node) bool {
	cr := val.GetColumnRef()
	if cr == nil {
		return false
	}
	r, ok := resolve(lv, cr)
	if !ok || r.lv != lv {
		return false
	}
	if r.it == target {
		return r.node == target.node
	}
	return r.it.name == "excluded" && r.it.table < 0 && strVal(cr.Fields[len(cr.Fields)-1]) == target.key
}

func (an *analyzer) update(lv *level, s *pg.UpdateStmt) {
	an.with(lv, s.WithClause)
	an.note("UPDATE")
	target := an.relation(lv, s.Relation, true, true)
	rep := target.rep
	lv.rep = rep
	an.noteTarget(lv, target)
	for _, f := range s.FromClause {
		_, r := an.fromItem(lv, f)
		rep = an.combine(rep, r)
	}
	lv.rep = rep
	an.qual(&qualCtx{lv: lv, where: true}, s.WhereClause)
	an.assignments(lv, target, s.TargetList)
	an.returning(lv, s.ReturningList)
	an.endLevel(lv, rep)
}

func (an *analyzer) delete(lv *level, s *pg.DeleteStmt) {
	an.with(lv, s.WithClause)
	an.note("DELETE")
	target := an.relation(lv, s.Relation, true, true)
	rep := target.rep
	lv.rep = rep
	an.noteTarget(lv, target)
	for _, f := range s.UsingClause {
		_, r := an.fromItem(lv, f)
		rep = an.combine(rep, r)
	}
	lv.rep = rep
	an.qual(&qualCtx{lv: lv, where: true}, s.WhereClause)
	an.returning(lv, s.ReturningList)
	an.endLevel(lv, rep)
}

// noteTarget counts a sharded UPDATE/DELETE target as read by the level:
// its rows are the level's rows.
func (an *analyzer) noteTarget(lv *level, target *item) {
	if target.node >= 0 {
		lv.noteSharded(target.sharded)
	}
}

func (an *analyzer) returning(lv *level, list []*pg.Node) {
	for _, r := range list {
		an.walk(lv, r, false)
	}
	an.outputsOf(lv, list, nil)
}

// merge: MERGE into a sharded table is refused (its INSERT branch would
// need per-row routing); into other tables it is analyzed like a join.
func (an *analyzer) merge(lv *level, s *pg.MergeStmt) {
	an.with(lv, s.WithClause)
	an.note("MERGE")
	target := an.relation(lv, s.Relation, true, true)
	if target.node >= 0 {
		an.refuse(fmt.Sprintf("MERGE into sharded table %s is not supported", target.sharded),
			"use INSERT ... ON CONFLICT, UPDATE or DELETE")
	}
	_, rep := an.fromItem(lv, s.SourceRelation)
	rep = an.combine(target.rep, rep)
	// Unmatched source rows matter too (WHEN NOT MATCHED): the condition
	// only filters the target's rows.
	an.qual(&qualCtx{lv: lv, outer: true, nullable: []*item{target}}, s.JoinCondition)
	for _, w := range s.MergeWhenClauses {
		an.walk(lv, w, false)
	}
	an.returning(lv, s.ReturningList)
	an.endLevel(lv, rep)
}
