package merge

// The entry point: evaluate the primitives above a plan's Route over the
// rows each shard answered, so the client gets what one PostgreSQL holding
// all the rows would have answered. The router runs the Route and hands
// the per-shard results here; this file checks them and walks the tree.

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/planner"
)

// Rows is one result: its row description and its rows. A nil value is SQL
// NULL. Values are never modified by merge; results may share them.
type Rows struct {
	Fields []pgproto3.FieldDescription
	Values [][][]byte
}

// Param is a bound parameter of the client's statement ($n is params[n-1]):
// LIMIT $n, OFFSET $n and HAVING comparisons read them. A nil Value is
// NULL; OID 0 means the client left the type to the server.
type Param struct {
	Value  []byte
	Format int16
	OID    uint32
}

// Run evaluates the tree above root's Route: shards holds the Route's
// result from each shard, in map order, all with the same row description.
// Errors are *pgerror.Error: 0A000 for a shape the proxy cannot answer
// exactly, PostgreSQL's own codes for what the server would refuse (22003
// overflow, 22P02 bad parameter, 2201W/2201X negative LIMIT/OFFSET), XX000
// for a plan or input that breaks the contract.
func Run(root planner.Primitive, shards []Rows, params []Param) (Rows, error) {
	if err := checkShards(shards); err != nil {
		return Rows{}, err
	}
	if n := countRoutes(root); n != 1 {
		return Rows{}, internal("plan has %d routes, want 1", n)
	}
	r := runner{shards: shards, params: params}
	return r.eval(root)
}

type runner struct {
	shards []Rows
	params []Param
}

func (r *runner) eval(p planner.Primitive) (Rows, error) {
	switch n := p.(type) {
	case *planner.Route:
		return concat(r.shards), nil
	case *planner.MergeSort:
		if _, ok := n.Input.(*planner.Route); ok {
			return mergeSort(r.shards, n.Keys)
		}
		// One stream already: a stable sort leaves a sorted input as it
		// is and sorts any other correctly.
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return sortRows(in, n.Keys)
	case *planner.Sort:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return sortRows(in, n.Keys)
	case *planner.Aggregate:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return aggregate(in, n)
	case *planner.Filter:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return filter(in, n.Cond, r.params)
	case *planner.Distinct:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return distinct(in, n.Columns)
	case *planner.Limit:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return limit(in, n, r.params)
	case *planner.Project:
		in, err := r.eval(n.Input)
		if err != nil {
			return Rows{}, err
		}
		return project(in, n.Columns)
	case nil:
		return Rows{}, internal("nil primitive")
	}
	return Rows{}, unsupported("run the statement on one shard",
		"cannot merge the results of %s", p.Describe())
}

func countRoutes(p planner.Primitive) int {
	if p == nil {
		return 0
	}
	n := 0
	if _, ok := p.(*planner.Route); ok {
		n++
	}
	for _, in := range p.Inputs() {
		n += countRoutes(in)
	}
	return n
}

// checkShards refuses results that do not describe the same columns in the
// same formats, or rows of the wrong width: merging them would mix values
// of different types.
func checkShards(shards []Rows) error {
	for si, s := range shards {
		if len(s.Fields) != len(shards[0].Fields) {
			return internal("shard %d answered %d columns, shard 0 %d", si, len(s.Fields), len(shards[0].Fields))
		}
		for i, f := range s.Fields {
			g := shards[0].Fields[i]
			if f.DataTypeOID != g.DataTypeOID || f.Format != g.Format {
				return internal("shard %d column %d is type %d format %d, shard 0 type %d format %d",
					si, i, f.DataTypeOID, f.Format, g.DataTypeOID, g.Format)
			}
		}
		for _, row := range s.Values {
			if len(row) != len(s.Fields) {
				return internal("shard %d: a row of %d values for %d columns", si, len(row), len(s.Fields))
			}
		}
	}
	return nil
}

// concat is the Route's own order: shard after shard in map order.
func concat(shards []Rows) Rows {
	if len(shards) == 0 {
		return Rows{}
	}
	n := 0
	for _, s := range shards {
		n += len(s.Values)
	}
	out := Rows{Fields: shards[0].Fields, Values: make([][][]byte, 0, n)}
	for _, s := range shards {
		out.Values = append(out.Values, s.Values...)
	}
	return out
}

func checkColumn(fields []pgproto3.FieldDescription, c int) error {
	if c < 0 || c >= len(fields) {
		return internal("column $%d of %d", c, len(fields))
	}
	return nil
}
