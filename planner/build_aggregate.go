package planner

// Aggregates across shards: each shard answers partial aggregates per group
// and an Aggregate combines them (count and sum add up, min and max compare,
// bool_and and bool_or fold, avg is a sum divided by a count). The shard
// statement keeps GROUP BY and the target list, with each avg(x) turned into
// sum(x) at its place and a hidden count(x), hidden binary copies of the
// group expressions, and hidden partials for aggregates only HAVING or
// ORDER BY name. HAVING becomes a Filter over the merged columns when it
// compares aggregates or group expressions with constants; ORDER BY a Sort;
// LIMIT a Limit (the shards cannot cut partial groups). An aggregate the
// merger cannot combine exactly (count(DISTINCT x), string_agg, stddev,
// percentiles, user-defined ones) is refused.

import (
	"sort"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// partialFuncs: the aggregates whose partials combine exactly.
var partialFuncs = map[string]AggregateFunc{
	"count": AggCount, "sum": AggSum, "min": AggMin, "max": AggMax, "avg": AggAvg,
	"bool_and": AggBoolAnd, "every": AggBoolAnd, "bool_or": AggBoolOr,
}

const groupByKeyHint = "GROUP BY the sharding key (groups then stay on one shard), or filter the tables by key so one shard answers"

func (s *scatter) aggregate(route *Route) (Primitive, error) {
	sel := s.sel
	if len(sel.DistinctClause) > 0 {
		return nil, refuseErr(groupByKeyHint, "SELECT DISTINCT with aggregates across shards is not supported")
	}
	if s.visible < 0 || s.visible != len(sel.TargetList) {
		return nil, refuseErr("list the columns instead of *", "* with aggregates across shards is not supported")
	}
	s.funcs = map[int]AggregateColumn{}
	for _, g := range sel.GroupClause {
		e, err := s.groupExpr(g)
		if err != nil {
			return nil, err
		}
		if _, err := s.hideKeyed(e, s.key(e), AggGroupKey); err != nil {
			return nil, err
		}
	}
	// Aggregates of the select list by their text (before avg becomes
	// sum), so HAVING and ORDER BY find them.
	aggTargets := map[string]int{}
	for i, t := range sel.TargetList {
		rt := t.GetResTarget()
		if fc := rt.Val.GetFuncCall(); fc != nil && s.an.aggregateName(fc) != "" {
			k := s.key(rt.Val)
			if err := s.partial(i, rt); err != nil {
				return nil, err
			}
			if _, ok := aggTargets[k]; !ok {
				aggTargets[k] = i
			}
			continue
		}
		if hasWindow(rt.Val) {
			return nil, refuseErr(groupByKeyHint, "window functions over aggregates across shards are not supported")
		}
		if s.an.containsAggregate(rt.Val) {
			return nil, refuseErr("select the aggregates themselves and compute with them in the application, or "+groupByKeyHint,
				"an expression over aggregates across shards is not supported")
		}
		s.funcs[i] = AggregateColumn{Column: i, Func: AggAny}
	}
	var cond *Condition
	if sel.HavingClause != nil {
		c, err := s.condition(sel.HavingClause, aggTargets)
		if err != nil {
			return nil, err
		}
		cond = c
	}
	var sortKeys []SortKey
	for _, n := range sel.SortClause {
		sb := n.GetSortBy()
		col, err := s.sortColumn(sb.Node, aggTargets)
		if err != nil {
			return nil, err
		}
		k, err := sortKey(sb, col)
		if err != nil {
			return nil, err
		}
		sortKeys = append(sortKeys, k)
	}
	count, offset, err := s.limits()
	if err != nil {
		return nil, err
	}
	sel.HavingClause, sel.SortClause = nil, nil
	sel.LimitCount, sel.LimitOffset, sel.LimitOption = nil, nil, pg.LimitOption_LIMIT_OPTION_DEFAULT
	if err := s.finishRoute(route); err != nil {
		return nil, err
	}
	cols := make([]AggregateColumn, 0, len(s.funcs))
	for _, c := range s.funcs {
		cols = append(cols, c)
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i].Column < cols[j].Column })
	var root Primitive = &Aggregate{Input: route, Columns: cols, Grouped: len(sel.GroupClause) > 0}
	if cond != nil {
		root = &Filter{Input: root, Cond: cond}
	}
	if len(sortKeys) > 0 {
		root = &Sort{Input: root, Keys: sortKeys}
	}
	if count != nil || offset != nil {
		root = &Limit{Input: root, Count: count, Offset: offset}
	}
	return s.project(root), nil
}

// hideKeyed is hide under an explicit key (an avg's hidden sum must not be
// taken for a sum(x) of the query).
func (s *scatter) hideKeyed(e *pg.Node, key string, f AggregateFunc) (int, error) {
	if col, ok := s.hiddenBy[key]; ok {
		return col, nil
	}
	col, err := s.hide(e, f)
	if err == nil {
		s.hiddenBy[key] = col
	}
	return col, err
}

// partial sets up the select list's aggregate at column i.
func (s *scatter) partial(i int, rt *pg.ResTarget) error {
	fc := rt.Val.GetFuncCall()
	f, err := s.partialFunc(fc)
	if err != nil {
		return err
	}
	if f != AggAvg {
		s.funcs[i] = AggregateColumn{Column: i, Func: f}
		return nil
	}
	if rt.Name == "" {
		rt.Name = "avg"
	}
	countCol, err := s.hideKeyed(aggCall("count", fc), "count of "+s.key(rt.Val), AggCount)
	if err != nil {
		return err
	}
	s.funcs[i] = AggregateColumn{Column: i, Func: AggAvg, CountColumn: countCol, Name: rt.Name}
	rt.Val = aggCall("sum", fc)
	return nil
}

// partialFunc says how an aggregate's partials combine, or refuses it.
func (s *scatter) partialFunc(fc *pg.FuncCall) (AggregateFunc, error) {
	name := s.an.aggregateName(fc)
	f, ok := partialFuncs[name]
	if !ok {
		return "", refuseErr(groupByKeyHint, "aggregate %s cannot be combined across shards", name)
	}
	if fc.AggWithinGroup {
		return "", refuseErr(groupByKeyHint, "%s WITHIN GROUP across shards is not supported", name)
	}
	if fc.AggDistinct && (f == AggCount || f == AggSum || f == AggAvg) {
		return "", refuseErr(groupByKeyHint, "%s(DISTINCT ...) across shards is not supported", name)
	}
	return f, nil
}

// aggCall is a call of fn with the arguments and FILTER of another
// aggregate: avg(x) FILTER (WHERE p) gives sum(x) FILTER (WHERE p) and
// count(x) FILTER (WHERE p).
func aggCall(fn string, of *pg.FuncCall) *pg.Node {
	return &pg.Node{Node: &pg.Node_FuncCall{FuncCall: &pg.FuncCall{
		Funcname:   []*pg.Node{pg.MakeStrNode(fn)},
		Args:       of.Args,
		AggFilter:  of.AggFilter,
		AggOrder:   of.AggOrder,
		Funcformat: pg.CoercionForm_COERCE_EXPLICIT_CALL,
		Location:   -1,
	}}}
}

// aggColumn returns the column with the partials of an aggregate named in
// HAVING or ORDER BY: the select list's own, or a hidden one.
func (s *scatter) aggColumn(e *pg.Node, aggTargets map[string]int) (int, error) {
	k := s.key(e)
	if col, ok := aggTargets[k]; ok {
		return col, nil
	}
	fc := e.GetFuncCall()
	f, err := s.partialFunc(fc)
	if err != nil {
		return 0, err
	}
	if f != AggAvg {
		return s.hideKeyed(e, k, f)
	}
	sumCol, err := s.hideKeyed(aggCall("sum", fc), "avg sum of "+k, AggAvg)
	if err != nil {
		return 0, err
	}
	countCol, err := s.hideKeyed(aggCall("count", fc), "count of "+k, AggCount)
	if err != nil {
		return 0, err
	}
	s.funcs[sumCol] = AggregateColumn{Column: sumCol, Func: AggAvg, CountColumn: countCol, Name: "avg"}
	return sumCol, nil
}

// operandColumn is the merged column for an operand of HAVING or ORDER
// BY: an aggregate's partials, or a copy of an expression of the group
// keys (the group key column itself when it is one).
func (s *scatter) operandColumn(e *pg.Node, aggTargets map[string]int) (int, error) {
	if fc := e.GetFuncCall(); fc != nil && s.an.aggregateName(fc) != "" {
		return s.aggColumn(e, aggTargets)
	}
	if s.an.containsAggregate(e) {
		return 0, refuseErr("compare or order by the aggregate itself, or "+groupByKeyHint,
			"an expression over aggregates in HAVING or ORDER BY across shards is not supported")
	}
	return s.hideKeyed(e, s.key(e), AggAny)
}

// sortColumn resolves an ORDER BY item of an aggregated query.
func (s *scatter) sortColumn(n *pg.Node, aggTargets map[string]int) (int, error) {
	e, target, err := s.outputExpr(n, "ORDER BY")
	if err != nil {
		return 0, err
	}
	if err := checkCollation(e); err != nil {
		return 0, err
	}
	if target < 0 {
		if t, ok := s.visibleExpr[s.key(e)]; ok {
			target = t
		}
	}
	if target >= 0 && s.funcs[target].Func != AggAny {
		return target, nil // a merged aggregate
	}
	return s.operandColumn(e, aggTargets)
}

// comparisonOps are the operators a Filter evaluates, and each one's
// mirror image for a constant on the left.
var comparisonOps = map[string]string{"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// condition turns HAVING into a Condition over merged columns.
func (s *scatter) condition(n *pg.Node, aggTargets map[string]int) (*Condition, error) {
	const hint = "compare aggregates or group columns with constants or parameters, combined with AND, OR and NOT; or " + groupByKeyHint
	switch x := n.GetNode().(type) {
	case *pg.Node_BoolExpr:
		c := &Condition{}
		switch x.BoolExpr.Boolop {
		case pg.BoolExprType_AND_EXPR:
			c.Op = "AND"
		case pg.BoolExprType_OR_EXPR:
			c.Op = "OR"
		default:
			c.Op = "NOT"
		}
		for _, arg := range x.BoolExpr.Args {
			ac, err := s.condition(arg, aggTargets)
			if err != nil {
				return nil, err
			}
			c.Args = append(c.Args, ac)
		}
		return c, nil
	case *pg.Node_AExpr:
		e := x.AExpr
		op := operatorName(e.Name)
		mirror, ok := comparisonOps[op]
		if e.Kind != pg.A_Expr_Kind_AEXPR_OP || !ok {
			break
		}
		if v, ok := s.an.keyValue(e.Rexpr); ok && !isNullConst(e.Rexpr) {
			col, err := s.operandColumn(e.Lexpr, aggTargets)
			if err != nil {
				return nil, err
			}
			return &Condition{Op: op, Column: col, Value: v}, nil
		}
		if v, ok := s.an.keyValue(e.Lexpr); ok && !isNullConst(e.Lexpr) {
			col, err := s.operandColumn(e.Rexpr, aggTargets)
			if err != nil {
				return nil, err
			}
			return &Condition{Op: mirror, Column: col, Value: v}, nil
		}
	}
	return nil, refuseErr(hint, "this HAVING condition cannot be evaluated on groups merged from several shards")
}

// operatorName returns an operator's name without a pg_catalog qualifier
// ("" for a qualifier of another schema).
func operatorName(names []*pg.Node) string {
	switch len(names) {
	case 1:
		return strVal(names[0])
	case 2:
		if strVal(names[0]) == "pg_catalog" {
			return strVal(names[1])
		}
	}
	return ""
}

// groupExpr resolves a GROUP BY item as PostgreSQL does: a position names
// a target, a bare name an input column first, then an output column.
func (s *scatter) groupExpr(g *pg.Node) (*pg.Node, error) {
	if c := g.GetAConst(); c != nil && c.GetIval() != nil {
		e, _, err := s.outputExpr(g, "GROUP BY")
		return e, err
	}
	cr := g.GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 || cr.Fields[0].GetString_() == nil {
		return g, nil
	}
	name := strVal(cr.Fields[0])
	var alias *pg.Node
	for _, t := range s.sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Name == name {
			alias = rt.Val
			break
		}
	}
	if alias == nil {
		return g, nil
	}
	switch inputColumn(s.an.top, name) {
	case 1:
		return g, nil
	case 0:
		return alias, nil
	}
	if ac := alias.GetColumnRef(); ac != nil && len(ac.Fields) == 1 && strVal(ac.Fields[0]) == name {
		return g, nil
	}
	return nil, refuseErr("qualify the column, or group by the expression itself",
		"GROUP BY %s: the proxy cannot tell the column from the output column of that name", name)
}

// inputColumn says whether the FROM items of lv have a column: yes (1),
// no (0) or maybe (-1, a table whose columns the catalog does not know).
func inputColumn(lv *level, name string) int {
	for _, m := range lv.merged {
		if m.name == name {
			return 1
		}
	}
	answer := 0
	for _, it := range lv.items {
		switch it.hasColumn(name) {
		case 1:
			return 1
		case -1:
			answer = -1
		}
	}
	return answer
}

// hasWindow reports a window function call of this level in n.
func hasWindow(n *pg.Node) bool {
	found := false
	visit(n, func(x *pg.Node) bool {
		switch y := x.GetNode().(type) {
		case *pg.Node_SubLink, *pg.Node_SelectStmt:
			return false
		case *pg.Node_FuncCall:
			found = found || y.FuncCall.Over != nil
		}
		return !found
	})
	return found
}
