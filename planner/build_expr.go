package planner

// Expression helpers for the plan builder: walking a parse tree generically,
// naming an expression by its SQL text, telling aggregates and volatile
// calls apart, and deparsing a rewritten statement.

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// visit calls f for n and every node inside it, parents first; f returns
// false to skip a node's children.
func visit(n *pg.Node, f func(*pg.Node) bool) {
	if n == nil || n.GetNode() == nil {
		return
	}
	if !f(n) {
		return
	}
	visitMessage(n.ProtoReflect(), f)
}

func visitMessage(m protoreflect.Message, f func(*pg.Node) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		one := func(m protoreflect.Message) {
			if n, ok := m.Interface().(*pg.Node); ok {
				visit(n, f)
			} else {
				visitMessage(m, f)
			}
		}
		if fd.IsList() {
			l := v.List()
			for i := range l.Len() {
				one(l.Get(i).Message())
			}
		} else {
			one(v.Message())
		}
		return true
	})
}

// exprKey identifies an expression by its parse tree without locations:
// equal keys are equal expressions, as PostgreSQL matches ORDER BY and
// GROUP BY items against the target list.
func exprKey(n *pg.Node) string {
	c := proto.Clone(n).(*pg.Node)
	forCompare(c.ProtoReflect())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return fmt.Sprintf("\x00%p", n) // equal to nothing else
	}
	return string(b)
}

// deparseStmt turns a statement back into SQL.
func deparseStmt(stmt *pg.Node) (string, error) {
	return pg.Deparse(&pg.ParseResult{Version: parseTreeVersion(), Stmts: []*pg.RawStmt{{Stmt: stmt}}})
}

// deparseChecked is deparseStmt for SQL sent to shards: it parses the
// text again and refuses it unless the tree is the one written, so a gap
// in pg_query's deparser (it writes some rare constructs wrongly) can
// never change what a shard runs. It clears stmt's locations, which the
// caller no longer needs.
func deparseChecked(stmt *pg.Node) (string, error) {
	sql, err := deparseStmt(stmt)
	if err != nil {
		return "", err
	}
	tree, err := pg.Parse(sql)
	if err != nil {
		return "", fmt.Errorf("the rewritten statement does not parse: %w", err)
	}
	if len(tree.Stmts) != 1 {
		return "", errors.New("the rewritten statement is not one statement")
	}
	again := tree.Stmts[0].Stmt
	forCompare(stmt.ProtoReflect())
	forCompare(again.ProtoReflect())
	if !proto.Equal(stmt, again) {
		return "", errors.New("the rewritten statement does not parse back to itself")
	}
	return sql, nil
}

// forCompare clears what differs between equal trees: locations, and
// FETCH FIRST n ROWS ONLY, which the deparser writes as LIMIT n.
func forCompare(m protoreflect.Message) {
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.Int32Kind && strings.HasSuffix(string(fd.Name()), "location"):
			clear = append(clear, fd)
		case fd.Kind() == protoreflect.EnumKind && fd.Name() == "limit_option" &&
			v.Enum() == protoreflect.EnumNumber(pg.LimitOption_LIMIT_OPTION_COUNT):
			clear = append(clear, fd)
		case fd.Kind() == protoreflect.MessageKind && fd.IsList():
			l := v.List()
			for i := range l.Len() {
				forCompare(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			forCompare(v.Message())
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
}

// parseTreeVersion is the parse tree version of the linked pg_query, which
// Deparse checks. Read once; never changes.
var parseTreeVersion = sync.OnceValue(func() int32 {
	tree, err := pg.Parse("")
	if err != nil {
		return 0
	}
	return tree.Version
})

// volatile reports whether an expression may give two values in one
// statement: a call to anything but an immutable or stable pg_catalog
// function (random(), clock_timestamp(), nextval(), user functions).
func volatile(n *pg.Node) bool {
	found := false
	visit(n, func(x *pg.Node) bool {
		if fc := x.GetFuncCall(); fc != nil {
			schema, fn := funcName(fc.Funcname)
			if schema != "" && schema != "pg_catalog" || !isStableBuiltin(fn) {
				found = true
			}
		}
		return !found
	})
	return found
}

// aggregateName returns the name of the aggregate a call is, "" when it is
// not one. A function the proxy does not know may be a user-defined
// aggregate: it counts as one (named as written) unless configured
// read-only, as the key analysis does.
func (an *analyzer) aggregateName(fc *pg.FuncCall) string {
	if fc.Over != nil {
		return ""
	}
	schema, fn := funcName(fc.Funcname)
	builtin := schema == "" || schema == "pg_catalog"
	switch {
	case builtin && isAggregate(fn):
		return fn
	case fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.AggWithinGroup:
		return fn
	case schema == "pg_catalog", builtin && (isBuiltinRead(fn) || sideEffectFunctions[fn]), an.knownReadOnly(schema, fn):
		return ""
	}
	if schema != "" {
		return schema + "." + fn
	}
	return fn
}

// containsAggregate reports an aggregate call of this level in n (not in
// a subquery, whose aggregates are its own).
func (an *analyzer) containsAggregate(n *pg.Node) bool {
	found := false
	visit(n, func(x *pg.Node) bool {
		switch y := x.GetNode().(type) {
		case *pg.Node_SubLink, *pg.Node_SelectStmt:
			return false
		case *pg.Node_FuncCall:
			if an.aggregateName(y.FuncCall) != "" {
				found = true
			}
		}
		return !found
	})
	return found
}

// hasAggregates reports aggregates in the target list, HAVING or ORDER BY.
func (s *scatter) hasAggregates() bool {
	for _, t := range s.sel.TargetList {
		if s.an.containsAggregate(t) {
			return true
		}
	}
	for _, o := range s.sel.SortClause {
		if s.an.containsAggregate(o) {
			return true
		}
	}
	return false
}
