package planner

// DDL and utility statements. Schema changes go to every primary, one
// after another (DESIGN.md section 3), so every shard has every table;
// what cannot run in a transaction block goes the same way outside
// two-phase commit. Before that, DDL on a configured table must keep its
// constraints shard-local (DESIGN.md section 2): a unique constraint on a
// sharded table includes the key, a foreign key points to a colocated or a
// reference table, and a sharded table's key is no sequence (every shard
// would hand out the same values).

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// ddlPlan routes a schema change.
func (b *builder) ddlPlan(a *Analysis, stmt *pg.Node) *Plan {
	if a.Refusal != nil {
		return plan(a, &Refuse{Refusal: *a.Refusal})
	}
	if err := b.checkDDL(stmt); err != nil {
		return refusedPlan(a, err)
	}
	switch x := stmt.GetNode().(type) {
	case *pg.Node_CreateStmt:
		if x.CreateStmt.Relation.GetRelpersistence() == "t" {
			return plan(a, &Route{Target: TargetFirst, Write: true}) // a session's own table
		}
	case *pg.Node_ViewStmt:
		if x.ViewStmt.View.GetRelpersistence() == "t" {
			return plan(a, &Route{Target: TargetFirst, Write: true})
		}
		if t := b.shardedTableRead(x.ViewStmt.Query); t != "" && !b.oneShard {
			// The view is an unsharded table to the proxy: read on the
			// first shard, it would answer with that shard's rows only.
			p := unsupported(a, "query the tables through the proxy instead, or create the view on each shard with a /* shard: ... */ hint and read it the same way",
				"a view over sharded table %s would be read on the first shard only", t)
			p.spansShards = true
			return p
		}
	case *pg.Node_CreateSeqStmt:
		if x.CreateSeqStmt.Sequence.GetRelpersistence() == "t" {
			return plan(a, &Route{Target: TargetFirst, Write: true})
		}
	case *pg.Node_RefreshMatViewStmt:
		return plan(a, &Route{Target: TargetFirst, Write: true}) // materialized views live on the first shard
	case *pg.Node_DropStmt:
		if x.DropStmt.RemoveType == pg.ObjectType_OBJECT_MATVIEW {
			return plan(a, &Route{Target: TargetFirst, Write: true})
		}
		if x.DropStmt.Concurrent {
			return plan(a, &Route{Target: TargetAll, Ordered: true})
		}
	case *pg.Node_IndexStmt:
		if x.IndexStmt.Concurrent {
			return plan(a, &Route{Target: TargetAll, Ordered: true})
		}
	}
	if outsideTransaction(stmt) {
		return plan(a, &Route{Target: TargetAll, Ordered: true})
	}
	return plan(a, &Route{Target: TargetAll, Write: true, Ordered: true})
}

// outsideTransaction: statements about the servers rather than the
// database's tables (databases, roles, tablespaces, server settings),
// which every shard needs and some of which PostgreSQL refuses inside a
// transaction block: each primary in turn, without two-phase commit.
func outsideTransaction(stmt *pg.Node) bool {
	switch stmt.GetNode().(type) {
	case *pg.Node_CreatedbStmt, *pg.Node_DropdbStmt, *pg.Node_AlterDatabaseStmt, *pg.Node_AlterDatabaseSetStmt,
		*pg.Node_CreateRoleStmt, *pg.Node_AlterRoleStmt, *pg.Node_AlterRoleSetStmt, *pg.Node_DropRoleStmt,
		*pg.Node_AlterSystemStmt, *pg.Node_CreateTableSpaceStmt, *pg.Node_DropTableSpaceStmt:
		return true
	}
	return false
}

// utilityPlan routes the statements that are neither queries nor schema
// changes: most go to the first shard as they are (the router intercepts
// transaction control, settings and prepared statements by
// Analysis.Command); TRUNCATE and LOCK of configured tables reach every
// shard, and maintenance of them every primary in turn.
func (b *builder) utilityPlan(a *Analysis, stmt *pg.Node) *Plan {
	if a.Refusal != nil {
		return plan(a, &Refuse{Refusal: *a.Refusal})
	}
	placed, unsharded := false, false
	for _, t := range a.Tables {
		if t.Table.Kind == Unsharded {
			unsharded = true
		} else {
			placed = true
		}
	}
	switch stmt.GetNode().(type) {
	case *pg.Node_TruncateStmt, *pg.Node_LockStmt:
		switch {
		case placed && unsharded:
			return unsupported(a, "name the unsharded tables in a statement of their own",
				"%s of sharded or reference tables together with unsharded ones is not supported", a.Command)
		case placed:
			return plan(a, &Route{Target: TargetAll, Write: true})
		}
	case *pg.Node_VacuumStmt, *pg.Node_ReindexStmt, *pg.Node_ClusterStmt:
		if placed || len(a.Tables) == 0 {
			return plan(a, &Route{Target: TargetAll, Ordered: true})
		}
	}
	if outsideTransaction(stmt) {
		return plan(a, &Route{Target: TargetAll, Ordered: true})
	}
	return plan(a, &Route{Target: TargetFirst, Write: !a.ReadOnly})
}

// checkDDL refuses DDL that would break shard-local constraints.
func (b *builder) checkDDL(stmt *pg.Node) error {
	switch x := stmt.GetNode().(type) {
	case *pg.Node_CreateStmt:
		return b.checkCreateTable(x.CreateStmt)
	case *pg.Node_AlterTableStmt:
		return b.checkAlterTable(x.AlterTableStmt)
	case *pg.Node_IndexStmt:
		ix := x.IndexStmt
		if !ix.Unique && !ix.Primary {
			return nil
		}
		tc := b.table(ix.Relation)
		if tc.Kind != Sharded {
			return nil
		}
		for _, p := range ix.IndexParams {
			if e := p.GetIndexElem(); e != nil && e.Name == tc.Key {
				return nil
			}
		}
		return refuseErr(sprintf("include %s in the index: each shard checks uniqueness of its own rows only", tc.Key),
			"unique index on sharded table %s must include its sharding key %s", tc.Name, tc.Key)
	case *pg.Node_RenameStmt:
		r := x.RenameStmt
		if r.Relation == nil {
			return nil
		}
		tc := b.table(r.Relation)
		switch {
		case tc.Kind != Unsharded && (r.RenameType == pg.ObjectType_OBJECT_TABLE || r.RenameType == pg.ObjectType_OBJECT_FOREIGN_TABLE):
			return refuseErr("the shard map names the table: change the map's table configuration first",
				"renaming %s table %s is not supported", tc.Kind, tc.Name)
		case tc.Kind == Sharded && r.RenameType == pg.ObjectType_OBJECT_COLUMN && r.Subname == tc.Key:
			return refuseErr("the shard map names the key column: change the map's table configuration first",
				"renaming sharding key %s of %s is not supported", tc.Key, tc.Name)
		}
	}
	return nil
}

// table resolves a table a DDL statement names; unknown ones are
// unsharded.
func (b *builder) table(rv *pg.RangeVar) TableConfig {
	if rv == nil {
		return TableConfig{}
	}
	tc, ok := b.schema.Resolve(rv.Relname, rv.Schemaname)
	if !ok {
		return TableConfig{Schema: rv.Schemaname, Name: rv.Relname}
	}
	return tc
}

func (b *builder) checkCreateTable(c *pg.CreateStmt) error {
	if c.Relation.GetRelpersistence() == "t" {
		return nil
	}
	tc := b.table(c.Relation)
	haveKey := tc.Kind != Sharded || len(c.InhRelations) > 0 || c.OfTypename != nil || c.Partbound != nil
	for _, elt := range c.TableElts {
		switch x := elt.GetNode().(type) {
		case *pg.Node_ColumnDef:
			if x.ColumnDef.Colname == tc.Key {
				haveKey = true
			}
			if err := b.checkColumn(tc, x.ColumnDef); err != nil {
				return err
			}
		case *pg.Node_Constraint:
			if err := b.checkConstraint(tc, x.Constraint, ""); err != nil {
				return err
			}
		case *pg.Node_TableLikeClause:
			haveKey = true // its columns are not known here
		}
	}
	if !haveKey {
		return refuseErr(sprintf("add the column %s, or change the table's key in the shard map", tc.Key),
			"sharded table %s must have its sharding key column %s", tc.Name, tc.Key)
	}
	return nil
}

func (b *builder) checkAlterTable(at *pg.AlterTableStmt) error {
	tc := b.table(at.Relation)
	for _, n := range at.Cmds {
		cmd := n.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch cmd.Subtype {
		case pg.AlterTableType_AT_AddColumn:
			if cd := cmd.Def.GetColumnDef(); cd != nil {
				if err := b.checkColumn(tc, cd); err != nil {
					return err
				}
			}
		case pg.AlterTableType_AT_AddConstraint:
			if con := cmd.Def.GetConstraint(); con != nil {
				if err := b.checkConstraint(tc, con, ""); err != nil {
					return err
				}
			}
		case pg.AlterTableType_AT_AddIdentity:
			if err := checkSequence(tc, cmd.Name, "an identity column"); err != nil {
				return err
			}
		case pg.AlterTableType_AT_ColumnDefault:
			if callsNextval(cmd.Def) {
				if err := checkSequence(tc, cmd.Name, "a DEFAULT from a sequence"); err != nil {
					return err
				}
			}
		case pg.AlterTableType_AT_DropColumn:
			if tc.Kind == Sharded && cmd.Name == tc.Key {
				return refuseErr("change the table's key in the shard map first",
					"dropping sharding key %s of %s is not supported", tc.Key, tc.Name)
			}
		case pg.AlterTableType_AT_AlterColumnType:
			if tc.Kind == Sharded && cmd.Name == tc.Key {
				cd := cmd.Def.GetColumnDef()
				if cd == nil || !integerType(b.keyType(tc)) || !integerType(typeName(cd.TypeName)) {
					return refuseErr("keys hash by their type: only a change between integer types (int2, int4, int8) keeps every row on its shard",
						"changing the type of sharding key %s of %s could move rows to other shards", tc.Key, tc.Name)
				}
			}
		}
	}
	return nil
}

func integerType(t string) bool {
	switch t {
	case "int2", "int4", "int8", "smallint", "integer", "int", "bigint":
		return true
	}
	return false
}

// checkColumn checks a column definition and its constraints.
func (b *builder) checkColumn(tc TableConfig, cd *pg.ColumnDef) error {
	if cd.TypeName != nil && len(cd.TypeName.Names) == 1 {
		switch strVal(cd.TypeName.Names[0]) {
		case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
			if err := checkSequence(tc, cd.Colname, "a serial column"); err != nil {
				return err
			}
		}
	}
	for _, n := range cd.Constraints {
		if con := n.GetConstraint(); con != nil {
			if err := b.checkConstraint(tc, con, cd.Colname); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSequence refuses a sequence behind a sharded table's key, or any
// column of a reference table: each shard has its own sequence, so shards
// would hand out the same keys, and a reference table's copies would
// differ.
func checkSequence(tc TableConfig, col, what string) error {
	const hint = "give the key from the application (a UUID from gen_random_uuid(), or ids from one central sequence)"
	switch {
	case tc.Kind == Sharded && col == tc.Key:
		return refuseErr(hint, "sharding key %s of %s cannot be %s: every shard would hand out the same values", col, tc.Name, what)
	case tc.Kind == Reference:
		return refuseErr("give the values in the INSERT: each shard's copy must get the same ones",
			"column %s of reference table %s cannot be %s: each shard's copy would number its rows on its own", col, tc.Name, what)
	}
	return nil
}

// callsNextval reports a nextval() call in a DEFAULT expression.
func callsNextval(n *pg.Node) bool {
	found := false
	visit(n, func(x *pg.Node) bool {
		if fc := x.GetFuncCall(); fc != nil {
			if _, fn := funcName(fc.Funcname); fn == "nextval" {
				found = true
			}
		}
		return !found
	})
	return found
}

// checkConstraint checks one constraint; col is the column of a column
// constraint, "" for a table constraint.
func (b *builder) checkConstraint(tc TableConfig, con *pg.Constraint, col string) error {
	cols := names(con.Keys)
	if col != "" {
		cols = []string{col}
	}
	switch con.Contype {
	case pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_UNIQUE:
		if tc.Kind != Sharded || con.Indexname != "" || slices.Contains(cols, tc.Key) {
			return nil
		}
		what := "UNIQUE"
		if con.Contype == pg.ConstrType_CONSTR_PRIMARY {
			what = "PRIMARY KEY"
		}
		return refuseErr(sprintf("include %s in the constraint: each shard checks uniqueness of its own rows only", tc.Key),
			"%s constraint on sharded table %s must include its sharding key %s", what, tc.Name, tc.Key)
	case pg.ConstrType_CONSTR_EXCLUSION:
		if tc.Kind != Sharded {
			return nil
		}
		for _, ex := range con.Exclusions {
			items := ex.GetList().GetItems()
			if len(items) == 2 && items[0].GetIndexElem().GetName() == tc.Key && operatorName(items[1].GetList().GetItems()) == "=" {
				return nil
			}
		}
		return refuseErr(sprintf("add %s WITH = to the constraint", tc.Key),
			"exclusion constraint on sharded table %s must compare its sharding key %s with =", tc.Name, tc.Key)
	case pg.ConstrType_CONSTR_FOREIGN:
		if col == "" {
			cols = names(con.FkAttrs)
		}
		return b.checkForeignKey(tc, cols, con)
	case pg.ConstrType_CONSTR_IDENTITY:
		return checkSequence(tc, col, "an identity column")
	case pg.ConstrType_CONSTR_DEFAULT:
		if callsNextval(con.RawExpr) {
			return checkSequence(tc, col, "a DEFAULT from a sequence")
		}
	}
	return nil
}

// checkForeignKey: a row's referenced row must be on its shard. From a
// sharded table that is a reference table, or a sharded table referenced
// by the key (colocated); from a reference table, another reference table;
// from an unsharded table (first shard), anything but a sharded table.
func (b *builder) checkForeignKey(tc TableConfig, cols []string, con *pg.Constraint) error {
	ref := b.table(con.Pktable)
	refCols := names(con.PkAttrs)
	const hint = "a foreign key is checked on each shard alone: point it at a reference table, or at a sharded table by its key from your own key"
	switch tc.Kind {
	case Sharded:
		switch ref.Kind {
		case Reference:
			return nil
		case Sharded:
			i := slices.Index(cols, tc.Key)
			if i >= 0 && (len(refCols) == 0 && len(cols) == 1 || i < len(refCols) && refCols[i] == ref.Key) {
				return nil
			}
			return refuseErr(hint, "foreign key from sharded table %s to sharded table %s must link their sharding keys (%s.%s to %s.%s)", tc.Name, ref.Name, tc.Name, tc.Key, ref.Name, ref.Key)
		}
		return refuseErr(hint, "foreign key from sharded table %s to unsharded table %s is not supported", tc.Name, ref.QualifiedName())
	case Reference:
		if ref.Kind == Reference {
			return nil
		}
		return refuseErr(hint, "foreign key from reference table %s to %s table %s is not supported", tc.Name, ref.Kind, ref.QualifiedName())
	}
	if ref.Kind == Sharded {
		return refuseErr(hint, "foreign key from unsharded table %s to sharded table %s is not supported", tc.QualifiedName(), ref.Name)
	}
	return nil
}

// shardedTableRead names a sharded table a query reads, "" if none.
func (b *builder) shardedTableRead(query *pg.Node) string {
	for _, t := range analyzeRaw(query, b.schema, b.lits).Tables {
		if t.Table.Kind == Sharded {
			return t.Table.Name
		}
	}
	return ""
}
