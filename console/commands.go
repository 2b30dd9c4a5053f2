package console

// The SHOW commands: each one's columns and how its rows are read from the
// Source. Columns are fixed per command, so a statement can be described
// (extended protocol) before it runs; rows are read only when it runs.

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// Type OIDs of the console's columns: everything is text except counts.
const (
	oidInt8 = 20
	oidText = 25
)

type column struct {
	name string
	oid  uint32
}

// value is one cell: its text form, or NULL. Counts are kept in text form
// too and converted only when a client asks for binary results.
type value struct {
	text string
	null bool
}

func text(s string) value { return value{text: s} }
func count(n int) value   { return value{text: strconv.Itoa(n)} }
func textCols(names ...string) []column {
	cols := make([]column, len(names))
	for i, n := range names {
		cols[i] = column{name: n, oid: oidText}
	}
	return cols
}

// command is one SHOW command.
type command struct {
	name string // as written after SHOW, lower case
	help string
	cols []column
	// rows reads the command's rows; nil for SHOW HELP, whose rows are the
	// command table itself (a closure over the table would be an
	// initialization cycle).
	rows func(Source) [][]value
}

// commands is the command table, in the order SHOW HELP lists it. It is
// never modified.
var commands = []command{
	{name: "shards", help: "the shards' servers: one row per primary and replica",
		cols: textCols("id", "role", "host", "port"), rows: shardRows},
	{name: "ranges", help: "the key ranges [lo, hi) and the shard owning each (hi empty: the end of the keyspace)",
		cols: textCols("lo", "hi", "shard"), rows: rangeRows},
	{name: "tables", help: "the sharded and reference tables",
		cols: textCols("schema", "name", "kind", "key"), rows: tableRows},
	{name: "pools", help: "this node's server connection pools",
		cols: append(textCols("database", "user", "shard", "addr"),
			column{"open", oidInt8}, column{"active", oidInt8}, column{"idle", oidInt8}),
		rows: poolRows},
	{name: "replicas", help: "the shards' streaming replicas",
		cols: append(textCols("shard", "host", "port", "state"), column{"lag_bytes", oidInt8}), rows: replicaRows},
	{name: "nodes", help: "the proxy nodes of the cluster",
		cols: append(textCols("id", "pg_addr", "http_addr", "raft_addr", "role"), column{"map_version", oidInt8}),
		rows: nodeRows},
	{name: "version", help: "the proxy's version",
		cols: textCols("version"), rows: versionRows},
	{name: "help", help: "this list",
		cols: textCols("command", "description")},
}

// lookup returns the command named name (lower case), nil if none.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// run reads the command's rows.
func (cmd *command) run(src Source) [][]value {
	if cmd.rows == nil {
		return helpRows()
	}
	return cmd.rows(src)
}

func helpRows() [][]value {
	rows := make([][]value, 0, len(commands))
	for _, c := range commands {
		rows = append(rows, []value{text("SHOW " + strings.ToUpper(c.name)), text(c.help)})
	}
	return rows
}

// helpHint names every command, for the hints of errors.
func helpHint() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = "SHOW " + strings.ToUpper(c.name)
	}
	return "the console answers " + strings.Join(names, ", ")
}

// splitAddr splits host:port for display; an address without a port is
// shown whole as the host.
func splitAddr(addr string) (host, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return h, p
}

func shardRows(src Source) [][]value {
	m := src.Map()
	if m == nil {
		return nil
	}
	var rows [][]value
	for _, s := range m.Shards {
		host, port := splitAddr(s.Primary)
		rows = append(rows, []value{text(s.ID), text("primary"), text(host), text(port)})
		for _, r := range s.Replicas {
			host, port := splitAddr(r)
			rows = append(rows, []value{text(s.ID), text("replica"), text(host), text(port)})
		}
	}
	return rows
}

func rangeRows(src Source) [][]value {
	m := src.Map()
	if m == nil {
		return nil
	}
	rows := make([][]value, 0, len(m.Ranges))
	for _, a := range m.Ranges {
		hi := ""
		if !a.Range.ToEnd {
			hi = strconv.FormatInt(int64(a.Range.Hi), 10)
		}
		rows = append(rows, []value{text(strconv.FormatInt(int64(a.Range.Lo), 10)), text(hi), text(a.Shard)})
	}
	return rows
}

func tableRows(src Source) [][]value {
	m := src.Map()
	if m == nil {
		return nil
	}
	rows := make([][]value, 0, len(m.Tables))
	for _, t := range m.Tables {
		kind := "sharded"
		if t.Reference {
			kind = "reference"
		}
		rows = append(rows, []value{text(t.Schema), text(t.Name), text(kind), text(t.Key)})
	}
	return rows
}

// poolRows adds the shard that owns each pool's server, found in the map,
// because an address alone says little to an operator.
func poolRows(src Source) [][]value {
	owner := map[string]string{}
	if m := src.Map(); m != nil {
		for _, s := range m.Shards {
			owner[s.Primary] = s.ID
			for _, r := range s.Replicas {
				owner[r] = s.ID
			}
		}
	}
	pools := src.Pools()
	rows := make([][]value, 0, len(pools))
	for _, p := range pools {
		rows = append(rows, []value{text(p.Database), text(p.User), text(owner[p.Addr]), text(p.Addr),
			count(p.Open), count(p.Active), count(p.Idle)})
	}
	return rows
}

// ReplicaHealth is implemented by a Source that tracks replica health:
// the state (up, down, lagging, ...) and lag in bytes of a replica, ok
// false when it has not been polled yet.
type ReplicaHealth interface {
	ReplicaState(addr string) (state string, lagBytes int64, ok bool)
}

// replicaRows reports the map's replicas with their health when the
// source tracks it ("configured" and a NULL lag otherwise).
func replicaRows(src Source) [][]value {
	m := src.Map()
	if m == nil {
		return nil
	}
	rh, _ := src.(ReplicaHealth)
	var rows [][]value
	for _, s := range m.Shards {
		for _, r := range s.Replicas {
			host, port := splitAddr(r)
			state, lag := text("configured"), value{null: true}
			if rh != nil {
				if st, l, ok := rh.ReplicaState(r); ok {
					state = text(st)
					if l >= 0 {
						lag = count(int(l))
					}
				}
			}
			rows = append(rows, []value{text(s.ID), text(host), text(port), state, lag})
		}
	}
	return rows
}

func nodeRows(src Source) [][]value {
	nodes := slices.Clone(src.Nodes())
	slices.SortStableFunc(nodes, func(a, b NodeRow) int { return strings.Compare(a.ID, b.ID) })
	rows := make([][]value, 0, len(nodes))
	for _, n := range nodes {
		version := value{null: true}
		if n.MapVersion != 0 {
			version = text(strconv.FormatUint(n.MapVersion, 10))
		}
		rows = append(rows, []value{text(n.ID), text(n.PGAddr), text(n.HTTPAddr), text(n.RaftAddr), text(n.Role), version})
	}
	return rows
}

func versionRows(src Source) [][]value {
	return [][]value{{text("shardproxy " + src.Version())}}
}
