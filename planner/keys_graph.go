package planner

// The key graph: one node per sharded table reference (and per column of a
// CTE reference that passes a key through), the key values each node is
// bound to, and the key equalities between nodes. After the walk, keys flow
// along the equalities, connected nodes form colocation groups, and the
// statement-wide checks (reference writes, unsharded tables next to sharded
// ones, key updates) turn into SingleShard reasons or refusals.

import (
	"fmt"

	"github.com/shardproxy/shardproxy/pgerror"
)

// keyEdge is an equality between two keys. ab: a's keys bound b's rows
// (b's rows that matter join a row of a); ba the other way. An edge with
// neither still colocates the two (a full outer join on the keys).
type keyEdge struct {
	a, b   int
	ab, ba bool
}

type keyGraph struct {
	table []int        // per node: index into Analysis.Tables, -1 for a CTE column
	keys  [][]KeyValue // per node: the smallest key set that binds it
	edges []keyEdge
}

func (g *keyGraph) newNode(table int) int {
	g.table = append(g.table, table)
	g.keys = append(g.keys, nil)
	return len(g.table) - 1
}

// bind records that the node's rows that matter have one of keys. Each
// bound is correct alone, so the smallest one wins.
func (g *keyGraph) bind(n int, keys []KeyValue) {
	if len(keys) == 0 {
		return
	}
	if g.keys[n] == nil || len(keys) < len(g.keys[n]) {
		g.keys[n] = keys
	}
}

func (g *keyGraph) link(a, b int, ab, ba bool) {
	if a == b {
		return
	}
	g.edges = append(g.edges, keyEdge{a, b, ab, ba})
}

// propagate lets keys flow along the edges until nothing changes.
func (g *keyGraph) propagate() {
	for range len(g.keys) + 1 {
		changed := false
		for _, e := range g.edges {
			if e.ab && better(g.keys[e.a], g.keys[e.b]) {
				g.keys[e.b], changed = g.keys[e.a], true
			}
			if e.ba && better(g.keys[e.b], g.keys[e.a]) {
				g.keys[e.a], changed = g.keys[e.b], true
			}
		}
		if !changed {
			return
		}
	}
}

func better(from, to []KeyValue) bool {
	return from != nil && (to == nil || len(from) < len(to))
}

// groups returns each node's colocation group root.
func (g *keyGraph) groups() []int {
	parent := make([]int, len(g.table))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for _, e := range g.edges {
		ra, rb := find(e.a), find(e.b)
		if ra != rb {
			parent[rb] = ra
		}
	}
	for i := range parent {
		parent[i] = find(i)
	}
	return parent
}

// finish completes the analysis once the whole statement was walked.
func (an *analyzer) finish() {
	out, g := an.out, &an.g
	for _, c := range an.ctes {
		for _, p := range c.pairs {
			// One reference: outer filters reach the CTE's tables. More:
			// the CTE's keys only bound each reference.
			g.link(p.inner, p.ref, true, c.refs == 1)
		}
	}
	g.propagate()
	roots := g.groups()
	groupOf := map[int]int{}
	for n, t := range g.table {
		if t < 0 {
			continue
		}
		ta := &out.Tables[t]
		ta.Keys = g.keys[n]
		num, ok := groupOf[roots[n]]
		if !ok {
			num = len(groupOf) + 1
			groupOf[roots[n]] = num
		}
		ta.Group = num
	}
	for _, p := range an.pairs {
		if roots[p[0]] == roots[p[1]] {
			continue
		}
		a, b := out.Tables[g.table[p[0]]].Table, out.Tables[g.table[p[1]]].Table
		an.needOneShard(
			fmt.Sprintf("sharded tables %s and %s are not joined on their sharding keys", a.Name, b.Name),
			fmt.Sprintf("join them on their keys (%s.%s = %s.%s), or filter both by key so the statement reads one shard", a.Name, a.Key, b.Name, b.Key))
		break
	}
	an.checkPlacement()
	if out.KeyUpdate && an.keyTable >= 0 && (out.NewKey == nil || out.Tables[an.keyTable].Keys == nil) {
		t := out.Tables[an.keyTable].Table
		an.refuse(
			fmt.Sprintf("updating sharding key %s of %s could move rows to another shard", t.Key, t.Name),
			fmt.Sprintf("give the new key as a constant or parameter and filter %s by its current key; to move a row to another shard, delete it and insert it again", t.Name))
	}
	if out.SingleShard != "" && out.Refusal == nil {
		for _, ta := range out.Tables {
			if ta.Table.Kind == Sharded && ta.Keys == nil {
				an.refuse("statement needs more than one shard: "+out.SingleShard, an.singleShardHint)
				out.refusalSpansShards = true
				break
			}
		}
	}
	out.ReadOnly = an.sideEffect == ""
	out.SideEffect = an.sideEffect
	out.CallsUserFunction = an.userFunction
}

// checkPlacement applies the rules that follow from where the tables live:
// a reference table is written on every primary, so the rows written must
// not depend on one shard's data; an unsharded table lives on the first
// shard, so sharded rows read or written with it must be there too.
func (an *analyzer) checkPlacement() {
	if an.broadcast {
		return
	}
	var refWrite, sharded, unsharded *TableConfig
	var shardedWrite bool
	for i := range an.out.Tables {
		ta := &an.out.Tables[i]
		switch ta.Table.Kind {
		case Reference:
			if ta.Write && refWrite == nil {
				refWrite = &ta.Table
			}
		case Sharded:
			if sharded == nil {
				sharded = &ta.Table
			}
			shardedWrite = shardedWrite || ta.Write
		default:
			if unsharded == nil {
				unsharded = &ta.Table
			}
		}
	}
	if refWrite != nil {
		switch {
		case sharded != nil && shardedWrite:
			an.refuse(fmt.Sprintf("a statement cannot write reference table %s and sharded table %s", refWrite.Name, sharded.Name),
				"write them in separate statements of one transaction")
		case sharded != nil:
			an.refuse(fmt.Sprintf("a write to reference table %s cannot read sharded table %s", refWrite.Name, sharded.Name),
				"every shard writes the same rows: read the sharded rows first, then write them as constants")
		case unsharded != nil:
			an.refuse(fmt.Sprintf("a write to reference table %s cannot read unsharded table %s", refWrite.Name, unsharded.Name),
				"every shard writes the same rows, and the unsharded table is only on the first shard: make it a reference table")
		}
		return
	}
	if sharded != nil && unsharded != nil {
		an.needOneShard(
			fmt.Sprintf("unsharded table %s is only on the first shard, next to sharded table %s", unsharded.QualifiedName(), sharded.Name),
			fmt.Sprintf("filter %s by its key so its rows are on the first shard, or make %s a reference table", sharded.Name, unsharded.Name))
	}
}

// needOneShard records the first reason that makes the statement exact only
// on a single shard.
func (an *analyzer) needOneShard(reason, hint string) {
	if an.out.SingleShard == "" {
		an.out.SingleShard = reason
		an.singleShardHint = hint
	}
}

// refuse records the first refusal.
func (an *analyzer) refuse(msg, hint string) {
	if an.out.Refusal == nil {
		an.out.Refusal = &Refusal{Code: pgerror.FeatureNotSupported, Message: msg, Hint: hint}
	}
}

// note records the first side effect.
func (an *analyzer) note(effect string) {
	if an.sideEffect == "" {
		an.sideEffect = effect
	}
}
