package planner

// COPY. FROM STDIN into a sharded table splits the client's rows by key
// (CopyIn), into a reference table sends every row to every shard; TO
// STDOUT of rows on several shards concatenates the shards' output
// (CopyOut: COPY promises no order, and a query that would need merging is
// refused). Server-side files and programs belong to one server: they are
// allowed for unsharded tables (the first shard) only.

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

func (b *builder) copyPlan(a *Analysis, c *pg.CopyStmt) *Plan {
	if a.Refusal != nil {
		return plan(a, &Refuse{Refusal: *a.Refusal})
	}
	opts, err := copyOptions(c.Options)
	if err != nil {
		return refusedPlan(a, err)
	}
	serverFile := c.Filename != "" || c.IsProgram
	if c.Query != nil {
		return b.copyQuery(a, c, opts, serverFile)
	}
	tc := b.table(c.Relation)
	if tc.Kind == Unsharded {
		return plan(a, &Route{Target: TargetFirst, Write: c.IsFrom || serverFile})
	}
	if serverFile {
		return unsupported(a, "use COPY ... FROM STDIN or TO STDOUT (psql's \\copy) through the proxy",
			"COPY with a server file or program on %s table %s is not supported: its rows are on every shard", tc.Kind, tc.Name)
	}
	if !c.IsFrom {
		if tc.Kind == Reference {
			return plan(a, &Route{Target: TargetAny})
		}
		return plan(a, &CopyOut{Input: &Route{Target: TargetAll}, Format: opts.Format, Header: opts.Header})
	}
	opts.Table = c.Relation.Relname
	if c.Relation.Schemaname != "" {
		opts.Table = c.Relation.Schemaname + "." + c.Relation.Relname
	}
	for _, n := range c.Attlist {
		opts.Columns = append(opts.Columns, strVal(n))
	}
	opts.KeyColumn = -1
	if tc.Kind == Reference {
		opts.Broadcast = true
		return plan(a, &opts)
	}
	cols := opts.Columns
	if cols == nil {
		if cols = b.schema.Columns(tc); cols == nil {
			return unsupported(a, "list the columns: COPY "+opts.Table+" ("+tc.Key+", ...) FROM STDIN",
				"the columns of sharded table %s are not known to the proxy, so it cannot find the sharding key in COPY's rows", tc.Name)
		}
	}
	for i, col := range cols {
		if col == tc.Key {
			opts.KeyColumn = i
		}
	}
	if opts.KeyColumn < 0 {
		return unsupported(a, "list "+tc.Key+" among the columns and give it in every row",
			"COPY into sharded table %s must include its sharding key %s", tc.Name, tc.Key)
	}
	opts.Key, opts.KeyType = tc.Key, b.keyType(tc)
	return plan(a, &opts)
}

// copyQuery: COPY (query) TO. One target runs it as written; rows from
// several shards are concatenated when they need no merging.
func (b *builder) copyQuery(a *Analysis, c *pg.CopyStmt, opts CopyIn, serverFile bool) *Plan {
	inner := b.statement(c.Query)
	switch r := inner.Root.(type) {
	case *Refuse:
		inner.Analysis = a
		return inner
	case *Route:
		if serverFile && r.Target != TargetFirst {
			break
		}
		route := &Route{Target: r.Target, Keys: r.Keys, KeyType: r.KeyType, Shard: r.Shard, Write: r.Write}
		if singleTarget(r) {
			return plan(a, route)
		}
		if r.SQL == "" && !serverFile {
			return plan(a, &CopyOut{Input: route, Format: opts.Format, Header: opts.Header})
		}
	}
	if serverFile {
		return unsupported(a, "use COPY (...) TO STDOUT (psql's \\copy) through the proxy",
			"COPY (query) TO a server file or program is supported only for queries of unsharded tables")
	}
	return unsupported(a, "run the query as a SELECT, whose rows the proxy merges",
		"COPY (query) TO STDOUT over several shards cannot merge ORDER BY, LIMIT, DISTINCT or aggregates")
}

// copyOptions reads COPY's options with PostgreSQL's defaults.
func copyOptions(options []*pg.Node) (CopyIn, error) {
	o := CopyIn{Format: "text"}
	var delimiter, null, quote, escape *string
	for _, n := range options {
		d := n.GetDefElem()
		if d == nil {
			continue
		}
		val := defString(d.Arg)
		switch d.Defname {
		case "format":
			o.Format = strings.ToLower(val)
		case "delimiter":
			delimiter = &val
		case "null":
			null = &val
		case "quote":
			quote = &val
		case "escape":
			escape = &val
		case "encoding":
			o.Encoding = val
		case "header":
			switch strings.ToLower(val) {
			case "match":
				o.Header, o.HeaderMatch = true, true
			default:
				o.Header = d.Arg == nil || defTrue(d.Arg)
			}
		}
	}
	switch o.Format {
	case "text":
		o.Delimiter, o.Null = "\t", `\N`
	case "csv":
		o.Delimiter, o.Null, o.Quote = ",", "", `"`
	case "binary":
	default:
		return o, refuseErr("use FORMAT text, csv or binary", "COPY format %q is not supported", o.Format)
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&o.Delimiter, delimiter)
	set(&o.Null, null)
	set(&o.Quote, quote)
	if o.Format == "csv" {
		o.Escape = o.Quote
	}
	set(&o.Escape, escape)
	return o, nil
}

// defString reads an option's argument as text.
func defString(arg *pg.Node) string {
	switch x := arg.GetNode().(type) {
	case *pg.Node_String_:
		return x.String_.Sval
	case *pg.Node_Integer:
		return strconv.Itoa(int(x.Integer.Ival))
	case *pg.Node_Boolean:
		return strconv.FormatBool(x.Boolean.Boolval)
	case *pg.Node_AConst:
		if s := x.AConst.GetSval(); s != nil {
			return s.Sval
		}
	}
	return ""
}
