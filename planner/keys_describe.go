package planner

// Text forms of an Analysis: stable, one fact per line, for golden files
// and EXPLAIN (ROUTE).

import (
	"strconv"
	"strings"
)

// String returns the value as SQL would spell it: 42, '42', $1, 42::int8,
// ANY($1).
func (v KeyValue) String() string {
	var s string
	switch {
	case v.ArrayParam:
		s = "ANY($" + strconv.Itoa(v.Param) + ")"
		if v.Cast != "" {
			s = "ANY($" + strconv.Itoa(v.Param) + "::" + v.Cast + "[])"
		}
		return s
	case v.Param > 0:
		s = "$" + strconv.Itoa(v.Param)
	case v.Quoted:
		s = "'" + strings.ReplaceAll(v.Literal, "'", "''") + "'"
	default:
		s = v.Literal
	}
	if v.Cast != "" {
		s += "::" + v.Cast
	}
	return s
}

// String describes the table reference on one line.
func (t TableAccess) String() string {
	var b strings.Builder
	b.WriteString(t.Table.QualifiedName())
	if t.Alias != "" {
		b.WriteString(" AS ")
		b.WriteString(t.Alias)
	}
	b.WriteString(": ")
	if t.Unknown {
		b.WriteString("unknown, ")
	}
	b.WriteString(t.Table.Kind.String())
	if t.Table.Kind == Sharded {
		b.WriteString(" by ")
		b.WriteString(t.Table.Key)
	}
	if t.Write {
		b.WriteString(", write")
	} else {
		b.WriteString(", read")
	}
	if t.Table.Kind == Sharded {
		b.WriteString(", group ")
		b.WriteString(strconv.Itoa(t.Group))
		if t.Keys == nil {
			b.WriteString(", every shard")
		} else {
			b.WriteString(", keys ")
			writeKeys(&b, t.Keys)
		}
	}
	return b.String()
}

func writeKeys(b *strings.Builder, keys []KeyValue) {
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.String())
	}
}

// String describes the analysis, one fact per line, nested statements
// (PREPARE, EXPLAIN, DECLARE) indented under "inner:".
func (a *Analysis) String() string {
	var b strings.Builder
	a.describe(&b, "")
	return b.String()
}

// Lines returns String's lines.
func (a *Analysis) Lines() []string {
	return strings.Split(strings.TrimSuffix(a.String(), "\n"), "\n")
}

func (a *Analysis) describe(b *strings.Builder, indent string) {
	line := func(parts ...string) {
		b.WriteString(indent)
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteByte('\n')
	}
	head := string(a.Kind)
	if a.Command != "" {
		head += " " + a.Command
	}
	if a.Name != "" {
		head += " " + a.Name
	}
	if a.ReadOnly {
		head += ", read-only"
	} else {
		head += ", writes: " + a.SideEffect
	}
	line(head)
	if a.ExplainRoute {
		line("explain route")
	}
	for _, t := range a.Tables {
		line("table ", t.String())
	}
	if a.Rows != nil {
		var rb strings.Builder
		writeKeys(&rb, a.Rows)
		line("rows: ", rb.String())
	}
	if a.KeyUpdate {
		if a.NewKey != nil {
			line("key update: to ", a.NewKey.String())
		} else {
			line("key update: to an expression")
		}
	}
	if a.Args != nil {
		args := make([]string, len(a.Args))
		for i, v := range a.Args {
			args[i] = "(expression)"
			if v != nil {
				args[i] = v.String()
			}
		}
		line("args: ", strings.Join(args, ", "))
	}
	if a.SingleShard != "" {
		line("single shard: ", a.SingleShard)
	}
	if r := a.Refusal; r != nil {
		line("refusal: ", string(r.Code), " ", r.Message)
		if r.Hint != "" {
			line("  hint: ", r.Hint)
		}
	}
	if a.Inner != nil {
		line("inner:")
		a.Inner.describe(b, indent+"  ")
	}
}
