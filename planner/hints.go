package planner

// Routing hints in comments (DESIGN.md section 3): /* shard: s2 */ sends a
// statement to that shard whatever its keys, /* target: primary */ says
// which of a shard's servers may answer a read. Normalize keeps hint
// comments in the cache key, so a plan built with a hint serves only
// statements with the same hint. A session's SET shardproxy.shard acts
// like a shard hint on every statement (a comment wins).

import (
	"strings"

	"github.com/shardproxy/shardproxy/pgerror"
)

// hints are the hint comments of one query string.
type hints struct {
	shard, target string
}

// scanHints reads the hint comments, skipping string literals and quoted
// identifiers as PostgreSQL's scanner does.
func scanHints(sql string) (hints, error) {
	var h hints
	n := normalizer{src: sql, stmtStart: true}
	for i := 0; i < len(sql); {
		tok, start, end, _ := n.next(i)
		i = end
		text := sql[start:end]
		var body string
		switch {
		case tok == normLineHint:
			body = text[2:]
		case tok == normText && strings.HasPrefix(text, "/*"):
			body = strings.TrimSuffix(text[2:], "*/")
		default:
			continue
		}
		if err := h.parse(body); err != nil {
			return h, err
		}
	}
	return h, nil
}

// parse reads "shard: s2", "shard=s2", "target: primary", several of them
// separated by commas or blanks. A comment that only starts like a hint
// ends at the first word that is not one.
func (h *hints) parse(body string) error {
	rest := body
	for {
		rest = strings.TrimLeft(rest, " \t\r\n,;")
		name, after, ok := cutHintName(rest)
		if !ok {
			return nil
		}
		value, tail := hintValue(after)
		rest = tail
		switch name {
		case "shard":
			if value == "" {
				return pgerror.New(pgerror.InvalidParameterValue, "shard hint without a shard name")
			}
			if h.shard != "" && h.shard != value {
				return pgerror.New(pgerror.InvalidParameterValue, "conflicting shard hints %q and %q", h.shard, value)
			}
			h.shard = value
		case "target":
			v := strings.ToLower(value)
			switch v {
			case "primary", "replica", "any":
			default:
				return pgerror.New(pgerror.InvalidParameterValue, "invalid target hint %q", value).
					WithHint("use target: primary, replica or any")
			}
			if h.target != "" && h.target != v {
				return pgerror.New(pgerror.InvalidParameterValue, "conflicting target hints %q and %q", h.target, v)
			}
			h.target = v
		}
	}
}

// cutHintName reads "shard" or "target" and the ':' or '=' after it.
func cutHintName(s string) (name, rest string, ok bool) {
	for _, w := range [...]string{"shard", "target"} {
		if len(s) < len(w) || !equalFoldASCII(s[:len(w)], w) {
			continue
		}
		r := strings.TrimLeft(s[len(w):], " \t")
		if r != "" && (r[0] == ':' || r[0] == '=') {
			return w, strings.TrimLeft(r[1:], " \t"), true
		}
	}
	return "", "", false
}

// hintValue reads a quoted or bare value.
func hintValue(s string) (value, rest string) {
	if s != "" && (s[0] == '\'' || s[0] == '"') {
		if end := strings.IndexByte(s[1:], s[0]); end >= 0 {
			return s[1 : 1+end], s[2+end:]
		}
	}
	end := strings.IndexAny(s, " \t\r\n,;*")
	if end < 0 {
		end = len(s)
	}
	return s[:end], s[end:]
}

// applyHints applies the statement's hint comments and the session's
// shard to a plan.
func (b *builder) applyHints(p *Plan) *Plan {
	h, err := scanHints(b.sql)
	if err != nil {
		pe := err.(*pgerror.Error)
		return plan(p.Analysis, &Refuse{Refusal: Refusal{Code: pe.Code, Message: pe.Message, Hint: pe.Hint}})
	}
	p.TargetHint = h.target
	switch {
	case h.shard != "":
		p = withShardHint(p, h.shard)
		p.hinted = true
	case b.ctx.SessionShard != "":
		p = withShardHint(p, b.ctx.SessionShard)
	}
	return p
}

// withShardHint returns the plan that sends the statement to the named
// shard. Refusals stand, except those that only say the statement needs
// several shards (the hint says which one to use). Rows of a sharded
// table are placed by their keys, never by a hint: an INSERT or COPY into
// one, or an UPDATE of its key, is refused under a hint.
func withShardHint(p *Plan, shard string) *Plan {
	if _, ok := p.Root.(*Refuse); ok && !p.spansShards {
		return p
	}
	q := *p
	if t := placesShardedRows(p); t != "" {
		q.Root = &Refuse{Refusal: Refusal{Code: pgerror.FeatureNotSupported,
			Message: "a shard hint cannot place rows of sharded table " + t + ": their sharding key decides the shard",
			Hint:    "remove the shard hint (or RESET shardproxy.shard) for this statement"}}
		return &q
	}
	write := p.Analysis == nil || !p.Analysis.ReadOnly
	walkPrimitives(p.Root, func(pr Primitive) {
		switch x := pr.(type) {
		case *Route:
			write = write || x.Write
		case *InsertSplit, *CopyIn:
			write = true
		}
	})
	q.Root = &Route{Target: TargetNamed, Shard: shard, Write: write}
	q.spansShards = false
	if p.Inner != nil {
		q.Inner = withShardHint(p.Inner, shard)
	}
	return &q
}

// placesShardedRows names a sharded table whose rows the statement puts
// somewhere: an INSERT, MERGE or COPY FROM into it (or a writable CTE
// doing one), or an UPDATE of its key. UPDATE and DELETE leave rows where
// they are, and DDL on one shard is what a hint is for.
func placesShardedRows(p *Plan) string {
	as := p.Statements
	if as == nil && p.Analysis != nil {
		as = []*Analysis{p.Analysis}
	}
	for _, a := range as {
		if t := analysisPlacesRows(a); t != "" {
			return t
		}
	}
	return ""
}

func analysisPlacesRows(a *Analysis) string {
	if a.Kind == ExplainStatement && a.Inner != nil {
		return analysisPlacesRows(a.Inner)
	}
	for _, t := range a.Tables {
		if t.Table.Kind != Sharded || !t.Write {
			continue
		}
		switch {
		case a.KeyUpdate, a.Kind == InsertStatement, a.Kind == CopyStatement, a.Kind == MergeStatement, a.Kind == SelectStatement:
			return t.Table.Name
		}
	}
	return ""
}
