package planner

// Values a sharding key is compared with: constants, parameters, casts of
// those, and arrays of them (key = ANY(...)). Anything computed is not a
// usable value; the statement then goes to every shard.

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// strVal returns the text of a String node, "" for any other node.
func strVal(n *pg.Node) string {
	if s := n.GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// isEqualsOp reports whether an operator name is = (or pg_catalog.=).
func isEqualsOp(names []*pg.Node) bool {
	switch len(names) {
	case 1:
		return strVal(names[0]) == "="
	case 2:
		return strVal(names[0]) == "pg_catalog" && strVal(names[1]) == "="
	}
	return false
}

// keyValue returns the value of a constant, a parameter or a cast of one.
// NULL is not a value: key = NULL matches no row.
func (an *analyzer) keyValue(n *pg.Node) (KeyValue, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		tn := tc.GetTypeName()
		if tn == nil || len(tn.ArrayBounds) > 0 || tn.Setof || tn.PctType {
			return KeyValue{}, false
		}
		v, ok := an.plainValue(tc.Arg)
		v.Cast = typeName(tn)
		return v, ok
	}
	return an.plainValue(n)
}

func (an *analyzer) plainValue(n *pg.Node) (KeyValue, bool) {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst:
		v, ok := constValue(x.AConst)
		if ok {
			an.bindLiteral(&v, x.AConst)
		}
		return v, ok
	case *pg.Node_ParamRef:
		return KeyValue{Param: int(x.ParamRef.Number)}, x.ParamRef.Number > 0
	}
	return KeyValue{}, false
}

// bindLiteral records which literal of the statement the constant was
// written as. A constant it cannot place makes the analysis literalBound.
func (an *analyzer) bindLiteral(v *KeyValue, c *pg.A_Const) {
	if _, ok := c.Val.(*pg.A_Const_Boolval); ok {
		return // TRUE and FALSE are keywords, part of the normalized text
	}
	lit, negate, ok := an.lits.lookup(int(c.Location))
	if !ok {
		an.out.literalBound = true
		return
	}
	v.Lit, v.Negate = lit, negate
}

func constValue(c *pg.A_Const) (KeyValue, bool) {
	if c.Isnull {
		return KeyValue{}, false
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Ival:
		return KeyValue{Literal: strconv.FormatInt(int64(v.Ival.GetIval()), 10)}, true
	case *pg.A_Const_Fval:
		return KeyValue{Literal: v.Fval.GetFval()}, true
	case *pg.A_Const_Sval:
		return KeyValue{Literal: v.Sval.GetSval(), Quoted: true}, true
	case *pg.A_Const_Boolval:
		return KeyValue{Literal: strconv.FormatBool(v.Boolval.GetBoolval())}, true
	}
	return KeyValue{}, false
}

// isNullConst reports whether n is the constant NULL (possibly cast).
func isNullConst(n *pg.Node) bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	return c != nil && c.Isnull
}

// typeName spells a type the way the catalog does: pg_catalog's internal
// names (int8 for bigint), other schemas qualified, [] for arrays.
func typeName(tn *pg.TypeName) string {
	var b strings.Builder
	for i, n := range tn.Names {
		s := strVal(n)
		if i == 0 && s == "pg_catalog" && len(tn.Names) > 1 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	for range tn.ArrayBounds {
		b.WriteString("[]")
	}
	return b.String()
}

// arrayValues returns the elements of the array in key = ANY(array): a
// parameter (one array-valued KeyValue), an array literal '{1,2}' or an
// ARRAY[...] constructor of constants and parameters, each possibly cast
// to a one-dimensional array type.
func (an *analyzer) arrayValues(n *pg.Node) ([]KeyValue, bool) {
	cast := ""
	if tc := n.GetTypeCast(); tc != nil {
		tn := tc.GetTypeName()
		if tn == nil || len(tn.ArrayBounds) != 1 || tn.Setof || tn.PctType {
			return nil, false
		}
		cast = strings.TrimSuffix(typeName(tn), "[]")
		n = tc.Arg
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_ParamRef:
		if x.ParamRef.Number <= 0 {
			return nil, false
		}
		return []KeyValue{{Param: int(x.ParamRef.Number), ArrayParam: true, Cast: cast}}, true
	case *pg.Node_AConst:
		s := x.AConst.GetSval()
		if s == nil || x.AConst.Isnull {
			return nil, false
		}
		elems, ok := parseArrayLiteral(s.Sval)
		if !ok || len(elems) == 0 {
			return nil, false
		}
		// How many keys there are depends on the literal's value: a plan
		// with them serves only this text.
		an.out.literalBound = true
		out := make([]KeyValue, len(elems))
		for i, e := range elems {
			out[i] = KeyValue{Literal: e, Quoted: true, Cast: cast}
		}
		return out, true
	case *pg.Node_AArrayExpr:
		out := make([]KeyValue, 0, len(x.AArrayExpr.Elements))
		for _, e := range x.AArrayExpr.Elements {
			if isNullConst(e) {
				continue // never equal to a key
			}
			v, ok := an.keyValue(e)
			if !ok {
				return nil, false
			}
			if v.Cast == "" {
				v.Cast = cast
			}
			out = append(out, v)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// parseArrayLiteral splits a one-dimensional array literal such as
// {1,2,"a b","x\"y"} into its elements, dropping NULLs (they equal no key).
// Anything else (more dimensions, explicit bounds, malformed text) is not
// understood; the caller then treats the key as unusable.
func parseArrayLiteral(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if strings.TrimSpace(body) == "" {
		return nil, true
	}
	var out []string
	i := 0
	for {
		for i < len(body) && isArraySpace(body[i]) {
			i++
		}
		if i >= len(body) {
			return nil, false // a trailing comma
		}
		var elem string
		quoted := false
		switch body[i] {
		case '"':
			quoted = true
			var b strings.Builder
			i++
			for {
				if i >= len(body) {
					return nil, false
				}
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					b.WriteByte(body[i+1])
					i += 2
					continue
				}
				if c == '"' {
					i++
					break
				}
				b.WriteByte(c)
				i++
			}
			elem = b.String()
		case '{', '}', ',':
			return nil, false // nested arrays or an empty element
		default:
			start := i
			for i < len(body) && body[i] != ',' {
				if c := body[i]; c == '"' || c == '{' || c == '}' || c == '\\' {
					return nil, false
				}
				i++
			}
			elem = strings.TrimRight(body[start:i], " \t\n\r\v\f")
		}
		for i < len(body) && isArraySpace(body[i]) {
			i++
		}
		if quoted || !strings.EqualFold(elem, "null") {
			out = append(out, elem)
		}
		if i >= len(body) {
			return out, true
		}
		if body[i] != ',' {
			return nil, false
		}
		i++
	}
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// addKeys returns the union of two key sets without duplicates.
func addKeys(dst, src []KeyValue) []KeyValue {
	for _, v := range src {
		dst = appendKey(dst, v)
	}
	return dst
}

func appendKey(dst []KeyValue, v KeyValue) []KeyValue {
	for _, d := range dst {
		if d == v {
			return dst
		}
	}
	return append(dst, v)
}

// distinctKeys returns vs without duplicates, in first-seen order.
func distinctKeys(vs []KeyValue) []KeyValue {
	if len(vs) <= 16 {
		return addKeys(make([]KeyValue, 0, len(vs)), vs)
	}
	seen := make(map[KeyValue]struct{}, len(vs))
	out := make([]KeyValue, 0, len(vs))
	for _, v := range vs {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}
