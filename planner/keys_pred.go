package planner

// Predicates: which key values a WHERE or ON condition allows, which keys
// it equates (joins on the key), and the subqueries and function calls
// inside expressions.

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// qualCtx is where a condition appears. In WHERE (and an inner join's ON)
// a condition filters every row of the level; in an outer join's ON it
// filters only the rows of the nullable side.
type qualCtx struct {
	lv       *level
	where    bool // WHERE: EXISTS and IN conjuncts are semi-joins
	outer    bool // an outer join's ON
	nullable []*item
}

// valid reports whether the condition holds for every row of r's table
// that matters, so that it bounds the table's keys.
func (c *qualCtx) valid(r colRef) bool {
	if r.lv == c.lv {
		if !c.outer {
			return true
		}
		for _, it := range c.nullable {
			if it == r.it {
				return true
			}
		}
		return false
	}
	if c.outer {
		return false
	}
	// An outer level's column: the condition filters the outer rows only
	// through semi-joins all the way up.
	for l := c.lv; l != r.lv; l = l.parent {
		if l == nil || !l.semi {
			return false
		}
	}
	return true
}

type nodeKeys struct {
	node int
	keys []KeyValue
}

// qual analyzes a condition conjunct by conjunct.
func (an *analyzer) qual(c *qualCtx, n *pg.Node) {
	switch x := n.GetNode().(type) {
	case nil:
		return
	case *pg.Node_BoolExpr:
		if x.BoolExpr.Boolop == pg.BoolExprType_AND_EXPR {
			for _, a := range x.BoolExpr.Args {
				an.qual(c, a)
			}
			return
		}
	case *pg.Node_SubLink:
		an.sublink(c, x.SubLink, true)
		return
	case *pg.Node_AExpr:
		e := x.AExpr
		if e.Kind == pg.A_Expr_Kind_AEXPR_OP && isEqualsOp(e.Name) {
			l, r := e.Lexpr.GetColumnRef(), e.Rexpr.GetColumnRef()
			if l != nil && r != nil {
				lr, lok := resolve(c.lv, l)
				rr, rok := resolve(c.lv, r)
				if lok && rok && lr.node >= 0 && rr.node >= 0 {
					an.keyEquality(c, lr, rr)
				}
				return
			}
			lrow, rrow := e.Lexpr.GetRowExpr(), e.Rexpr.GetRowExpr()
			if lrow != nil && rrow != nil && len(lrow.Args) == len(rrow.Args) {
				for i := range lrow.Args {
					an.qual(c, &pg.Node{Node: &pg.Node_AExpr{AExpr: &pg.A_Expr{
						Kind: pg.A_Expr_Kind_AEXPR_OP, Name: e.Name, Lexpr: lrow.Args[i], Rexpr: rrow.Args[i]}}})
				}
				return
			}
		}
	}
	for _, b := range an.keysOf(c, n) {
		an.g.bind(b.node, b.keys)
	}
	an.walk(c.lv, n, false)
}

// keyEquality records a = b between two keys: colocation, and keys flow
// to each side the condition filters.
func (an *analyzer) keyEquality(c *qualCtx, a, b colRef) {
	an.g.link(a.node, b.node, c.valid(b), c.valid(a))
	if !c.outer && (a.lv == c.lv) != (b.lv == c.lv) {
		c.lv.correlated = true
	}
}

// keysOf returns the key values a condition allows, per key node.
func (an *analyzer) keysOf(c *qualCtx, n *pg.Node) []nodeKeys {
	switch x := n.GetNode().(type) {
	case *pg.Node_BoolExpr:
		switch x.BoolExpr.Boolop {
		case pg.BoolExprType_AND_EXPR:
			var acc []nodeKeys
			for _, a := range x.BoolExpr.Args {
				acc = mergeAnd(acc, an.keysOf(c, a))
			}
			return acc
		case pg.BoolExprType_OR_EXPR:
			var acc []nodeKeys
			for i, a := range x.BoolExpr.Args {
				ks := an.keysOf(c, a)
				if i == 0 {
					acc = ks
					continue
				}
				acc = mergeOr(acc, ks)
				if len(acc) == 0 {
					return nil
				}
			}
			return acc
		}
	case *pg.Node_AExpr:
		return an.comparisonKeys(c, x.AExpr)
	}
	return nil
}

func mergeAnd(acc, ks []nodeKeys) []nodeKeys {
next:
	for _, k := range ks {
		for i := range acc {
			if acc[i].node == k.node {
				if len(k.keys) < len(acc[i].keys) {
					acc[i].keys = k.keys
				}
				continue next
			}
		}
		acc = append(acc, k)
	}
	return acc
}

// mergeOr keeps the nodes both sides bound, with the union of their keys.
func mergeOr(acc, ks []nodeKeys) []nodeKeys {
	var out []nodeKeys
	for _, a := range acc {
		for _, k := range ks {
			if a.node == k.node {
				out = append(out, nodeKeys{a.node, addKeys(addKeys(nil, a.keys), k.keys)})
			}
		}
	}
	return out
}

// comparisonKeys handles key = v, v = key, key IS NOT DISTINCT FROM v,
// key IN (...), (key, x) IN ((...), ...), key = ANY(array).
func (an *analyzer) comparisonKeys(c *qualCtx, e *pg.A_Expr) []nodeKeys {
	if !isEqualsOp(e.Name) {
		return nil
	}
	key := func(n *pg.Node) (int, bool) {
		cr := n.GetColumnRef()
		if cr == nil {
			return -1, false
		}
		r, ok := resolve(c.lv, cr)
		if !ok || r.node < 0 || !c.valid(r) {
			return -1, false
		}
		return r.node, true
	}
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		if k, ok := key(e.Lexpr); ok {
			if v, ok := an.keyValue(e.Rexpr); ok {
				return []nodeKeys{{k, []KeyValue{v}}}
			}
		}
		if k, ok := key(e.Rexpr); ok {
			if v, ok := an.keyValue(e.Lexpr); ok {
				return []nodeKeys{{k, []KeyValue{v}}}
			}
		}
	case pg.A_Expr_Kind_AEXPR_IN:
		list := e.Rexpr.GetList()
		if list == nil {
			return nil
		}
		if k, ok := key(e.Lexpr); ok {
			var vs []KeyValue
			for _, it := range list.Items {
				if isNullConst(it) {
					continue
				}
				v, ok := an.keyValue(it)
				if !ok {
					return nil
				}
				vs = appendKey(vs, v)
			}
			if len(vs) > 0 {
				return []nodeKeys{{k, vs}}
			}
			return nil
		}
		row := e.Lexpr.GetRowExpr()
		if row == nil {
			return nil
		}
		var out []nodeKeys
	cols:
		for i, col := range row.Args {
			k, ok := key(col)
			if !ok {
				continue
			}
			var vs []KeyValue
			for _, it := range list.Items {
				r := it.GetRowExpr()
				if r == nil || len(r.Args) != len(row.Args) {
					return nil
				}
				v, ok := an.keyValue(r.Args[i])
				if !ok {
					continue cols
				}
				vs = appendKey(vs, v)
			}
			out = mergeAnd(out, []nodeKeys{{k, vs}})
		}
		return out
	case pg.A_Expr_Kind_AEXPR_OP_ANY:
		if k, ok := key(e.Lexpr); ok {
			if vs, ok := an.arrayValues(e.Rexpr); ok {
				return []nodeKeys{{k, distinctKeys(vs)}}
			}
		}
	}
	return nil
}

// sublink analyzes a subquery in an expression. A conjunct EXISTS or
// key IN (SELECT key ...) of a WHERE is a semi-join: its conditions bound
// the outer rows too.
func (an *analyzer) sublink(c *qualCtx, sl *pg.SubLink, conjunct bool) {
	s := sl.Subselect.GetSelectStmt()
	isIn := sl.SubLinkType == pg.SubLinkType_ANY_SUBLINK && (len(sl.OperName) == 0 || isEqualsOp(sl.OperName))
	if s == nil {
		an.walk(c.lv, sl.Testexpr, false)
		return
	}
	sub := newLevel(c.lv, c.lv)
	sub.semi = conjunct && c.where && !c.outer && (isIn || sl.SubLinkType == pg.SubLinkType_EXISTS_SUBLINK)
	an.selectInto(sub, s)
	c.lv.noteSharded(sub.sharded)
	if sub.rep >= 0 && (sub.partitioned || sub.correlated) {
		// Each shard evaluates the subquery with its own rows: they must
		// be the rows the outer query's row meets (a level that is not
		// partitioned itself is refused when it ends).
		an.combine(c.lv.rep, sub.rep)
	}
	if isIn {
		if cr := sl.Testexpr.GetColumnRef(); cr != nil {
			r, ok := resolve(c.lv, cr)
			if ok && r.node >= 0 && sub.partitioned && sub.exact >= 1 && sub.outputs[0].node >= 0 {
				an.g.link(r.node, sub.outputs[0].node, true, sub.semi && c.valid(r))
			}
			return
		}
	}
	an.walk(c.lv, sl.Testexpr, false)
}

// walk visits an expression for function calls, aggregates and subqueries.
// aggOK: aggregates here belong to the level (target list, HAVING, ORDER BY).
func (an *analyzer) walk(lv *level, n *pg.Node, aggOK bool) {
	switch x := n.GetNode().(type) {
	case nil, *pg.Node_ColumnRef, *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_AStar,
		*pg.Node_SetToDefault, *pg.Node_SqlvalueFunction, *pg.Node_String_, *pg.Node_Integer:
	case *pg.Node_AExpr:
		an.walk(lv, x.AExpr.Lexpr, aggOK)
		an.walk(lv, x.AExpr.Rexpr, aggOK)
	case *pg.Node_BoolExpr:
		an.walkList(lv, x.BoolExpr.Args, aggOK)
	case *pg.Node_List:
		an.walkList(lv, x.List.Items, aggOK)
	case *pg.Node_ResTarget:
		an.walk(lv, x.ResTarget.Val, aggOK)
		an.walkList(lv, x.ResTarget.Indirection, aggOK)
	case *pg.Node_TypeCast:
		an.walk(lv, x.TypeCast.Arg, aggOK)
	case *pg.Node_FuncCall:
		an.funcCall(lv, x.FuncCall, aggOK)
	case *pg.Node_SubLink:
		an.sublink(&qualCtx{lv: lv}, x.SubLink, false)
	case *pg.Node_SelectStmt:
		an.sublink(&qualCtx{lv: lv}, &pg.SubLink{SubLinkType: pg.SubLinkType_EXPR_SUBLINK, Subselect: n}, false)
	case *pg.Node_NullTest:
		an.walk(lv, x.NullTest.Arg, aggOK)
	case *pg.Node_BooleanTest:
		an.walk(lv, x.BooleanTest.Arg, aggOK)
	case *pg.Node_CaseExpr:
		an.walk(lv, x.CaseExpr.Arg, aggOK)
		an.walkList(lv, x.CaseExpr.Args, aggOK)
		an.walk(lv, x.CaseExpr.Defresult, aggOK)
	case *pg.Node_CaseWhen:
		an.walk(lv, x.CaseWhen.Expr, aggOK)
		an.walk(lv, x.CaseWhen.Result, aggOK)
	case *pg.Node_CoalesceExpr:
		an.walkList(lv, x.CoalesceExpr.Args, aggOK)
	case *pg.Node_MinMaxExpr:
		an.walkList(lv, x.MinMaxExpr.Args, aggOK)
	case *pg.Node_AArrayExpr:
		an.walkList(lv, x.AArrayExpr.Elements, aggOK)
	case *pg.Node_RowExpr:
		an.walkList(lv, x.RowExpr.Args, aggOK)
	case *pg.Node_SortBy:
		an.walk(lv, x.SortBy.Node, aggOK)
	case *pg.Node_CollateClause:
		an.walk(lv, x.CollateClause.Arg, aggOK)
	case *pg.Node_NamedArgExpr:
		an.walk(lv, x.NamedArgExpr.Arg, aggOK)
	case *pg.Node_AIndirection:
		an.walk(lv, x.AIndirection.Arg, aggOK)
		an.walkList(lv, x.AIndirection.Indirection, aggOK)
	case *pg.Node_MultiAssignRef:
		an.walk(lv, x.MultiAssignRef.Source, aggOK)
	default:
		an.walkMessage(lv, n.ProtoReflect(), aggOK)
	}
}

func (an *analyzer) walkList(lv *level, ns []*pg.Node, aggOK bool) {
	for _, n := range ns {
		an.walk(lv, n, aggOK)
	}
}

// walkMessage visits every node inside a message the switch in walk does
// not know, so no function call or subquery is missed.
func (an *analyzer) walkMessage(lv *level, m protoreflect.Message, aggOK bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		visit := func(m protoreflect.Message) {
			if n, ok := m.Interface().(*pg.Node); ok {
				an.walk(lv, n, aggOK)
			} else {
				an.walkMessage(lv, m, aggOK)
			}
		}
		if fd.IsList() {
			l := v.List()
			for i := range l.Len() {
				visit(l.Get(i).Message())
			}
		} else {
			visit(v.Message())
		}
		return true
	})
}

// funcCall checks a call for side effects and notes aggregates and
// window functions on the level.
func (an *analyzer) funcCall(lv *level, f *pg.FuncCall, aggOK bool) {
	schema, fn := funcName(f.Funcname)
	builtin := an.checkFunction(schema, fn)
	switch {
	case f.Over != nil:
		lv.windows = append(lv.windows, f.Over)
		an.walkList(lv, f.Over.PartitionClause, false)
		an.walkList(lv, f.Over.OrderClause, false)
	case aggOK && (f.AggStar || f.AggDistinct || len(f.AggOrder) > 0 || f.AggFilter != nil || f.AggWithinGroup ||
		builtin && isAggregate(fn) || !builtin && !an.knownReadOnly(schema, fn)):
		// An unknown function may be a user-defined aggregate.
		lv.aggregate = true
	}
	an.walkList(lv, f.Args, false)
	an.walkList(lv, f.AggOrder, false)
	an.walk(lv, f.AggFilter, false)
}

func funcName(names []*pg.Node) (schema, fn string) {
	switch len(names) {
	case 0:
		return "", ""
	case 1:
		return "", strVal(names[0])
	}
	return strVal(names[len(names)-2]), strVal(names[len(names)-1])
}

// checkFunction notes a call's side effect, if any, and reports whether it
// is a pg_catalog function.
func (an *analyzer) checkFunction(schema, fn string) (builtin bool) {
	if schema == "" || schema == "pg_catalog" {
		if sideEffectFunctions[fn] {
			an.note(fn + "()")
			return true
		}
		if isBuiltinRead(fn) {
			return true
		}
	}
	// A user function may change settings (set_config), take advisory
	// locks or LISTEN: effects on the server session the router must
	// look for afterwards, read-only or not.
	an.userFunction = true
	if !an.knownReadOnly(schema, fn) {
		q := fn
		if schema != "" {
			q = schema + "." + fn
		}
		an.note(q + "() (not known to be read-only)")
	}
	return false
}

func (an *analyzer) knownReadOnly(schema, fn string) bool {
	return an.rof != nil && an.rof.IsReadOnlyFunction(schema, fn)
}
