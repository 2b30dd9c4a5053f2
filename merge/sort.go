package merge

// ORDER BY across shards. MergeSort interleaves the shards' streams, each
// sorted by the shard itself; Sort orders rows the proxy produced (groups
// after an Aggregate). Both are stable (ties keep shard order, then row
// order), and both compare by value in PostgreSQL's order, with NULLs where
// the key says. A shard stream that is not sorted in that order (a shard
// with another collation, say) is refused rather than merged into a wrong
// order.

import (
	"container/heap"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/planner"
)

// sorter compares rows by the sort keys, on values decoded once per row.
type sorter struct {
	keys []planner.SortKey
	cols []column
}

func newSorter(fields []pgproto3.FieldDescription, keys []planner.SortKey) (*sorter, error) {
	s := &sorter{keys: keys, cols: make([]column, len(keys))}
	for i, k := range keys {
		if err := checkColumn(fields, k.Column); err != nil {
			return nil, err
		}
		f := fields[k.Column]
		c, err := comparableColumn(f.DataTypeOID, f.Format, "sort")
		if err != nil {
			return nil, err
		}
		s.cols[i] = c
	}
	return s, nil
}

func (s *sorter) decode(row [][]byte) ([]datum, error) {
	out := make([]datum, len(s.keys))
	for i, k := range s.keys {
		d, err := s.cols[i].decode(row[k.Column])
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (s *sorter) compare(a, b []datum) int {
	for i, k := range s.keys {
		x, y := a[i], b[i]
		switch {
		case x.null && y.null:
			continue
		case x.null:
			if k.NullsFirst {
				return -1
			}
			return 1
		case y.null:
			if k.NullsFirst {
				return 1
			}
			return -1
		}
		c := compareDatum(s.cols[i].kind, x, y)
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

type keyedRow struct {
	row  [][]byte
	keys []datum
}

func (s *sorter) decodeAll(rows [][][]byte) ([]keyedRow, error) {
	out := make([]keyedRow, len(rows))
	for i, row := range rows {
		k, err := s.decode(row)
		if err != nil {
			return nil, err
		}
		out[i] = keyedRow{row: row, keys: k}
	}
	return out, nil
}

// sortRows is a full stable sort.
func sortRows(in Rows, keys []planner.SortKey) (Rows, error) {
	s, err := newSorter(in.Fields, keys)
	if err != nil {
		return Rows{}, err
	}
	rows, err := s.decodeAll(in.Values)
	if err != nil {
		return Rows{}, err
	}
	slices.SortStableFunc(rows, func(a, b keyedRow) int { return s.compare(a.keys, b.keys) })
	out := Rows{Fields: in.Fields, Values: make([][][]byte, len(rows))}
	for i, r := range rows {
		out.Values[i] = r.row
	}
	return out, nil
}

// mergeSort is a k-way merge of sorted shard streams.
func mergeSort(shards []Rows, keys []planner.SortKey) (Rows, error) {
	if len(shards) == 0 {
		return Rows{}, nil
	}
	s, err := newSorter(shards[0].Fields, keys)
	if err != nil {
		return Rows{}, err
	}
	m := &merger{s: s}
	total := 0
	for si, sh := range shards {
		rows, err := s.decodeAll(sh.Values)
		if err != nil {
			return Rows{}, err
		}
		for i := 1; i < len(rows); i++ {
			if s.compare(rows[i-1].keys, rows[i].keys) > 0 {
				return Rows{}, unsupported(`initialise the shards with --locale=C, or add COLLATE "C" to text sort keys`,
					"shard %d returned rows out of the order the proxy merges by (%s)", si, describeKeys(keys))
			}
		}
		total += len(rows)
		if len(rows) > 0 {
			m.streams = append(m.streams, stream{shard: si, rows: rows})
		}
	}
	heap.Init(m)
	out := Rows{Fields: shards[0].Fields, Values: make([][][]byte, 0, total)}
	for m.Len() > 0 {
		st := &m.streams[0]
		out.Values = append(out.Values, st.rows[0].row)
		st.rows = st.rows[1:]
		if len(st.rows) == 0 {
			heap.Pop(m)
		} else {
			heap.Fix(m, 0)
		}
	}
	return out, nil
}

func describeKeys(keys []planner.SortKey) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += k.String()
	}
	return s
}

// stream is what remains of one shard's rows.
type stream struct {
	shard int
	rows  []keyedRow
}

// merger is a min-heap of streams by their first row; equal rows come
// from the lower shard first, which makes the merge stable.
type merger struct {
	s       *sorter
	streams []stream
}

func (m *merger) Len() int { return len(m.streams) }
func (m *merger) Less(i, j int) bool {
	a, b := &m.streams[i], &m.streams[j]
	if c := m.s.compare(a.rows[0].keys, b.rows[0].keys); c != 0 {
		return c < 0
	}
	return a.shard < b.shard
}
func (m *merger) Swap(i, j int) { m.streams[i], m.streams[j] = m.streams[j], m.streams[i] }
func (m *merger) Push(x any)    { m.streams = append(m.streams, x.(stream)) }
func (m *merger) Pop() any {
	last := m.streams[len(m.streams)-1]
	m.streams = m.streams[:len(m.streams)-1]
	return last
}
