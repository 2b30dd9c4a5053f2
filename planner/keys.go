package planner

// Sharding-key extraction: what one statement touches, found from its
// pg_query parse tree and the sharding configuration, without I/O. The
// parse tree never leaves the package; callers get an Analysis, plain Go
// values that describe themselves (String) for golden files and EXPLAIN
// (ROUTE). The router turns keys into shards with the map snapshot it
// holds at execution time, so an Analysis stays valid across splits and
// moves and can be cached by statement text.

import (
	"errors"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/shardproxy/shardproxy/pgerror"
)

// TableKind says how a table's rows are placed on the shards. The zero
// value is Unsharded, so a table nobody configured lives on the first shard.
type TableKind uint8

const (
	// Unsharded tables live on the first shard only.
	Unsharded TableKind = iota
	// Sharded tables are split by the hash of their key column.
	Sharded
	// Reference tables have a full copy on every shard.
	Reference
)

func (k TableKind) String() string {
	switch k {
	case Sharded:
		return "sharded"
	case Reference:
		return "reference"
	default:
		return "unsharded"
	}
}

// TableConfig is what the planner knows of one table.
type TableConfig struct {
	Schema, Name string
	Kind         TableKind
	// Key is the sharding key column of a sharded table.
	Key string
}

// QualifiedName returns schema.name, or name when the schema is unknown.
func (t TableConfig) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Schema is what the planner knows of the database: a catalog snapshot
// joined with the shard map's table list implements it.
type Schema interface {
	// Resolve finds a table by name; schema "" means along the search
	// path. A name it does not know is an unsharded table.
	Resolve(name, schema string) (TableConfig, bool)
	// Columns returns the table's columns in order (nil if unknown); an
	// INSERT without a column list needs it to find the key.
	Columns(t TableConfig) []string
}

// ReadOnlyFunctions is implemented by a Schema that knows user functions
// free of side effects (configured as read-only). A call to any other
// function outside pg_catalog makes a statement not read-only.
type ReadOnlyFunctions interface {
	IsReadOnlyFunction(schema, name string) bool
}

// StatementKind is the class of a statement, as the router treats it.
type StatementKind string

const (
	SelectStatement  StatementKind = "select"
	InsertStatement  StatementKind = "insert"
	UpdateStatement  StatementKind = "update"
	DeleteStatement  StatementKind = "delete"
	MergeStatement   StatementKind = "merge"
	CopyStatement    StatementKind = "copy"
	ExplainStatement StatementKind = "explain"
	// DDLStatement: CREATE, ALTER, DROP, GRANT, COMMENT, ... (and CREATE
	// TABLE AS / SELECT INTO, which also read).
	DDLStatement StatementKind = "ddl"
	// UtilityStatement: SET, SHOW, BEGIN, COMMIT, PREPARE, EXECUTE,
	// DEALLOCATE, LISTEN, VACUUM, CALL, ... (Analysis.Command tells which).
	UtilityStatement StatementKind = "utility"
	// EmptyStatement: the text holds no statement (only comments or
	// semicolons).
	EmptyStatement StatementKind = "empty"
	// MultiStatement: a simple-protocol query string holding several
	// statements (Build's combined analysis; Plan.Statements has each).
	MultiStatement StatementKind = "multi"
)

// KeyValue is one value a sharding key is compared with: a constant as
// written, or a bound parameter.
type KeyValue struct {
	// Literal is the constant as text: digits as written (42, -7, 4.2,
	// 12345678901), or a quoted constant's contents, unescaped.
	Literal string
	// Quoted: Literal was a quoted constant ('42'); its type is the key
	// column's, so the router parses it with the key's type (22P02 if it
	// does not parse, as the server would say).
	Quoted bool
	// Param is the 1-based $n of a bound parameter, 0 for a literal.
	Param int
	// ArrayParam: Param is an array (key = ANY($n)); every element is a key.
	ArrayParam bool
	// Cast is the type of an explicit cast on the value (42::bigint is
	// int8, CAST($1 AS int) is int4; pg_catalog's internal names, other
	// schemas qualified); for an array, the element type.
	Cast string
	// Lit is the 1-based index, in Normalize's list of the statement's
	// literals, of the literal the value was written as; 0 when it was
	// not one (a parameter, or a constant Normalize keeps in the text).
	// A plan cached under the normalized text serves statements with other
	// values there: Text reads the executed statement's literal. Two
	// equal constants written twice are two key values (id IN (1, 1)):
	// another statement with the same text may have two different ones.
	Lit int
	// Negate: the value is minus the literal (PostgreSQL folds the minus
	// sign of -7 into the constant; the literal is 7).
	Negate bool
}

// TableAccess is one reference to a table in the statement.
type TableAccess struct {
	Table TableConfig
	// Unknown: Schema.Resolve did not know the name; it is treated as
	// unsharded (first shard).
	Unknown bool
	// Alias is the name the statement gives the table, "" if none.
	Alias string
	// Keys are the key values the rows that matter can have. nil: no
	// usable key, the rows can be on every shard. Only sharded tables
	// have keys; keys reach a table through joins on the key, too.
	Keys []KeyValue
	// Write: the statement inserts, updates or deletes rows of the table
	// (as its target, or in a writable CTE), or is DDL or a utility
	// statement acting on it (ALTER, DROP, TRUNCATE, LOCK, VACUUM, ...).
	Write bool
	// Group numbers the colocation groups of sharded tables from 1: tables
	// in one group are joined on their keys, so each shard can answer for
	// its own rows. 0 for tables that are not sharded.
	Group int
}

// Refusal says why a statement cannot be routed exactly; the router answers
// the client with it instead of running the statement.
type Refusal struct {
	Code    pgerror.Code
	Message string
	Hint    string
}

// Err returns the refusal as a client error.
func (r *Refusal) Err() *pgerror.Error {
	e := pgerror.New(r.Code, "%s", r.Message)
	if r.Hint != "" {
		e = e.WithHint("%s", r.Hint)
	}
	return e
}

// Analysis describes one statement for routing. It is immutable once
// returned (slices may share backing arrays), so a plan cache can hand one
// Analysis to many sessions.
type Analysis struct {
	Kind StatementKind
	// Command is PostgreSQL's command tag for the statement: SELECT,
	// INSERT, CREATE TABLE, DROP INDEX, SET, BEGIN, PREPARE, ...
	Command string
	// Tables lists every table reference in statement order, subqueries
	// and CTEs included (a table named twice appears twice).
	Tables []TableAccess
	// Rows holds, for an INSERT ... VALUES into a sharded table, the key
	// of each VALUES row in order, so the router can split the rows by
	// shard. nil otherwise (and when the INSERT is refused).
	Rows []KeyValue
	// KeyUpdate: an UPDATE (or ON CONFLICT DO UPDATE) assigns the key
	// column of a sharded table. NewKey is the value assigned when it is a
	// constant or a parameter; the router allows the statement only if the
	// old and new keys are on one shard (otherwise Refusal is set already).
	KeyUpdate bool
	NewKey    *KeyValue
	// ReadOnly: no side effects, so a replica may serve it. Decided by an
	// explicit list (writes, FOR UPDATE/SHARE, nextval/setval, advisory
	// locks, txid_current, calls to functions not known to be read-only),
	// not by volatility: now() and random() are reads. SideEffect names
	// the first thing that made it not read-only.
	ReadOnly   bool
	SideEffect string
	// CallsUserFunction: the statement calls a function outside
	// pg_catalog, which may change the server session (set_config,
	// advisory locks, LISTEN) where the text does not show it.
	CallsUserFunction bool
	// SingleShard is set when the statement is exact only if every key it
	// touches is on one shard (and on the first shard, when it also reads
	// or writes an unsharded table): sharded tables not joined on their
	// keys, a subquery that needs every row (LIMIT, an aggregate), and so
	// on. It says why; the router refuses with it (0A000) when the keys
	// span shards. When some sharded table has no key, Refusal is set too.
	SingleShard string
	// Refusal is set when the statement cannot be routed exactly whatever
	// its parameters: the router answers with it. (A refusal that follows
	// from SingleShard does not apply to a map with a single shard.)
	Refusal *Refusal
	// Name is the prepared statement's name for PREPARE, EXECUTE and
	// DEALLOCATE ("" for DEALLOCATE ALL).
	Name string
	// Args are EXECUTE's arguments; nil entries are expressions.
	Args []*KeyValue
	// Inner is the analysis of the statement inside PREPARE or EXPLAIN.
	Inner *Analysis
	// ExplainRoute: EXPLAIN (ROUTE), which the proxy answers itself.
	ExplainRoute bool

	// literalBound: a key value depends on a literal in a way Lit cannot
	// express (the elements of an array literal '{1,2}'), so a plan built
	// from the analysis serves only its own text.
	literalBound bool
	// refusalSpansShards: Refusal says only that the statement needs rows
	// of several shards (SingleShard with a sharded table without keys),
	// which a map of one shard, or a shard hint, answers.
	refusalSpansShards bool
}

// ErrMultipleStatements is returned by AnalyzeSQL for a string holding more
// than one statement; AnalyzeStatements takes those.
var ErrMultipleStatements = errors.New("planner: more than one statement")

// AnalyzeSQL analyzes one statement (a nil schema knows no tables). A
// syntax error is a *pgerror.Error
// with code 42601 and PostgreSQL's 1-based character position.
func AnalyzeSQL(sql string, schema Schema) (*Analysis, error) {
	tree, err := parse(sql)
	if err != nil {
		return nil, err
	}
	switch len(tree.Stmts) {
	case 0:
		return &Analysis{Kind: EmptyStatement, ReadOnly: true}, nil
	case 1:
		return analyzeRaw(tree.Stmts[0].Stmt, schema, newLiteralMap(sql)), nil
	default:
		return nil, ErrMultipleStatements
	}
}

// AnalyzeStatements analyzes every statement of a simple-protocol query
// string, in order; an empty string gives none.
func AnalyzeStatements(sql string, schema Schema) ([]*Analysis, error) {
	tree, err := parse(sql)
	if err != nil {
		return nil, err
	}
	out := make([]*Analysis, 0, len(tree.Stmts))
	lits := newLiteralMap(sql)
	for _, raw := range tree.Stmts {
		out = append(out, analyzeRaw(raw.Stmt, schema, lits))
	}
	return out, nil
}

func parse(sql string) (*pg.ParseResult, error) {
	tree, err := pg.Parse(sql)
	if err == nil {
		return tree, nil
	}
	var perr *pgparser.Error
	if errors.As(err, &perr) {
		e := pgerror.New(pgerror.SyntaxError, "%s", perr.Message)
		e.Position = perr.Cursorpos
		return nil, e
	}
	return nil, pgerror.New(pgerror.SyntaxError, "%s", err.Error())
}
