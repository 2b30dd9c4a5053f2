package planner

// Build: one statement (or a simple-protocol string of several), the
// sharding configuration and the catalog in, the plan the router runs out
// (DESIGN.md section 3's routing table). Pure: no I/O, no clocks, nothing
// shared between calls. The analysis (keys*.go) says which tables and keys
// a statement touches; this file turns that into a target, and hands the
// shapes that need more to the other build_*.go files: scatter reads with
// merges, INSERT splitting, DDL checks, COPY.

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/shardproxy/shardproxy/pgerror"
)

// KeyTypes is implemented by a Schema that knows the type of each sharded
// table's key column, as the catalog names it (int8, int4, int2, text,
// varchar, uuid, ...). Without it every key is an int8.
type KeyTypes interface {
	KeyType(t TableConfig) string
}

// defaultKeyType is the key type when the catalog does not say.
const defaultKeyType = "int8"

// BuildContext is what Build needs besides the statement.
type BuildContext struct {
	// Schema is the map's tables joined with the catalog; nil knows no
	// tables (everything is unsharded).
	Schema Schema
	// Shards is the number of shards in the map; 0 means unknown and is
	// planned like several. With one shard nothing needs merging and
	// nothing is refused for needing several shards.
	Shards int
	// SessionShard is the session's SET shardproxy.shard: every statement
	// goes to that shard, like a /* shard: ... */ comment (which wins).
	SessionShard string
}

// Build plans sql. A syntax error is a *pgerror.Error with code 42601 and
// PostgreSQL's 1-based position; a statement the proxy cannot run exactly
// gives a plan whose Root is a Refuse, not an error.
func Build(sql string, ctx BuildContext) (*Plan, error) {
	tree, err := parse(sql)
	if err != nil {
		return nil, err
	}
	b := newBuilder(sql, ctx)
	var p *Plan
	switch len(tree.Stmts) {
	case 0:
		p = &Plan{Analysis: &Analysis{Kind: EmptyStatement, ReadOnly: true}, Root: &Route{Target: TargetFirst}}
	case 1:
		p = b.statement(tree.Stmts[0].Stmt)
	default:
		p = b.multi(tree.Stmts)
	}
	p = b.applyHints(p)
	b.finish(p)
	return p, nil
}

// builder holds one Build call's inputs and the facts its decisions left.
type builder struct {
	sql      string
	ctx      BuildContext
	schema   Schema
	keyTypes KeyTypes
	lits     *literalMap
	oneShard bool

	valueDependent bool
	shardSensitive bool
}

func newBuilder(sql string, ctx BuildContext) *builder {
	b := &builder{sql: sql, ctx: ctx, schema: ctx.Schema, oneShard: ctx.Shards == 1}
	if b.schema == nil {
		b.schema = noSchema{}
	}
	b.keyTypes, _ = b.schema.(KeyTypes)
	b.lits = newLiteralMap(sql)
	return b
}

// finish records what the cache needs to know about the plan.
func (b *builder) finish(p *Plan) {
	p.source = b.sql
	p.valueDependent = p.valueDependent || b.valueDependent
	p.shardSensitive = p.shardSensitive || b.shardSensitive
	p.Rebindable = rebindable(p, b.lits.lits)
	if p.Inner != nil {
		p.Inner.source = b.sql
		p.Inner.Rebindable = p.Rebindable
	}
}

func (b *builder) keyType(t TableConfig) string {
	if b.keyTypes != nil {
		if kt := b.keyTypes.KeyType(t); kt != "" {
			return kt
		}
	}
	return defaultKeyType
}

// statement plans one parsed statement.
func (b *builder) statement(stmt *pg.Node) *Plan {
	an := analyzeTop(stmt, b.schema, b.lits)
	a := an.out
	switch x := stmt.GetNode().(type) {
	case *pg.Node_SelectStmt:
		if a.Kind == DDLStatement { // SELECT INTO
			return b.createAs(a)
		}
		return b.selectPlan(an, x.SelectStmt)
	case *pg.Node_InsertStmt:
		return b.insertPlan(a, x.InsertStmt)
	case *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return b.writePlan(a)
	case *pg.Node_CopyStmt:
		return b.copyPlan(a, x.CopyStmt)
	case *pg.Node_ExplainStmt:
		return b.explainPlan(a, x.ExplainStmt)
	case *pg.Node_PrepareStmt:
		p := plan(a, &Route{Target: TargetFirst})
		p.Inner = b.statement(x.PrepareStmt.Query)
		return p
	case *pg.Node_DeclareCursorStmt:
		return b.cursorPlan(a, x.DeclareCursorStmt)
	case *pg.Node_CreateTableAsStmt:
		return b.createAs(a)
	}
	if a.Kind == DDLStatement {
		return b.ddlPlan(a, stmt)
	}
	return b.utilityPlan(a, stmt)
}

func plan(a *Analysis, root Primitive) *Plan { return &Plan{Analysis: a, Root: root} }

func refusePlan(a *Analysis, code pgerror.Code, hint, format string, args ...any) *Plan {
	return plan(a, &Refuse{Refusal: Refusal{Code: code, Message: fmt.Sprintf(format, args...), Hint: hint}})
}

// unsupported refuses a shape the proxy cannot run exactly (0A000).
func unsupported(a *Analysis, hint, format string, args ...any) *Plan {
	return refusePlan(a, pgerror.FeatureNotSupported, hint, format, args...)
}

// target is where a statement that reads or writes table rows goes,
// before any merging.
type target struct {
	route *Route
	// several: the route may reach more than one shard, so rows the
	// statement combines across its rows (ORDER BY, LIMIT, aggregates,
	// DISTINCT) need merging.
	several bool
	refuse  *Plan
}

// dataTarget routes a statement by the tables it touches: sharded tables
// by their keys (every shard when one has none), reference tables on any
// shard for reads and every shard for writes, unsharded tables on the
// first shard.
func (b *builder) dataTarget(a *Analysis) target {
	write := !a.ReadOnly
	if a.Refusal != nil {
		if b.oneShard && a.refusalSpansShards {
			// One shard holds every row: exact as written.
			b.shardSensitive = true
			return target{route: &Route{Target: TargetAll, Write: write}}
		}
		p := plan(a, &Refuse{Refusal: *a.Refusal})
		p.spansShards = a.refusalSpansShards
		return target{refuse: p}
	}
	var sharded, reference, unsharded, keyless bool
	var referenceWrite bool
	var keys []KeyValue
	keyType := ""
	var keyTable TableConfig
	for _, t := range a.Tables {
		switch t.Table.Kind {
		case Sharded:
			sharded = true
			if t.Keys == nil {
				keyless = true
				continue
			}
			kt := b.keyType(t.Table)
			if keyType != "" && kt != keyType {
				return target{refuse: unsupported(a,
					"filter the tables by keys of one type, or run the statements separately",
					"sharded tables %s and %s have keys of different types (%s and %s)", keyTable.Name, t.Table.Name, keyType, kt)}
			}
			keyType, keyTable = kt, t.Table
			keys = addKeys(keys, t.Keys)
		case Reference:
			reference = true
			referenceWrite = referenceWrite || t.Write
		default:
			unsharded = true
		}
	}
	switch {
	case !sharded && unsharded:
		return target{route: &Route{Target: TargetFirst, Write: write}}
	case !sharded && reference && referenceWrite:
		return target{route: &Route{Target: TargetAll, Write: true, Replicated: true}}
	case !sharded && reference:
		return target{route: &Route{Target: TargetAny, Write: write}}
	case !sharded:
		return target{route: &Route{Target: TargetFirst, Write: write}}
	case keyless:
		if b.oneShard {
			b.shardSensitive = true
			return target{route: &Route{Target: TargetAll, Write: write}}
		}
		return target{route: &Route{Target: TargetAll, Write: write}, several: true}
	}
	r := &Route{Target: TargetKeys, Keys: keys, KeyType: keyType, Write: write}
	several := len(keys) > 1 || keys[0].ArrayParam
	if a.SingleShard != "" {
		// The router refuses when the keys span shards.
		several = false
	}
	if several && b.oneShard {
		b.shardSensitive = true
		several = false
	}
	return target{route: r, several: several}
}

// writePlan routes UPDATE, DELETE and MERGE: their rows stay where they
// are, so every shard that may hold them runs the statement as written.
func (b *builder) writePlan(a *Analysis) *Plan {
	t := b.dataTarget(a)
	if t.refuse != nil {
		return t.refuse
	}
	if a.KeyUpdate && a.NewKey != nil {
		nk := *a.NewKey
		t.route.NewKey = &nk
	}
	return plan(a, t.route)
}

// selectPlan routes a SELECT; one that may read several shards gets the
// merges its clauses need.
func (b *builder) selectPlan(an *analyzer, s *pg.SelectStmt) *Plan {
	a := an.out
	t := b.dataTarget(a)
	if t.refuse != nil {
		return t.refuse
	}
	if !t.several {
		return plan(a, t.route)
	}
	return b.scatter(an, s, t.route)
}

// createAs routes CREATE TABLE AS, CREATE MATERIALIZED VIEW and SELECT
// INTO: the new table is unsharded, on the first shard, so the rows it is
// filled with must come from there.
func (b *builder) createAs(a *Analysis) *Plan {
	for _, t := range a.Tables {
		if t.Table.Kind == Sharded && !t.Write && !b.oneShard {
			return unsupported(a, "create the table first, then fill it with INSERT ... SELECT (into a sharded table colocated with the rows), or read the rows through the proxy",
				"%s reading sharded table %s would fill the new table from one shard's rows only", a.Command, t.Table.Name)
		}
	}
	if a.Refusal != nil && !(b.oneShard && a.refusalSpansShards) {
		return plan(a, &Refuse{Refusal: *a.Refusal})
	}
	if b.oneShard && a.refusalSpansShards {
		b.shardSensitive = true
	}
	return plan(a, &Route{Target: TargetFirst, Write: true})
}

// cursorPlan routes DECLARE CURSOR: a cursor lives on one server, so its
// query must be answered by one target as written.
func (b *builder) cursorPlan(a *Analysis, d *pg.DeclareCursorStmt) *Plan {
	inner := b.statement(d.Query)
	r, ok := inner.Root.(*Route)
	if !ok {
		if _, refused := inner.Root.(*Refuse); refused {
			inner.Analysis = a
			return inner
		}
		return unsupported(a, "filter the query by its sharding key, or read it without a cursor",
			"a cursor cannot merge rows of several shards")
	}
	if singleTarget(r) {
		return plan(a, &Route{Target: r.Target, Keys: r.Keys, KeyType: r.KeyType, Shard: r.Shard, Write: r.Write})
	}
	return unsupported(a, "filter the query by its sharding key, or read it without a cursor",
		"a cursor over rows of several shards is not supported")
}

// singleTarget reports whether a route reaches exactly one shard
// whatever its parameters.
func singleTarget(r *Route) bool {
	switch r.Target {
	case TargetFirst, TargetAny, TargetNamed:
		return true
	case TargetKeys:
		return len(r.Keys) == 1 && !r.Keys[0].ArrayParam
	}
	return false
}

// explainPlan: EXPLAIN (ROUTE) shows the inner statement's plan. A plain
// EXPLAIN goes where the inner statement would when that is one place as
// written (or every shard for a write that runs everywhere, under
// ANALYZE); a plain EXPLAIN of a statement that needs merging shows the
// first shard's plan of it, which is what one would inspect for indexes,
// and EXPLAIN ANALYZE of one is refused (it would run on one shard only).
func (b *builder) explainPlan(a *Analysis, e *pg.ExplainStmt) *Plan {
	inner := b.statement(e.Query)
	if a.ExplainRoute {
		inner.Explain = true
		inner.Analysis = a
		return inner
	}
	analyze := false
	for _, o := range e.Options {
		if d := o.GetDefElem(); d != nil && d.Defname == "analyze" {
			analyze = defTrue(d.Arg)
		}
	}
	switch r := inner.Root.(type) {
	case *Refuse:
		inner.Analysis = a
		return inner
	case *Route:
		if singleTarget(r) || analyze && r.SQL == "" {
			return plan(a, &Route{Target: r.Target, Keys: r.Keys, KeyType: r.KeyType, Shard: r.Shard,
				Write: analyze && r.Write, NewKey: r.NewKey})
		}
	}
	if analyze {
		return unsupported(a, "EXPLAIN (ROUTE) shows how the proxy runs it; EXPLAIN without ANALYZE shows the first shard's plan",
			"EXPLAIN ANALYZE of a statement whose rows the proxy merges from several shards is not supported")
	}
	return plan(a, &Route{Target: TargetFirst})
}
