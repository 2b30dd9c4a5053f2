package planner

// Plans: what the router does with one statement, as a small tree of
// inspectable primitives (Vitess's engine primitives are the model). The
// leaves are Routes (send SQL to shards); the inner nodes combine the
// shards' rows (merge sort, aggregate, filter, distinct, limit, project).
// Every primitive describes itself on one line, so EXPLAIN (ROUTE) and the
// golden files show the same text. Plans never name a shard for a key: the
// router looks owners up in the map snapshot it holds at execution time.
//
// Column numbering. A Route's rows have the columns of its SQL, numbered
// from 0: first the columns the client asked for, then hidden ones the
// planner added (sort and group keys, the count behind an avg), which are
// always read in binary so comparing them does not depend on settings
// such as DateStyle or extra_float_digits. Every inner primitive's output
// has the same columns as its input, except Project, which keeps the
// visible ones in order. So a column index means the same column from the
// Route up to the Project.
//
// Shapes Build produces (testdata/plans.json has each):
//
//   - one Route: a statement one target answers whole (a key's shard, the
//     first shard, any shard for reference reads, every shard for writes,
//     DDL and scatter reads whose rows need no merging);
//   - a scatter read: Route (rewritten SQL, every shard or several keys)
//     -> MergeSort -> Distinct -> Limit -> Project, each only when needed;
//   - a merged aggregate: Route -> Aggregate -> Filter (HAVING) -> Sort ->
//     Limit -> Project;
//   - InsertSplit for a multi-row INSERT, CopyIn for COPY FROM STDIN into a
//     sharded or reference table, CopyOut over a Route for COPY TO STDOUT
//     of rows from several shards;
//   - Refuse.

import (
	"strconv"
	"strings"
)

// Plan is the planner's answer for one statement.
type Plan struct {
	// Analysis is what the plan was built from (tables, keys, side
	// effects); the router reads ReadOnly, Kind and Command from it.
	Analysis *Analysis
	// Root is the primitive the router executes.
	Root Primitive
	// Rebindable: the plan does not depend on the statement's literal
	// values except through KeyValue.Lit, so a plan cached under the
	// normalized text serves every statement with that text. A plan whose
	// SQL was rewritten with the literals in it (a scatter SELECT, a split
	// INSERT) is not: it is cached by raw text only.
	Rebindable bool
	// Explain: the statement was EXPLAIN (ROUTE) <statement>; Root is the
	// inner statement's plan, which the router shows instead of running.
	Explain bool
	// TargetHint is the value of a /* target: ... */ hint comment
	// (primary, replica or any), "" without one: where the router sends a
	// read among a shard's servers.
	TargetHint string
	// Inner is, for PREPARE, the plan of the prepared statement: EXECUTE
	// runs it with EXECUTE's arguments (Analysis.Args) as its parameters.
	Inner *Plan
	// Statements holds the analysis of each statement of a query string
	// with several (Analysis is then their combination, of kind
	// MultiStatement); nil for one statement.
	Statements []*Analysis

	// source is the text the plan was built from: a plan that is not
	// Rebindable serves only that text.
	source string
	// valueDependent: a decision depended on literal values (an INSERT's
	// rows all having one key value).
	valueDependent bool
	// shardSensitive: built for a map of one shard (no merges, nothing
	// refused for needing several shards); rebuilt when the map grows.
	shardSensitive bool
	// hinted: a /* shard: ... */ comment chose the target; a session's
	// shard setting does not override it.
	hinted bool
	// spansShards: the plan is a refusal only because the statement needs
	// several shards, which a shard hint answers.
	spansShards bool
}

// Lines describes the plan for EXPLAIN (ROUTE) and golden files: the
// plan-wide facts, then the tree.
func (p *Plan) Lines() []string {
	var out []string
	if p.Explain {
		out = append(out, "Explain (route)")
	}
	if p.TargetHint != "" {
		out = append(out, "Target hint "+p.TargetHint)
	}
	out = append(out, Describe(p.Root)...)
	if p.Inner != nil {
		out = append(out, "Prepared:")
		for _, l := range p.Inner.Lines() {
			out = append(out, "  "+l)
		}
	}
	return out
}

// Primitive is one node of a plan tree.
type Primitive interface {
	// Inputs returns the primitive's children (none for a Route).
	Inputs() []Primitive
	// Describe returns the primitive on one line, without its children.
	Describe() string
}

// Target says which shards a Route runs on.
type Target uint8

const (
	// TargetFirst: the first shard in the map (unsharded tables, catalog
	// queries of drivers and ORMs, statements that touch no table).
	TargetFirst Target = iota + 1
	// TargetKeys: the shards owning Keys (one or more).
	TargetKeys
	// TargetAll: every shard.
	TargetAll
	// TargetAny: any one shard (reads of reference tables only).
	TargetAny
	// TargetNamed: the shard named by a hint.
	TargetNamed
)

func (t Target) String() string {
	switch t {
	case TargetFirst:
		return "first shard"
	case TargetKeys:
		return "shards owning keys"
	case TargetAll:
		return "every shard"
	case TargetAny:
		return "any shard"
	case TargetNamed:
		return "named shard"
	}
	return "invalid target"
}

// Route sends SQL to shards and yields their rows, shard after shard in
// map order (a MergeSort above it interleaves them instead).
type Route struct {
	Target Target
	// Keys are the key values for TargetKeys: each is hashed with the
	// function for KeyType and looked up in the map.
	Keys []KeyValue
	// KeyType is the key column's type as the catalog names it (int8,
	// int4, int2, text, varchar, uuid, ...): it picks the hash function
	// and how a quoted literal or a text parameter is parsed.
	KeyType string
	// Shard is the shard id of TargetNamed.
	Shard string
	// SQL is the text sent to the shards; "" means the client's own text
	// (or Parse) unchanged.
	SQL string
	// Hidden is how many trailing columns of SQL's result the planner
	// added and the client must not see (they are read in binary).
	Hidden int
	// Write: the statement writes (the router sends it to primaries and,
	// on more than one shard, commits it with two-phase commit).
	Write bool
	// Ordered: DDL; run on one shard after another in map order, each
	// under a lock timeout, never in parallel. Ordered without Write is a
	// statement that cannot run inside a transaction block (VACUUM, CREATE
	// INDEX CONCURRENTLY, CREATE DATABASE): each primary in turn, outside
	// two-phase commit.
	Ordered bool
	// NewKey is the new value of an UPDATE (or ON CONFLICT DO UPDATE) that
	// assigns the key column (Analysis.KeyUpdate, Analysis.NewKey): the
	// router runs it only when NewKey's owner is the owner of Keys (one
	// shard), and answers 0A000 otherwise.
	NewKey *KeyValue
	// Replicated: every shard the route reaches holds the same rows (a
	// write to reference tables), so each answers the same: one shard's
	// rows and command tag are the answer, not their sum.
	Replicated bool
	// Visible is how many columns the client sees, when the planner added
	// hidden ones (0 otherwise): a RowDescription with other than
	// Visible+Hidden columns means the catalog the plan was built with is
	// stale, and the router answers with an error rather than guess.
	Visible int
}

func (*Route) Inputs() []Primitive { return nil }

func (r *Route) Describe() string {
	var b strings.Builder
	b.WriteString("Route ")
	b.WriteString(r.Target.String())
	switch r.Target {
	case TargetKeys:
		b.WriteString(" ")
		writeKeys(&b, r.Keys)
		if r.KeyType != "" {
			b.WriteString(" (")
			b.WriteString(r.KeyType)
			b.WriteString(")")
		}
	case TargetNamed:
		b.WriteString(" ")
		b.WriteString(r.Shard)
	}
	if r.Write {
		b.WriteString(", write")
	}
	if r.Ordered {
		b.WriteString(", ordered")
	}
	if r.Replicated {
		b.WriteString(", replicated")
	}
	if r.NewKey != nil {
		b.WriteString(", new key ")
		b.WriteString(r.NewKey.String())
	}
	if r.Visible > 0 {
		b.WriteString(", visible columns ")
		b.WriteString(strconv.Itoa(r.Visible))
	}
	if r.Hidden > 0 {
		b.WriteString(", hidden columns ")
		b.WriteString(strconv.Itoa(r.Hidden))
	}
	if r.SQL != "" {
		b.WriteString(": ")
		b.WriteString(r.SQL)
	}
	return b.String()
}

// SortKey is one ORDER BY key: a column of the input.
type SortKey struct {
	Column     int
	Desc       bool
	NullsFirst bool
}

func (k SortKey) String() string {
	s := "$" + strconv.Itoa(k.Column)
	if k.Desc {
		s += " DESC"
	}
	if k.NullsFirst {
		s += " NULLS FIRST"
	} else {
		s += " NULLS LAST"
	}
	return s
}

func writeSortKeys(b *strings.Builder, keys []SortKey) {
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.String())
	}
}

// MergeSort interleaves its input's per-shard streams, each already
// sorted by Keys (the shard SQL has the same ORDER BY), into one sorted
// stream. Rows that compare equal keep shard order.
type MergeSort struct {
	Input Primitive
	Keys  []SortKey
}

func (m *MergeSort) Inputs() []Primitive { return []Primitive{m.Input} }
func (m *MergeSort) Describe() string {
	var b strings.Builder
	b.WriteString("MergeSort ")
	writeSortKeys(&b, m.Keys)
	return b.String()
}

// Sort sorts all its input rows by Keys (after an Aggregate, whose groups
// come out in no particular order). Equal rows keep input order.
type Sort struct {
	Input Primitive
	Keys  []SortKey
}

func (s *Sort) Inputs() []Primitive { return []Primitive{s.Input} }
func (s *Sort) Describe() string {
	var b strings.Builder
	b.WriteString("Sort ")
	writeSortKeys(&b, s.Keys)
	return b.String()
}

// AggregateFunc combines one column's partial values from the shards.
type AggregateFunc string

const (
	// AggGroupKey: a GROUP BY key; rows with equal values of every group
	// key (by value, compared in binary) form one group. The first row's
	// value is kept.
	AggGroupKey AggregateFunc = "key"
	// AggAny: a column equal in every row of a group (an expression of
	// the group keys); the first row's value is kept.
	AggAny AggregateFunc = "any"
	// AggSum adds partial sums (and counts: count is a sum of counts);
	// NULL partials are skipped, all NULL gives NULL (count gives 0).
	AggSum   AggregateFunc = "sum"
	AggCount AggregateFunc = "count"
	AggMin   AggregateFunc = "min"
	AggMax   AggregateFunc = "max"
	// AggAvg: the column holds partial sums, CountColumn partial counts;
	// the output is sum/count with PostgreSQL's avg result type (numeric
	// for integer and numeric input, float8 for float input) and scale.
	AggAvg     AggregateFunc = "avg"
	AggBoolAnd AggregateFunc = "bool_and"
	AggBoolOr  AggregateFunc = "bool_or"
)

// AggregateColumn says how one input column is combined.
type AggregateColumn struct {
	Column int
	Func   AggregateFunc
	// CountColumn is the column with the partial counts of an avg.
	CountColumn int
	// Name is the output column name for avg ("avg" unless aliased).
	Name string
}

func (a AggregateColumn) String() string {
	s := string(a.Func) + "($" + strconv.Itoa(a.Column)
	if a.Func == AggAvg {
		s += "/$" + strconv.Itoa(a.CountColumn)
	}
	return s + ")"
}

// Aggregate merges the shards' partial aggregates: its output has one row
// per group (one row in all when there are no group keys, even with no
// input rows, as PostgreSQL answers an ungrouped aggregate). Every input
// column appears in Columns exactly once.
type Aggregate struct {
	Input   Primitive
	Columns []AggregateColumn
	// Grouped: the query has GROUP BY (no input rows then means no output
	// rows).
	Grouped bool
}

func (a *Aggregate) Inputs() []Primitive { return []Primitive{a.Input} }
func (a *Aggregate) Describe() string {
	var b strings.Builder
	b.WriteString("Aggregate")
	if a.Grouped {
		b.WriteString(" grouped")
	}
	for i, c := range a.Columns {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// CompareOp is a comparison in a Condition.
type CompareOp string

// Condition is a HAVING clause the proxy evaluates on merged rows: a
// comparison of a column with a constant, or AND/OR/NOT of conditions.
// SQL's three-valued logic applies (a NULL column makes a comparison
// unknown, and unknown rows are dropped).
type Condition struct {
	// Op is one of = <> < <= > >= for a comparison, or AND, OR, NOT.
	Op     string
	Column int
	// Value is the constant compared with, as text, or a parameter.
	Value KeyValue
	Args  []*Condition
}

func (c *Condition) String() string {
	switch c.Op {
	case "AND", "OR":
		parts := make([]string, len(c.Args))
		for i, a := range c.Args {
			parts[i] = a.String()
		}
		return "(" + strings.Join(parts, " "+c.Op+" ") + ")"
	case "NOT":
		return "NOT " + c.Args[0].String()
	}
	return "$" + strconv.Itoa(c.Column) + " " + c.Op + " " + c.Value.String()
}

// Filter drops the rows for which Cond is not true (HAVING).
type Filter struct {
	Input Primitive
	Cond  *Condition
}

func (f *Filter) Inputs() []Primitive { return []Primitive{f.Input} }
func (f *Filter) Describe() string    { return "Filter " + f.Cond.String() }

// Distinct drops rows equal (by value, compared in binary where the
// columns are hidden copies) to an earlier row in Columns.
type Distinct struct {
	Input   Primitive
	Columns []int
}

func (d *Distinct) Inputs() []Primitive { return []Primitive{d.Input} }
func (d *Distinct) Describe() string {
	parts := make([]string, len(d.Columns))
	for i, c := range d.Columns {
		parts[i] = "$" + strconv.Itoa(c)
	}
	return "Distinct " + strings.Join(parts, ", ")
}

// Count is a LIMIT or OFFSET value: a constant or a parameter.
type Count struct {
	Value int64
	Param int // 1-based; 0 for a constant
}

func (c Count) String() string {
	if c.Param > 0 {
		return "$" + strconv.Itoa(c.Param)
	}
	return strconv.FormatInt(c.Value, 10)
}

// Limit skips Offset rows and passes at most Count (nil: all) of the rest.
type Limit struct {
	Input  Primitive
	Count  *Count
	Offset *Count
}

func (l *Limit) Inputs() []Primitive { return []Primitive{l.Input} }
func (l *Limit) Describe() string {
	s := "Limit"
	if l.Count != nil {
		s += " " + l.Count.String()
	} else {
		s += " ALL"
	}
	if l.Offset != nil {
		s += " offset " + l.Offset.String()
	}
	return s
}

// Project keeps Columns of its input, in that order: the visible columns,
// without the hidden ones.
type Project struct {
	Input   Primitive
	Columns []int
}

func (p *Project) Inputs() []Primitive { return []Primitive{p.Input} }
func (p *Project) Describe() string {
	parts := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		parts[i] = "$" + strconv.Itoa(c)
	}
	return "Project " + strings.Join(parts, ", ")
}

// InsertSplit runs a multi-row INSERT ... VALUES into a sharded table:
// the router groups Rows (one key per VALUES row, in order) by owning
// shard and asks RowsSQL for each group's statement. With rows on more
// than one shard it is a distributed write (two-phase commit); RETURNING
// rows come back in VALUES order.
type InsertSplit struct {
	Rows    []KeyValue
	KeyType string
	// RowsSQL returns the INSERT holding only the given VALUES rows (0-based,
	// ascending), with parameters renumbered from $1, and for each new
	// parameter the client's 1-based parameter number it stands for.
	RowsSQL func(rows []int) (sql string, params []int, err error)
}

func (*InsertSplit) Inputs() []Primitive { return nil }
func (i *InsertSplit) Describe() string {
	var b strings.Builder
	b.WriteString("InsertSplit rows ")
	writeKeys(&b, i.Rows)
	if i.KeyType != "" {
		b.WriteString(" (")
		b.WriteString(i.KeyType)
		b.WriteString(")")
	}
	return b.String()
}

// CopyIn runs COPY table FROM STDIN into a sharded table, splitting the
// client's data rows by the key column's value, or into a reference table,
// sending every row to every shard. The router sends SQL (the client's
// text when "") to each shard that gets rows (every shard for a reference
// table), then the rows, a header line (Header) first on each; with more
// than one shard it is a distributed write (two-phase commit). Format and
// options are as PostgreSQL applies them, with its defaults filled in.
type CopyIn struct {
	// Table is the table as the statement names it (schema-qualified when
	// it is); Columns the column list, nil for every column in table order.
	Table   string
	Columns []string
	// Key is the key column, KeyColumn its 0-based position among a data
	// row's fields, KeyType its type; "", -1 and "" for a reference table.
	Key       string
	KeyColumn int
	KeyType   string
	// Broadcast: a reference table, every row goes to every shard.
	Broadcast bool
	// Format is text, csv or binary (binary rows carry the key in
	// PostgreSQL's binary form of KeyType).
	Format string
	// Delimiter and Null: the field separator and the null string (text
	// and csv); Quote and Escape: csv only.
	Delimiter, Null, Quote, Escape string
	// Header: the first line is a header (csv and text), sent to each
	// shard; HeaderMatch: it must match the column names (HEADER MATCH),
	// which each shard checks.
	Header, HeaderMatch bool
	// Encoding is the ENCODING option, "" for the client encoding.
	Encoding string
	SQL      string
}

func (*CopyIn) Inputs() []Primitive { return nil }
func (c *CopyIn) Describe() string {
	var b strings.Builder
	b.WriteString("CopyIn ")
	b.WriteString(c.Table)
	if c.Columns != nil {
		b.WriteString(" (")
		b.WriteString(strings.Join(c.Columns, ", "))
		b.WriteString(")")
	}
	if c.Broadcast {
		b.WriteString(" to every shard")
	} else {
		b.WriteString(" split by ")
		b.WriteString(c.Key)
		b.WriteString(" (field ")
		b.WriteString(strconv.Itoa(c.KeyColumn))
		if c.KeyType != "" {
			b.WriteString(", ")
			b.WriteString(c.KeyType)
		}
		b.WriteString(")")
	}
	b.WriteString(", format ")
	b.WriteString(c.Format)
	if c.Format != "binary" {
		b.WriteString(", delimiter ")
		b.WriteString(strconv.Quote(c.Delimiter))
		b.WriteString(", null ")
		b.WriteString(strconv.Quote(c.Null))
	}
	if c.Format == "csv" {
		b.WriteString(", quote ")
		b.WriteString(strconv.Quote(c.Quote))
		b.WriteString(", escape ")
		b.WriteString(strconv.Quote(c.Escape))
	}
	switch {
	case c.HeaderMatch:
		b.WriteString(", header match")
	case c.Header:
		b.WriteString(", header")
	}
	if c.Encoding != "" {
		b.WriteString(", encoding ")
		b.WriteString(c.Encoding)
	}
	if c.SQL != "" {
		b.WriteString(": ")
		b.WriteString(c.SQL)
	}
	return b.String()
}

// CopyOut answers COPY ... TO STDOUT with rows from several shards: the
// router runs its input Route (the client's COPY on each shard) and sends
// the client one CopyOutResponse, every shard's data rows in shard order
// (no ordering promise, like COPY itself), and one CopyDone. A header line
// (Header) and the binary format's header and trailer appear once.
type CopyOut struct {
	Input  Primitive
	Format string // text, csv or binary
	Header bool
}

func (c *CopyOut) Inputs() []Primitive { return []Primitive{c.Input} }
func (c *CopyOut) Describe() string {
	s := "CopyOut concatenate, format " + c.Format
	if c.Header {
		s += ", header"
	}
	return s
}

// Refuse answers the client with an error instead of running anything.
type Refuse struct {
	Refusal Refusal
}

func (*Refuse) Inputs() []Primitive { return nil }
func (r *Refuse) Describe() string {
	s := "Refuse " + string(r.Refusal.Code) + " " + r.Refusal.Message
	if r.Refusal.Hint != "" {
		s += " (hint: " + r.Refusal.Hint + ")"
	}
	return s
}

// Describe returns the plan tree, one primitive per line, children
// indented under their parent.
func Describe(p Primitive) []string {
	var out []string
	var walk func(p Primitive, indent string)
	walk = func(p Primitive, indent string) {
		out = append(out, indent+p.Describe())
		for _, in := range p.Inputs() {
			walk(in, indent+"  ")
		}
	}
	walk(p, "")
	return out
}
