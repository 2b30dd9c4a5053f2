package planner

// Scatter reads: a SELECT whose rows come from several shards. Each shard
// runs a rewritten statement and the router merges the answers so the
// client gets what one PostgreSQL holding every row would say (DESIGN.md
// section 3, "Merging"):
//
//   - ORDER BY: every sort expression is appended to the target list as a
//     hidden column (read in binary), the shards sort as the client asked,
//     and a MergeSort interleaves the sorted streams by the hidden columns;
//   - DISTINCT (ON): the shards keep it, hidden copies of the distinct
//     expressions feed a Distinct;
//   - LIMIT n OFFSET m: the shards return their first n+m rows (LIMIT
//     n + m, no OFFSET), a Limit skips m and keeps n;
//   - aggregates and GROUP BY: see build_aggregate.go.
//
// A SELECT grouped by a sharding key needs none of the aggregate merging:
// a group never spans shards, so its rows are final on the shard. What no
// merge makes exact (window functions not partitioned by a key, UNION,
// INTERSECT, EXCEPT, aggregates the merger cannot combine) is refused.

import (
	"errors"
	"math"
	"strconv"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/pgerror"
)

// refusal is a Build decision to refuse, passed up as an error.
type refusal struct{ Refusal }

func (r *refusal) Error() string { return r.Message }

func refuseErr(hint, format string, args ...any) error {
	return refuseCode(pgerror.FeatureNotSupported, hint, format, args...)
}

func refuseCode(code pgerror.Code, hint, format string, args ...any) error {
	return &refusal{Refusal{Code: code, Message: sprintf(format, args...), Hint: hint}}
}

// refusedPlan turns a refusal error into a plan.
func refusedPlan(a *Analysis, err error) *Plan {
	var r *refusal
	if errors.As(err, &r) {
		return plan(a, &Refuse{Refusal: r.Refusal})
	}
	return refusePlan(a, pgerror.InternalError, "", "planner: %v", err)
}

// scatter rewrites one top-level SELECT for several shards.
type scatter struct {
	an  *analyzer
	sel *pg.SelectStmt // rewritten in place into the shard statement
	// visible is the number of columns the client sees; -1 when a *
	// expands to columns the catalog does not know.
	visible  int
	hidden   []*pg.Node     // targets appended after the visible ones
	hiddenBy map[string]int // expression text -> column
	// visibleExpr maps a visible target's expression text to its column.
	visibleExpr map[string]int
	keys        map[*pg.Node]string
	// funcs: in the aggregate shape, how each column is combined.
	funcs map[int]AggregateColumn
}

func (b *builder) scatter(an *analyzer, sel *pg.SelectStmt, route *Route) *Plan {
	s := &scatter{an: an, sel: sel, hiddenBy: map[string]int{}, keys: map[*pg.Node]string{}}
	root, err := s.build(route)
	if err != nil {
		p := refusedPlan(an.out, err)
		// A merge the proxy cannot do exactly is no obstacle on one
		// shard: a shard hint lifts it. PostgreSQL's own errors stand.
		if r, ok := p.Root.(*Refuse); ok && r.Refusal.Code == pgerror.FeatureNotSupported {
			p.spansShards = true
		}
		return p
	}
	return plan(an.out, root)
}

func (s *scatter) build(route *Route) (Primitive, error) {
	sel, top := s.sel, s.an.top
	if sel.Op != pg.SetOperation_SETOP_NONE {
		return s.setOperation(route)
	}
	if s.an.windowsUnsafe(top) {
		return nil, refuseErr("PARTITION BY the sharding key, or filter the tables by key so one shard answers",
			"window functions over rows of several shards are not supported")
	}
	if top.groupingSets {
		return nil, refuseErr("filter the tables by key so one shard answers, or run one GROUP BY per grouping",
			"GROUPING SETS, ROLLUP and CUBE over rows of several shards are not supported")
	}
	s.visible = s.visibleCount()
	s.visibleExpr = map[string]int{}
	if s.visible >= 0 {
		for i, t := range sel.TargetList {
			if rt := t.GetResTarget(); rt != nil {
				if _, ok := s.visibleExpr[s.key(rt.Val)]; !ok {
					s.visibleExpr[s.key(rt.Val)] = i
				}
			}
		}
	}
	if !top.groupKey && (len(sel.GroupClause) > 0 || sel.HavingClause != nil || s.hasAggregates()) {
		return s.aggregate(route)
	}
	return s.rows(route)
}

// setOperation: UNION ALL of branches each partitioned by a key is the
// concatenation of the shards' answers; anything that removes duplicates
// or orders across the branches would need a merge of its own.
func (s *scatter) setOperation(route *Route) (Primitive, error) {
	sel, top := s.sel, s.an.top
	if top.setop != "" {
		return nil, refuseErr("use UNION ALL, or filter the tables by key so one shard answers",
			"%s over rows of several shards is not supported", top.setop)
	}
	if len(sel.SortClause) > 0 || sel.LimitCount != nil || sel.LimitOffset != nil {
		return nil, refuseErr("order or limit each branch in a subquery, or filter the tables by key so one shard answers",
			"ORDER BY or LIMIT on a UNION ALL over rows of several shards is not supported")
	}
	return route, nil
}

// visibleCount returns how many columns the client sees.
func (s *scatter) visibleCount() int {
	n := 0
	for _, t := range s.sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return -1
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) {
			top := s.an.top
			if top.exact != len(top.outputs) {
				return -1
			}
			return len(top.outputs)
		}
		if ind := rt.Val.GetAIndirection(); ind != nil && len(ind.Indirection) > 0 &&
			ind.Indirection[len(ind.Indirection)-1].GetAStar() != nil {
			return -1 // (composite).*
		}
		n++
	}
	return n
}

// key returns an expression's text, which identifies it: two expressions
// with one text are the same expression to PostgreSQL's matching of ORDER
// BY and GROUP BY items against the target list.
func (s *scatter) key(n *pg.Node) string {
	if k, ok := s.keys[n]; ok {
		return k
	}
	k := exprKey(n)
	s.keys[n] = k
	return k
}

// hide appends a hidden copy of e (once per expression) and returns its
// column. A volatile expression the client also sees would be computed
// twice, with two values, so it is refused.
func (s *scatter) hide(e *pg.Node, f AggregateFunc) (int, error) {
	k := s.key(e)
	if col, ok := s.hiddenBy[k]; ok {
		return col, nil
	}
	if s.visible < 0 {
		return 0, refuseErr("list the columns instead of *",
			"the columns of * are not known to the proxy, so it cannot add the sort, group or distinct columns it merges by")
	}
	if _, seen := s.visibleExpr[k]; seen && volatile(e) {
		return 0, refuseErr("compute the value in a subquery, or filter the tables by key so one shard answers",
			"a volatile expression in the select list cannot be ordered, grouped or made distinct across shards")
	}
	col := s.visible + len(s.hidden)
	s.hidden = append(s.hidden, pg.MakeResTargetNodeWithVal(e, -1))
	s.hiddenBy[k] = col
	if s.funcs != nil {
		s.funcs[col] = AggregateColumn{Column: col, Func: f}
	}
	return col, nil
}

// outputExpr resolves an ORDER BY or DISTINCT ON item the way PostgreSQL
// does: a position names a target, a bare name an output column first;
// anything else is an expression over the input. target is the target's
// index, -1 for an input expression.
func (s *scatter) outputExpr(n *pg.Node, clause string) (e *pg.Node, target int, err error) {
	targets := s.sel.TargetList
	if c := n.GetAConst(); c != nil {
		if iv := c.GetIval(); iv != nil {
			k := int(iv.Ival)
			for _, t := range targets[:min(max(k, 0), len(targets))] {
				if cr := t.GetResTarget().GetVal().GetColumnRef(); cr != nil && isStar(cr) {
					return nil, -1, refuseErr("name the column instead of its position",
						"%s position %d inside * cannot be merged across shards", clause, k)
				}
			}
			if k < 1 || k > len(targets) {
				if k > len(targets) && s.visible > len(targets) {
					return nil, -1, refuseErr("name the column instead of its position",
						"%s position %d inside * cannot be merged across shards", clause, k)
				}
				return nil, -1, refuseCode(invalidColumnReference, "", "%s position %d is not in select list", clause, k)
			}
			return targets[k-1].GetResTarget().GetVal(), k - 1, nil
		}
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
		name := strVal(cr.Fields[0])
		match := -1
		for i, t := range targets {
			rt := t.GetResTarget()
			if rt == nil || outputName(rt) != name {
				continue
			}
			if match >= 0 && s.key(targets[match].GetResTarget().Val) != s.key(rt.Val) {
				return nil, -1, refuseCode(ambiguousColumn, "", "%s \"%s\" is ambiguous", clause, name)
			}
			if match < 0 {
				match = i
			}
		}
		if match >= 0 {
			return targets[match].GetResTarget().Val, match, nil
		}
	}
	return n, -1, nil
}

// SQLSTATEs PostgreSQL answers for ORDER BY items it cannot resolve.
const (
	invalidColumnReference pgerror.Code = "42P10"
	ambiguousColumn        pgerror.Code = "42702"
)

// outputName is the column name PostgreSQL gives a target.
func outputName(rt *pg.ResTarget) string {
	if rt.Name != "" {
		return rt.Name
	}
	return targetName(rt.Val)
}

// sortKey reads an ORDER BY item's direction; USING operators are
// refused (the merge knows < and > only).
func sortKey(sb *pg.SortBy, col int) (SortKey, error) {
	k := SortKey{Column: col}
	switch sb.SortbyDir {
	case pg.SortByDir_SORTBY_DESC:
		k.Desc = true
	case pg.SortByDir_SORTBY_USING:
		return k, refuseErr("order by ASC or DESC, or filter the tables by key so one shard answers",
			"ORDER BY ... USING across shards is not supported")
	}
	k.NullsFirst = k.Desc
	switch sb.SortbyNulls {
	case pg.SortByNulls_SORTBY_NULLS_FIRST:
		k.NullsFirst = true
	case pg.SortByNulls_SORTBY_NULLS_LAST:
		k.NullsFirst = false
	}
	return k, nil
}

// checkCollation refuses a sort in a collation whose order is not the
// bytes' order: the merge compares bytes (the shards run with the C
// locale, DESIGN.md section 3).
func checkCollation(e *pg.Node) error {
	cc := e.GetCollateClause()
	if cc == nil {
		return nil
	}
	name := ""
	if len(cc.Collname) > 0 {
		name = strVal(cc.Collname[len(cc.Collname)-1])
	}
	switch name {
	case "C", "POSIX", "ucs_basic", "default":
		return nil
	}
	return refuseErr(`order by COLLATE "C", or filter the tables by key so one shard answers`,
		"ORDER BY in collation %q across shards is not supported: the proxy merges in byte order", name)
}

// rows builds the shape for a SELECT whose shard rows are final rows
// (no aggregate to combine): MergeSort, Distinct, Limit, Project.
func (s *scatter) rows(route *Route) (Primitive, error) {
	sel, top := s.sel, s.an.top
	count, offset, err := s.limits()
	if err != nil {
		return nil, err
	}
	limited := count != nil || offset != nil
	if limited && len(sel.LockingClause) > 0 {
		return nil, refuseErr("lock the rows without LIMIT, or filter the tables by key so one shard answers",
			"FOR UPDATE/SHARE with LIMIT across shards would lock rows the answer leaves out")
	}
	distinct := len(sel.DistinctClause) > 0 && !top.distinctKey
	distinctOn := len(sel.DistinctClause) > 0 && sel.DistinctClause[0].GetNode() != nil
	if len(sel.SortClause) == 0 && !distinct && !limited {
		return route, nil
	}
	// The shard keeps its ORDER BY as written: PostgreSQL matches each
	// item with the first equal target, which is the visible one or the
	// hidden copy, equal in value (a volatile visible key is refused), and
	// DISTINCT ON still sees its expressions first in ORDER BY.
	var sortKeys []SortKey
	for _, n := range sel.SortClause {
		sb := n.GetSortBy()
		e, target, err := s.outputExpr(sb.Node, "ORDER BY")
		if err != nil {
			return nil, err
		}
		if err := checkCollation(e); err != nil {
			return nil, err
		}
		if len(sel.DistinctClause) > 0 && !distinctOn && target < 0 {
			if _, ok := s.visibleExpr[s.key(e)]; !ok {
				return nil, refuseCode(invalidColumnReference, "",
					"for SELECT DISTINCT, ORDER BY expressions must appear in select list")
			}
		}
		col, err := s.hide(e, AggAny)
		if err != nil {
			return nil, err
		}
		k, err := sortKey(sb, col)
		if err != nil {
			return nil, err
		}
		sortKeys = append(sortKeys, k)
	}
	var distinctCols []int
	if distinct {
		if distinctOn {
			for _, d := range sel.DistinctClause {
				e, _, err := s.outputExpr(d, "SELECT DISTINCT ON")
				if err != nil {
					return nil, err
				}
				col, err := s.hide(e, AggAny)
				if err != nil {
					return nil, err
				}
				distinctCols = append(distinctCols, col)
			}
		} else {
			if s.visible < 0 || s.visible != len(sel.TargetList) {
				return nil, refuseErr("list the columns instead of *",
					"SELECT DISTINCT * across shards is not supported")
			}
			for i := range s.visible {
				col, err := s.hide(sel.TargetList[i].GetResTarget().Val, AggAny)
				if err != nil {
					return nil, err
				}
				distinctCols = append(distinctCols, col)
			}
		}
	}
	s.pushLimit(count, offset)
	if err := s.finishRoute(route); err != nil {
		return nil, err
	}
	var root Primitive = route
	if len(sortKeys) > 0 {
		root = &MergeSort{Input: root, Keys: sortKeys}
	}
	if distinct {
		root = &Distinct{Input: root, Columns: distinctCols}
	}
	if limited {
		root = &Limit{Input: root, Count: count, Offset: offset}
	}
	return s.project(root), nil
}

// finishRoute puts the rewritten statement on the route.
func (s *scatter) finishRoute(route *Route) error {
	s.sel.TargetList = append(s.sel.TargetList, s.hidden...)
	stmt := &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: s.sel}}
	if err := fixForDeparse(stmt); err != nil {
		return err
	}
	sql, err := deparseChecked(stmt)
	if err != nil {
		return refuseErr("filter the tables by key so one shard answers", "the statement cannot be rewritten for several shards: %v", err)
	}
	route.SQL = sql
	if len(s.hidden) > 0 {
		route.Hidden = len(s.hidden)
		route.Visible = s.visible
	}
	return nil
}

// project hides the hidden columns again.
func (s *scatter) project(root Primitive) Primitive {
	if len(s.hidden) == 0 {
		return root
	}
	cols := make([]int, s.visible)
	for i := range cols {
		cols[i] = i
	}
	return &Project{Input: root, Columns: cols}
}

// limits reads LIMIT and OFFSET: constants or parameters.
func (s *scatter) limits() (count, offset *Count, err error) {
	if s.sel.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES {
		return nil, nil, refuseErr("use LIMIT without WITH TIES, or filter the tables by key so one shard answers",
			"FETCH ... WITH TIES across shards is not supported")
	}
	if count, err = countOf(s.sel.LimitCount, "LIMIT"); err != nil {
		return nil, nil, err
	}
	offset, err = countOf(s.sel.LimitOffset, "OFFSET")
	return count, offset, err
}

func countOf(n *pg.Node, clause string) (*Count, error) {
	if n == nil {
		return nil, nil
	}
	arg := n
	if tc := n.GetTypeCast(); tc != nil {
		arg = tc.Arg
	}
	switch x := arg.GetNode().(type) {
	case *pg.Node_ParamRef:
		if x.ParamRef.Number <= 0 {
			return nil, refuseCode(undefinedParameter, "", "there is no parameter $%d", x.ParamRef.Number)
		}
		return &Count{Param: int(x.ParamRef.Number)}, nil
	case *pg.Node_AConst:
		c := x.AConst
		switch {
		case c.Isnull && arg == n:
			return nil, nil // LIMIT ALL, LIMIT NULL
		case c.GetIval() != nil && arg == n:
			return &Count{Value: int64(c.GetIval().Ival)}, nil
		case c.GetFval() != nil && arg == n:
			if v, err := strconv.ParseInt(c.GetFval().Fval, 10, 64); err == nil {
				return &Count{Value: v}, nil
			}
		}
	}
	return nil, refuseErr("give "+clause+" as a constant or a parameter, or filter the tables by key so one shard answers",
		"%s with an expression across shards is not supported", clause)
}

// pushLimit makes each shard return the first count+offset rows: any row
// of the answer is among its own shard's first count+offset.
func (s *scatter) pushLimit(count, offset *Count) {
	sel := s.sel
	if count == nil && offset == nil {
		return
	}
	sel.LimitOffset = nil
	switch {
	case count == nil:
		sel.LimitCount = nil
		sel.LimitOption = pg.LimitOption_LIMIT_OPTION_DEFAULT
	case offset == nil:
	case count.Param == 0 && offset.Param == 0:
		if offset.Value > 0 && count.Value > math.MaxInt64-offset.Value {
			sel.LimitCount = nil // no shard limit rather than an overflow
			sel.LimitOption = pg.LimitOption_LIMIT_OPTION_DEFAULT
			return
		}
		sel.LimitCount = pg.MakeAConstIntNode(count.Value+max(offset.Value, 0), -1)
	default:
		sel.LimitCount = pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("+")},
			limitOperand(count), limitOperand(offset), -1)
	}
}

// limitOperand is a LIMIT or OFFSET value in the shard's LIMIT sum. A
// parameter gets LIMIT's own type, int8, so the shard infers the type the
// client's statement had.
func limitOperand(c *Count) *pg.Node {
	if c.Param == 0 {
		return pg.MakeAConstIntNode(max(c.Value, 0), -1)
	}
	return &pg.Node{Node: &pg.Node_TypeCast{TypeCast: &pg.TypeCast{
		Arg:      pg.MakeParamRefNode(int32(c.Param), -1),
		TypeName: &pg.TypeName{Names: []*pg.Node{pg.MakeStrNode("pg_catalog"), pg.MakeStrNode("int8")}, Typemod: -1},
	}}}
}
