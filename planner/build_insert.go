package planner

// INSERT: rows go to the shard their key owns. One row, or rows that all
// carry one key, is a Route to that key; several keys are an InsertSplit,
// whose RowsSQL writes the INSERT again with only some of its VALUES rows
// and its parameters renumbered, once per shard. INSERT ... SELECT and
// writes to reference or unsharded tables route like any write (the
// analysis refuses what is not provably colocated).

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/shardproxy/shardproxy/pgerror"
)

func (b *builder) insertPlan(a *Analysis, ins *pg.InsertStmt) *Plan {
	t := b.dataTarget(a)
	if t.refuse != nil {
		return t.refuse
	}
	r := t.route
	if a.KeyUpdate && a.NewKey != nil {
		nk := *a.NewKey
		r.NewKey = &nk
	}
	if a.Rows == nil || r.Target != TargetKeys {
		return plan(a, r)
	}
	if !t.several {
		// The analysis made the statement exact only on one shard, or
		// the map has one shard: the router runs it where the keys are.
		return plan(a, r)
	}
	if sameLiteralValue(a.Rows) {
		// Every row has one key value: one shard. Another statement with
		// this text may have other values, so the plan is not shared.
		b.valueDependent = true
		r.Keys = a.Rows[:1]
		return plan(a, r)
	}
	target := b.insertTarget(a, ins)
	rowsSQL, err := insertRowsSQL(ins)
	if err != nil {
		return refusedPlan(a, err)
	}
	return plan(a, &InsertSplit{Rows: a.Rows, KeyType: b.keyType(target), RowsSQL: rowsSQL})
}

// insertTarget returns the table an INSERT writes.
func (b *builder) insertTarget(a *Analysis, ins *pg.InsertStmt) TableConfig {
	name, schema := ins.Relation.Relname, ins.Relation.Schemaname
	for _, t := range a.Tables {
		if t.Write && t.Table.Kind == Sharded && t.Table.Name == name && (schema == "" || t.Table.Schema == schema) {
			return t.Table
		}
	}
	tc, _ := b.schema.Resolve(name, schema)
	return tc
}

// sameLiteralValue reports rows whose keys are one constant value written
// several times (not parameters: $1 in every row is one KeyValue already).
func sameLiteralValue(rows []KeyValue) bool {
	first := rows[0]
	if first.Param > 0 {
		return false
	}
	for _, k := range rows[1:] {
		if k.Param > 0 || k.Literal != first.Literal || k.Quoted != first.Quoted || k.Cast != first.Cast {
			return false
		}
	}
	return true
}

// insertRowsSQL prepares InsertSplit.RowsSQL: the statement without its
// rows, cloned once, so each call clones only the rows it keeps and the
// plan can be used by many sessions at once.
func insertRowsSQL(ins *pg.InsertStmt) (func(rows []int) (string, []int, error), error) {
	sel := ins.SelectStmt.GetSelectStmt()
	rows := sel.ValuesLists
	sel.ValuesLists = nil
	base := proto.Clone(ins).(*pg.InsertStmt)
	sel.ValuesLists = rows
	if err := fixForDeparse(&pg.Node{Node: &pg.Node_InsertStmt{InsertStmt: base}}); err != nil {
		return nil, err
	}
	// Checked once with every row; a call writes a subset of them with
	// the same deparser.
	whole := proto.Clone(ins).(*pg.InsertStmt)
	wholeNode := &pg.Node{Node: &pg.Node_InsertStmt{InsertStmt: whole}}
	if err := fixForDeparse(wholeNode); err != nil {
		return nil, err
	}
	if _, err := deparseChecked(wholeNode); err != nil {
		return nil, refuseErr("send the rows in separate INSERT statements", "the INSERT cannot be split by shard: %v", err)
	}
	return func(keep []int) (string, []int, error) {
		stmt := proto.Clone(base).(*pg.InsertStmt)
		vs := stmt.SelectStmt.GetSelectStmt()
		vs.ValuesLists = make([]*pg.Node, 0, len(keep))
		for _, i := range keep {
			if i < 0 || i >= len(rows) {
				return "", nil, refuseErr("", "planner: INSERT row %d of %d", i, len(rows))
			}
			row := proto.Clone(rows[i]).(*pg.Node)
			if err := fixForDeparse(row); err != nil {
				return "", nil, err
			}
			vs.ValuesLists = append(vs.ValuesLists, row)
		}
		node := &pg.Node{Node: &pg.Node_InsertStmt{InsertStmt: stmt}}
		params := renumberParams(node)
		sql, err := deparseStmt(node)
		return sql, params, err
	}, nil
}

// renumberParams numbers the parameters left in a statement from $1, in
// the order of their old numbers, and returns each new one's old number.
func renumberParams(n *pg.Node) []int {
	var refs []*pg.ParamRef
	visit(n, func(x *pg.Node) bool {
		if p := x.GetParamRef(); p != nil {
			refs = append(refs, p)
		}
		return true
	})
	var old []int
	for _, p := range refs {
		old = append(old, int(p.Number))
	}
	slices.Sort(old)
	old = slices.Compact(old)
	for _, p := range refs {
		i, _ := slices.BinarySearch(old, int(p.Number))
		p.Number = int32(i + 1)
	}
	if len(old) == 0 {
		return nil
	}
	return old
}

// fixForDeparse works around pg_query's deparser where it would change
// the statement's meaning: N'x' parses as a cast to pg_catalog.bpchar
// without a length, which the deparser spells char 'x', char(1) to
// PostgreSQL; the unqualified bpchar is the same type. $0, which the
// deparser writes as ?, is PostgreSQL's error instead.
func fixForDeparse(n *pg.Node) error {
	var err error
	visit(n, func(x *pg.Node) bool {
		if tc := x.GetTypeCast(); tc != nil {
			fixTypeName(tc.TypeName)
		}
		if p := x.GetParamRef(); p != nil && p.Number <= 0 && err == nil {
			err = refuseCode(undefinedParameter, "", "there is no parameter $%d", p.Number)
		}
		return true
	})
	return err
}

// undefinedParameter is PostgreSQL's SQLSTATE for $0.
const undefinedParameter pgerror.Code = "42P02"

func fixTypeName(tn *pg.TypeName) {
	if tn == nil || len(tn.Typmods) > 0 || len(tn.Names) != 2 {
		return
	}
	if strVal(tn.Names[0]) == "pg_catalog" && strVal(tn.Names[1]) == "bpchar" {
		tn.Names = []*pg.Node{pg.MakeStrNode("bpchar")}
	}
}
