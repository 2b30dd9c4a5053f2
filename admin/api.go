package admin

// The JSON documents of the admin API, shared by the server and the client
// so the two cannot drift. Keyspace positions travel as decimal strings:
// they are int64s, and JSON numbers lose precision beyond 2^53 in most
// languages scripts are written in.

import (
	"fmt"
	"math"
	"strconv"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

// keyspaceEnd is 2^63, the exclusive end of the keyspace, as the API
// writes the hi of the last range (keyspace.Range.String writes it so too).
const keyspaceEnd = "9223372036854775808"

// Status is GET /admin/v1/status: every node as the answering node sees it.
type Status struct {
	Node   string `json:"node"`   // the node that answered
	Leader string `json:"leader"` // "" when the cluster has no leader
	// MembershipError is set when the answering node could not read the
	// Raft membership; roles are then "unknown".
	MembershipError string       `json:"membership_error,omitempty"`
	Nodes           []NodeStatus `json:"nodes"`
}

// NodeStatus is one node in Status.
type NodeStatus struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	PGAddr    string `json:"pg_addr"`
	HTTPAddr  string `json:"http_addr"`
	Role      string `json:"role"` // leader, follower, nonvoter, none, unknown
	Reachable bool   `json:"reachable"`
	// MapVersion and AppliedIndex are what the node itself reported; null
	// when it did not answer (or, for MapVersion, has no map yet).
	MapVersion   *uint64 `json:"map_version"`
	AppliedIndex *uint64 `json:"applied_index"`
	Error        string  `json:"error,omitempty"` // why it is unreachable
}

// Local is GET /admin/v1/local: one node about itself. Status asks every
// node for it.
type Local struct {
	ID           string  `json:"id"`
	Role         string  `json:"role"`
	Leader       string  `json:"leader"` // the leader as this node sees it
	MapVersion   *uint64 `json:"map_version"`
	AppliedIndex uint64  `json:"applied_index"`
}

// ShardList is GET /admin/v1/shards.
type ShardList struct {
	MapVersion uint64      `json:"map_version"`
	Shards     []ShardInfo `json:"shards"`
}

// ShardInfo is one shard and how many ranges it owns.
type ShardInfo struct {
	ID       string   `json:"id"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas"`
	Ranges   int      `json:"ranges"`
}

// TableList is GET /admin/v1/tables.
type TableList struct {
	MapVersion uint64      `json:"map_version"`
	Tables     []TableInfo `json:"tables"`
}

// TableInfo is one configured table.
type TableInfo struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	Key       string `json:"key"` // "" for a reference table
	Reference bool   `json:"reference"`
}

// RangeList is GET /admin/v1/ranges.
type RangeList struct {
	MapVersion uint64      `json:"map_version"`
	Ranges     []RangeInfo `json:"ranges"`
}

// RangeInfo is the half-open range [Lo, Hi) and its owner. Lo and Hi are
// decimal int64s, except that the last range's Hi is 9223372036854775808
// (2^63), and ToEnd says so.
type RangeInfo struct {
	Lo    string `json:"lo"`
	Hi    string `json:"hi"`
	ToEnd bool   `json:"to_end"`
	Shard string `json:"shard"`
}

// Range parses r back into a keyspace.Range.
func (r RangeInfo) Range() (keyspace.Range, error) {
	lo, err := strconv.ParseInt(r.Lo, 10, 64)
	if err != nil {
		return keyspace.Range{}, fmt.Errorf("range lo %q: %w", r.Lo, err)
	}
	out := keyspace.Range{Lo: keyspace.ID(lo), ToEnd: r.ToEnd}
	if !r.ToEnd {
		hi, err := strconv.ParseInt(r.Hi, 10, 64)
		if err != nil {
			return keyspace.Range{}, fmt.Errorf("range hi %q: %w", r.Hi, err)
		}
		out.Hi = keyspace.ID(hi)
	}
	if !out.Valid() {
		return keyspace.Range{}, fmt.Errorf("range %s is empty or malformed", out)
	}
	return out, nil
}

// SplitRequest is the body of POST /admin/v1/split. Exactly one field is
// set: At cuts the range containing it so that At starts the upper half;
// RangeLo cuts the range starting at RangeLo in the middle.
type SplitRequest struct {
	At      string `json:"at,omitempty"`
	RangeLo string `json:"range_lo,omitempty"`
}

// SplitResult answers a split.
type SplitResult struct {
	At         string `json:"at"`          // where the keyspace was cut
	MapVersion uint64 `json:"map_version"` // the first map with the cut
	Index      uint64 `json:"index"`       // the Raft log index of the split
	// Lower and Upper are the two halves, read from the answering node's
	// map; absent when that map has already moved on (another split).
	Lower *RangeInfo `json:"lower,omitempty"`
	Upper *RangeInfo `json:"upper,omitempty"`
	// Warning is set when the answering node had not yet seen the new map
	// when it answered: the split is committed, a GET on this node may
	// not show it for a moment.
	Warning string `json:"warning,omitempty"`
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error codes: a stable, machine-readable reason next to each message.
const (
	codeUnauthorized      = "unauthorized"
	codeBadRequest        = "bad_request"
	codeRejected          = "rejected"
	codeNotFound          = "not_found"
	codeMethod            = "method_not_allowed"
	codeNoLeader          = "no_leader"
	codeLeaderUnreachable = "leader_unreachable"
	codeNoMap             = "no_map"
	codeInternal          = "internal"
)

func rangeInfo(a metadata.Assignment) RangeInfo {
	hi := keyspaceEnd
	if !a.Range.ToEnd {
		hi = strconv.FormatInt(int64(a.Range.Hi), 10)
	}
	return RangeInfo{Lo: formatID(a.Range.Lo), Hi: hi, ToEnd: a.Range.ToEnd, Shard: a.Shard}
}

func formatID(id keyspace.ID) string { return strconv.FormatInt(int64(id), 10) }

func shardList(m *metadata.Map) ShardList {
	owned := map[string]int{}
	for _, a := range m.Ranges {
		owned[a.Shard]++
	}
	out := ShardList{MapVersion: m.Version, Shards: []ShardInfo{}}
	for _, s := range m.Shards {
		replicas := append([]string{}, s.Replicas...)
		out.Shards = append(out.Shards, ShardInfo{ID: s.ID, Primary: s.Primary, Replicas: replicas, Ranges: owned[s.ID]})
	}
	return out
}

func tableList(m *metadata.Map) TableList {
	out := TableList{MapVersion: m.Version, Tables: []TableInfo{}}
	for _, t := range m.Tables {
		out.Tables = append(out.Tables, TableInfo{Schema: t.Schema, Name: t.Name, Key: t.Key, Reference: t.Reference})
	}
	return out
}

func rangeList(m *metadata.Map) RangeList {
	out := RangeList{MapVersion: m.Version, Ranges: []RangeInfo{}}
	for _, a := range m.Ranges {
		out.Ranges = append(out.Ranges, rangeInfo(a))
	}
	return out
}

// parseID reads a keyspace position given as a decimal string; field names
// it in the message.
func parseID(field, s string) (keyspace.ID, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return 0, fmt.Errorf("%s must be a decimal integer from %d to %d, not %q", field, int64(math.MinInt64), int64(math.MaxInt64), s)
	}
	return keyspace.ID(v), nil
}
