package admin

// Human output for `shardproxy admin`: aligned tables for people, and the
// API's own JSON for scripts. It lives beside the types rather than in the
// command so the command stays wiring and the formats are tested here.

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes v as the API does: indented, one trailing newline.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table collects rows and aligns them; the first write error sticks, so
// the callers need not check every line.
type table struct {
	tw  *tabwriter.Writer
	err error
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	if t.err == nil {
		_, t.err = fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
	}
}

func (t *table) flush() error {
	if t.err != nil {
		return t.err
	}
	return t.tw.Flush()
}

// orDash shows an empty cell as "-", so columns stay countable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optUint(v *uint64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(*v, 10)
}

// WriteTable writes the nodes as a table, then why each unreachable one
// is.
func (s *Status) WriteTable(w io.Writer) error {
	leader := s.Leader
	if leader == "" {
		leader = "none (" + ErrNoLeader.Error() + ")"
	}
	if _, err := fmt.Fprintf(w, "leader: %s (as %s sees it)\n", leader, s.Node); err != nil {
		return err
	}
	if s.MembershipError != "" {
		if _, err := fmt.Fprintf(w, "raft membership unknown: %s\n", s.MembershipError); err != nil {
			return err
		}
	}
	t := newTable(w, "NODE", "ROLE", "REACHABLE", "MAP VERSION", "APPLIED INDEX", "HTTP", "POSTGRES", "RAFT")
	for _, n := range s.Nodes {
		reachable := "yes"
		if !n.Reachable {
			reachable = "no"
		}
		t.row(n.ID, n.Role, reachable, optUint(n.MapVersion), optUint(n.AppliedIndex), orDash(n.HTTPAddr), orDash(n.PGAddr), orDash(n.RaftAddr))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if n.Error != "" {
			if _, err := fmt.Fprintf(w, "%s: %s\n", n.ID, n.Error); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteTable writes the shards as a table.
func (l *ShardList) WriteTable(w io.Writer) error {
	t := newTable(w, "SHARD", "PRIMARY", "REPLICAS", "RANGES")
	for _, s := range l.Shards {
		t.row(s.ID, s.Primary, orDash(strings.Join(s.Replicas, ",")), strconv.Itoa(s.Ranges))
	}
	return footer(w, t, l.MapVersion)
}

// WriteTable writes the tables as a table.
func (l *TableList) WriteTable(w io.Writer) error {
	if len(l.Tables) == 0 {
		_, err := fmt.Fprintf(w, "no sharded or reference tables (every table lives on the first shard)\nmap version %d\n", l.MapVersion)
		return err
	}
	t := newTable(w, "TABLE", "KIND", "KEY")
	for _, tb := range l.Tables {
		name := tb.Name
		if tb.Schema != "" {
			name = tb.Schema + "." + tb.Name
		}
		kind := "sharded"
		if tb.Reference {
			kind = "reference"
		}
		t.row(name, kind, orDash(tb.Key))
	}
	return footer(w, t, l.MapVersion)
}

// WriteTable writes the ranges as a table, [LO, HI) per row.
func (l *RangeList) WriteTable(w io.Writer) error {
	t := newTable(w, "LO", "HI", "SHARD")
	for _, r := range l.Ranges {
		t.row(r.Lo, r.Hi, r.Shard)
	}
	return footer(w, t, l.MapVersion)
}

func footer(w io.Writer, t *table, version uint64) error {
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "map version %d\n", version)
	return err
}

// WriteTable says where the keyspace was cut and what the halves are.
func (r *SplitResult) WriteTable(w io.Writer) error {
	var err error
	if r.Lower != nil && r.Upper != nil {
		_, err = fmt.Fprintf(w, "split at %s: [%s, %s) on %s and [%s, %s) on %s; map version %d\n",
			r.At, r.Lower.Lo, r.Lower.Hi, r.Lower.Shard, r.Upper.Lo, r.Upper.Hi, r.Upper.Shard, r.MapVersion)
	} else {
		_, err = fmt.Fprintf(w, "split at %s; map version %d\n", r.At, r.MapVersion)
	}
	if err == nil && r.Warning != "" {
		_, err = fmt.Fprintf(w, "warning: %s\n", r.Warning)
	}
	return err
}
