package planner

// Statement classes: DML goes through the key analysis; DDL and utility
// statements get their kind, command tag, the tables they name and whether
// a replica may run them.

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// analyzer holds the state of one AnalyzeSQL call.
type analyzer struct {
	schema          Schema
	rof             ReadOnlyFunctions
	out             *Analysis
	g               keyGraph
	ctes            []*cte
	pairs           [][2]int // key nodes whose rows are combined: must be colocated
	sideEffect      string
	userFunction    bool // a call of a function outside pg_catalog
	singleShardHint string
	keyTable        int  // the table whose key an UPDATE assigns
	broadcast       bool // DDL or utility: runs on every primary, whatever its tables
	lits            *literalMap
	top             *level // a SELECT statement's own level, for the plan builder
}

// noSchema knows no tables: everything is unsharded.
type noSchema struct{}

func (noSchema) Resolve(string, string) (TableConfig, bool) { return TableConfig{}, false }
func (noSchema) Columns(TableConfig) []string               { return nil }

func newAnalyzer(schema Schema, lits *literalMap) *analyzer {
	if schema == nil {
		schema = noSchema{}
	}
	an := &analyzer{schema: schema, out: &Analysis{}, keyTable: -1, lits: lits}
	an.rof, _ = schema.(ReadOnlyFunctions)
	return an
}

func analyzeRaw(stmt *pg.Node, schema Schema, lits *literalMap) *Analysis {
	return analyzeTop(stmt, schema, lits).out
}

// analyzeTop analyzes one statement and keeps the analyzer, whose top
// level the plan builder reads.
func analyzeTop(stmt *pg.Node, schema Schema, lits *literalMap) *analyzer {
	an := newAnalyzer(schema, lits)
	an.statement(stmt)
	an.finish()
	return an
}

// nested analyzes a statement inside this one (PREPARE, EXPLAIN, DECLARE).
func (an *analyzer) nested(stmt *pg.Node) *Analysis {
	a := analyzeRaw(stmt, an.schema, an.lits)
	if a.CallsUserFunction {
		an.userFunction = true
	}
	return a
}

func (an *analyzer) statement(stmt *pg.Node) {
	out := an.out
	switch x := stmt.GetNode().(type) {
	case *pg.Node_SelectStmt:
		out.Kind, out.Command = SelectStatement, "SELECT"
		if x.SelectStmt.IntoClause != nil {
			out.Kind, out.Command = DDLStatement, "SELECT INTO"
		}
		an.top = topLevel()
		an.selectInto(an.top, x.SelectStmt)
	case *pg.Node_InsertStmt:
		out.Kind, out.Command = InsertStatement, "INSERT"
		an.dml(topLevel(), stmt)
	case *pg.Node_UpdateStmt:
		out.Kind, out.Command = UpdateStatement, "UPDATE"
		an.dml(topLevel(), stmt)
	case *pg.Node_DeleteStmt:
		out.Kind, out.Command = DeleteStatement, "DELETE"
		an.dml(topLevel(), stmt)
	case *pg.Node_MergeStmt:
		out.Kind, out.Command = MergeStatement, "MERGE"
		an.dml(topLevel(), stmt)
	case *pg.Node_CopyStmt:
		an.copyStmt(x.CopyStmt)
	case *pg.Node_ExplainStmt:
		out.Kind, out.Command = ExplainStatement, "EXPLAIN"
		analyze := false
		for _, o := range x.ExplainStmt.Options {
			d := o.GetDefElem()
			switch {
			case d == nil:
			case d.Defname == "route":
				out.ExplainRoute = defTrue(d.Arg)
			case d.Defname == "analyze":
				analyze = defTrue(d.Arg)
			}
		}
		out.Inner = an.nested(x.ExplainStmt.Query)
		if analyze && !out.Inner.ReadOnly {
			an.note("EXPLAIN ANALYZE runs " + out.Inner.Command)
		}
	case *pg.Node_PrepareStmt:
		out.Kind, out.Command, out.Name = UtilityStatement, "PREPARE", x.PrepareStmt.Name
		out.Inner = an.nested(x.PrepareStmt.Query)
	case *pg.Node_ExecuteStmt:
		out.Kind, out.Command, out.Name = UtilityStatement, "EXECUTE", x.ExecuteStmt.Name
		for _, p := range x.ExecuteStmt.Params {
			var arg *KeyValue
			if v, ok := an.keyValue(p); ok {
				arg = &v
			}
			out.Args = append(out.Args, arg)
			an.walk(topLevel(), p, false)
		}
		an.note("EXECUTE (as the prepared statement)")
	case *pg.Node_DeallocateStmt:
		out.Kind, out.Command, out.Name = UtilityStatement, "DEALLOCATE", x.DeallocateStmt.Name
		if x.DeallocateStmt.Isall {
			out.Command = "DEALLOCATE ALL"
		}
	case *pg.Node_DeclareCursorStmt:
		out.Kind, out.Command, out.Name = UtilityStatement, "DECLARE CURSOR", x.DeclareCursorStmt.Portalname
		out.Inner = an.nested(x.DeclareCursorStmt.Query)
		if !out.Inner.ReadOnly {
			an.note(out.Inner.SideEffect)
		}
	case *pg.Node_CreateTableAsStmt:
		c := x.CreateTableAsStmt
		out.Kind, out.Command = DDLStatement, "CREATE TABLE AS"
		if c.Objtype == pg.ObjectType_OBJECT_MATVIEW {
			out.Command = "CREATE MATERIALIZED VIEW"
		}
		an.note(out.Command)
		lv := topLevel()
		if c.Into != nil && c.Into.Rel != nil {
			it := an.relation(lv, c.Into.Rel, true, false)
			if it.node >= 0 {
				an.refuse("CREATE TABLE AS cannot create sharded table "+it.sharded,
					"create the table, then fill it with INSERT ... SELECT")
			}
		}
		if s := c.Query.GetSelectStmt(); s != nil {
			sub := newLevel(nil, lv)
			an.selectInto(sub, s)
		}
	default:
		an.utility(stmt)
	}
}

// defTrue reads a boolean EXPLAIN option: no argument means true.
func defTrue(arg *pg.Node) bool {
	if arg == nil {
		return true
	}
	if c := arg.GetAConst(); c != nil {
		switch v := c.Val.(type) {
		case *pg.A_Const_Boolval:
			return v.Boolval.GetBoolval()
		case *pg.A_Const_Ival:
			return v.Ival.GetIval() != 0
		case *pg.A_Const_Sval:
			s := strings.ToLower(v.Sval.GetSval())
			return s != "false" && s != "off" && s != "0" && s != "no"
		}
	}
	if b := arg.GetBoolean(); b != nil {
		return b.Boolval
	}
	if i := arg.GetInteger(); i != nil {
		return i.Ival != 0
	}
	if s := strVal(arg); s != "" {
		s = strings.ToLower(s)
		return s != "false" && s != "off" && s != "no" && s != "0"
	}
	return true
}

func (an *analyzer) copyStmt(c *pg.CopyStmt) {
	out := an.out
	out.Kind, out.Command = CopyStatement, "COPY"
	lv := topLevel()
	if c.Relation != nil {
		an.relation(lv, c.Relation, c.IsFrom, true)
		an.walk(lv, c.WhereClause, false)
	}
	if q := c.Query; q != nil {
		if s := q.GetSelectStmt(); s != nil {
			an.selectInto(lv, s)
		} else {
			an.dml(lv, q)
		}
	}
	switch {
	case c.IsFrom:
		an.note("COPY FROM")
	case c.IsProgram || c.Filename != "":
		an.note("COPY TO a server file or program")
	}
}

// utility classifies the remaining statements.
func (an *analyzer) utility(stmt *pg.Node) {
	out := an.out
	out.Kind = UtilityStatement
	readOnly := false
	var tables []*pg.RangeVar
	switch x := stmt.GetNode().(type) {
	case *pg.Node_TransactionStmt:
		out.Command, readOnly = transactionTag(x.TransactionStmt.Kind)
	case *pg.Node_VariableSetStmt:
		out.Command, readOnly = "SET", true
		switch x.VariableSetStmt.Kind {
		case pg.VariableSetKind_VAR_RESET, pg.VariableSetKind_VAR_RESET_ALL:
			out.Command = "RESET"
		}
	case *pg.Node_VariableShowStmt:
		out.Command, readOnly = "SHOW", true
	case *pg.Node_DiscardStmt:
		out.Command, readOnly = "DISCARD "+strings.TrimPrefix(x.DiscardStmt.Target.String(), "DISCARD_"), true
	case *pg.Node_FetchStmt:
		out.Command, readOnly, out.Name = "FETCH", true, x.FetchStmt.Portalname
		if x.FetchStmt.Ismove {
			out.Command = "MOVE"
		}
	case *pg.Node_ClosePortalStmt:
		out.Command, readOnly, out.Name = "CLOSE CURSOR", true, x.ClosePortalStmt.Portalname
		if out.Name == "" {
			out.Command = "CLOSE CURSOR ALL"
		}
	case *pg.Node_ConstraintsSetStmt:
		out.Command, readOnly = "SET CONSTRAINTS", true
	case *pg.Node_ListenStmt:
		out.Command = "LISTEN"
	case *pg.Node_UnlistenStmt:
		out.Command = "UNLISTEN"
	case *pg.Node_NotifyStmt:
		out.Command = "NOTIFY"
	case *pg.Node_LockStmt:
		out.Command = "LOCK TABLE"
		tables = rangeVars(x.LockStmt.Relations)
	case *pg.Node_TruncateStmt:
		out.Command = "TRUNCATE TABLE"
		tables = rangeVars(x.TruncateStmt.Relations)
	case *pg.Node_VacuumStmt:
		out.Command = "VACUUM"
		if !x.VacuumStmt.IsVacuumcmd {
			out.Command = "ANALYZE"
		}
		for _, r := range x.VacuumStmt.Rels {
			if v := r.GetVacuumRelation(); v != nil && v.Relation != nil {
				tables = append(tables, v.Relation)
			}
		}
	case *pg.Node_CallStmt:
		out.Command = "CALL"
	case *pg.Node_DoStmt:
		out.Command = "DO"
	case *pg.Node_CheckPointStmt:
		out.Command = "CHECKPOINT"
	case *pg.Node_LoadStmt:
		out.Command = "LOAD"
	case *pg.Node_ReindexStmt:
		out.Command = "REINDEX"
		if x.ReindexStmt.Relation != nil {
			tables = append(tables, x.ReindexStmt.Relation)
		}
	case *pg.Node_ClusterStmt:
		out.Command = "CLUSTER"
		if x.ClusterStmt.Relation != nil {
			tables = append(tables, x.ClusterStmt.Relation)
		}
	case *pg.Node_RefreshMatViewStmt:
		out.Kind, out.Command = DDLStatement, "REFRESH MATERIALIZED VIEW"
		tables = append(tables, x.RefreshMatViewStmt.Relation)
	default:
		out.Kind, out.Command, tables = ddl(stmt)
	}
	an.broadcast = true
	lv := topLevel()
	for _, rv := range tables {
		if rv != nil {
			an.relation(lv, rv, true, false)
		}
	}
	if !readOnly {
		an.note(out.Command)
	}
}

func rangeVars(ns []*pg.Node) []*pg.RangeVar {
	var out []*pg.RangeVar
	for _, n := range ns {
		if rv := n.GetRangeVar(); rv != nil {
			out = append(out, rv)
		}
	}
	return out
}

func transactionTag(k pg.TransactionStmtKind) (tag string, readOnly bool) {
	switch k {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN", true
	case pg.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION", true
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT", true
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK", true
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT", true
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE", true
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION", false
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED", false
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED", false
	}
	return "TRANSACTION", true
}

// ddl names a schema-changing statement and the tables it changes; a
// statement it does not recognise is a utility statement named after its
// parse node (CreateEnumStmt: CREATE ENUM).
func ddl(stmt *pg.Node) (StatementKind, string, []*pg.RangeVar) {
	switch x := stmt.GetNode().(type) {
	case *pg.Node_CreateStmt:
		return DDLStatement, "CREATE TABLE", []*pg.RangeVar{x.CreateStmt.Relation}
	case *pg.Node_CreateForeignTableStmt:
		return DDLStatement, "CREATE FOREIGN TABLE", nil
	case *pg.Node_AlterTableStmt:
		return DDLStatement, "ALTER " + objectName(x.AlterTableStmt.Objtype), []*pg.RangeVar{x.AlterTableStmt.Relation}
	case *pg.Node_IndexStmt:
		return DDLStatement, "CREATE INDEX", []*pg.RangeVar{x.IndexStmt.Relation}
	case *pg.Node_DropStmt:
		d := x.DropStmt
		var tables []*pg.RangeVar
		if d.RemoveType == pg.ObjectType_OBJECT_TABLE {
			for _, o := range d.Objects {
				if l := o.GetList(); l != nil && len(l.Items) > 0 {
					rv := &pg.RangeVar{Relname: strVal(l.Items[len(l.Items)-1])}
					if len(l.Items) > 1 {
						rv.Schemaname = strVal(l.Items[len(l.Items)-2])
					}
					tables = append(tables, rv)
				}
			}
		}
		return DDLStatement, "DROP " + objectName(d.RemoveType), tables
	case *pg.Node_RenameStmt:
		r := x.RenameStmt
		var tables []*pg.RangeVar
		if r.Relation != nil && (r.RenameType == pg.ObjectType_OBJECT_TABLE || r.RelationType == pg.ObjectType_OBJECT_TABLE) {
			tables = append(tables, r.Relation)
		}
		obj := r.RenameType
		if obj == pg.ObjectType_OBJECT_COLUMN || obj == pg.ObjectType_OBJECT_TABCONSTRAINT {
			obj = r.RelationType
		}
		return DDLStatement, "ALTER " + objectName(obj), tables
	case *pg.Node_ViewStmt:
		return DDLStatement, "CREATE VIEW", nil
	case *pg.Node_CreateSeqStmt:
		return DDLStatement, "CREATE SEQUENCE", nil
	case *pg.Node_AlterSeqStmt:
		return DDLStatement, "ALTER SEQUENCE", nil
	case *pg.Node_CreateFunctionStmt:
		if x.CreateFunctionStmt.IsProcedure {
			return DDLStatement, "CREATE PROCEDURE", nil
		}
		return DDLStatement, "CREATE FUNCTION", nil
	case *pg.Node_CreateSchemaStmt:
		return DDLStatement, "CREATE SCHEMA", nil
	case *pg.Node_CreateExtensionStmt:
		return DDLStatement, "CREATE EXTENSION", nil
	case *pg.Node_CommentStmt:
		return DDLStatement, "COMMENT", nil
	case *pg.Node_GrantStmt:
		if x.GrantStmt.IsGrant {
			return DDLStatement, "GRANT", nil
		}
		return DDLStatement, "REVOKE", nil
	case *pg.Node_CreateTrigStmt:
		return DDLStatement, "CREATE TRIGGER", nil
	case *pg.Node_CreatedbStmt:
		return UtilityStatement, "CREATE DATABASE", nil
	case *pg.Node_DropdbStmt:
		return UtilityStatement, "DROP DATABASE", nil
	case *pg.Node_CreateRoleStmt, *pg.Node_AlterRoleStmt, *pg.Node_DropRoleStmt:
		return UtilityStatement, nodeTag(stmt), nil
	}
	tag := nodeTag(stmt)
	for _, p := range []string{"CREATE ", "ALTER ", "DROP ", "RENAME ", "GRANT ", "SEC LABEL", "REASSIGN ", "DEFINE ", "COMPOSITE ", "IMPORT ", "RULE", "REFRESH "} {
		if strings.HasPrefix(tag, p) {
			return DDLStatement, tag, nil
		}
	}
	return UtilityStatement, tag, nil
}

// objectName spells an ObjectType as SQL does: OBJECT_MATVIEW is
// MATERIALIZED VIEW, OBJECT_FOREIGN_TABLE is FOREIGN TABLE.
func objectName(t pg.ObjectType) string {
	switch t {
	case pg.ObjectType_OBJECT_MATVIEW:
		return "MATERIALIZED VIEW"
	case pg.ObjectType_OBJECT_TABCONSTRAINT:
		return "TABLE"
	}
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

// nodeTag turns a parse node's name into words: CreateEnumStmt is CREATE
// ENUM.
func nodeTag(stmt *pg.Node) string {
	name := string(stmt.ProtoReflect().WhichOneof(stmt.ProtoReflect().Descriptor().Oneofs().Get(0)).Message().Name())
	name = strings.TrimSuffix(name, "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
