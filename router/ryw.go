package router

// Read-your-writes (DESIGN.md section 4). When a session's write commits
// on a shard that has replicas, the proxy asks that shard for
// pg_current_wal_lsn() as a message of its own written right after the
// client's Query or Sync (so it runs after the commit record, never inside
// the client's transaction) and swallows the answer. The session's later
// reads on that shard go only to replicas that have replayed that far.
// The position can be carried to another session or node as a token:
// SHOW shardproxy.lsn gives it, SET shardproxy.min_lsn = '<token>' takes
// it.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
)

const currentLSNQuery = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"

// parseLSN reads PostgreSQL's "16/B374D848" form.
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}

func formatLSN(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, uint32(l)) }

// noteLSN raises the session's position on a shard.
func (s *session) noteLSN(shard string, lsn uint64) {
	if s.minLSN == nil {
		s.minLSN = map[string]uint64{}
	}
	if lsn > s.minLSN[shard] {
		s.minLSN[shard] = lsn
	}
}

// wantsCommitLSN reports whether a commit on shard is worth a position:
// read-your-writes is on and the shard has replicas to read from.
func (s *session) wantsCommitLSN(shard string) bool {
	if !s.r.cfg.ReadYourWrites || s.r.cfg.Replicas == nil {
		return false
	}
	sh, ok := s.r.Map().Shard(shard)
	return ok && len(sh.Replicas) > 0
}

// queueCommitLSN writes the position query behind the client's message
// that commits (its Query or Sync), its answer swallowed.
func (s *session) queueCommitLSN() {
	shard := s.lsnShard
	s.lsnShard = ""
	if shard == "" || s.server == nil || s.replicaAddr != "" {
		return
	}
	var dr pgproto3.DataRow
	if s.server.WriteFrame('Q', append([]byte(currentLSNQuery), 0)) != nil {
		return
	}
	s.queue = append(s.queue, expect{kind: 'Q', swallow: true, swallowErrors: true, onRow: func(body []byte) {
		if dr.Decode(body) == nil && len(dr.Values) == 1 {
			if l, ok := parseLSN(string(dr.Values[0])); ok {
				s.noteLSN(shard, l)
			}
		}
	}})
}

// fetchCommitLSN asks a connection whose transaction just committed for
// its position (the distributed path, which talks to shards directly).
func (s *session) fetchCommitLSN(sc *serverConn, shard string) {
	if sc.interrupted || !s.wantsCommitLSN(shard) {
		return
	}
	ans, err := exchange(sc, simpleQueryFrame(nil, currentLSNQuery))
	if err != nil || ans.err != nil || len(ans.rows) != 1 || len(ans.rows[0]) != 1 {
		return
	}
	if l, ok := parseLSN(string(ans.rows[0][0])); ok {
		s.noteLSN(shard, l)
	}
}

// lsnToken is the session's positions: map version, then shard@LSN pairs.
func (s *session) lsnToken() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v%d", s.r.Map().Version)
	for _, sh := range s.r.Map().Shards {
		if l, ok := s.minLSN[sh.ID]; ok {
			fmt.Fprintf(&b, ",%s@%s", sh.ID, formatLSN(l))
		}
	}
	return b.String()
}

// applyLSNToken takes a token from SHOW shardproxy.lsn. A shard the map
// no longer has is skipped; positions only ever rise.
func (s *session) applyLSNToken(tok string) error {
	bad := func() error {
		return pgerror.New(pgerror.InvalidParameterValue, "invalid value for parameter \"shardproxy.min_lsn\": %q", tok).
			WithHint("pass a token from SHOW shardproxy.lsn, such as v12,s1@0/16B3740")
	}
	parts := strings.Split(strings.TrimSpace(tok), ",")
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "v") {
		return bad()
	}
	if _, err := strconv.ParseUint(parts[0][1:], 10, 64); err != nil {
		return bad()
	}
	for _, p := range parts[1:] {
		shard, lsn, ok := strings.Cut(p, "@")
		l, lok := parseLSN(lsn)
		if !ok || !lok || shard == "" {
			return bad()
		}
		if _, known := s.r.Map().Shard(shard); known {
			s.noteLSN(shard, l)
		}
	}
	return nil
}

// lsnCommand answers SHOW shardproxy.lsn and SET shardproxy.min_lsn, which
// are the proxy's own; handled is false for any other statement.
func (s *session) lsnCommand(ctx context.Context, sql string) (handled bool, err error) {
	// Cheap refusal first: this runs for every statement, and both
	// commands start with SH or SET (not SELECT).
	if t := strings.TrimLeft(sql, " \t\r\n"); len(t) < 3 || t[0]|0x20 != 's' ||
		t[1]|0x20 != 'h' && (t[1]|0x20 != 'e' || t[2]|0x20 != 't') || !containsFold(t, "shardproxy.") {
		return false, nil
	}
	q := strings.ToLower(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql), ";")))
	switch {
	case q == "show shardproxy.lsn":
		res := &distributedResult{fields: []pgproto3.FieldDescription{{
			Name: []byte("shardproxy.lsn"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1,
		}}, rows: [][][]byte{{[]byte(s.lsnToken())}}, tag: "SHOW"}
		if err := s.writeResult(res, true); err != nil {
			return true, err
		}
		return true, s.readyWithoutServer()
	case strings.HasPrefix(q, "set shardproxy.min_lsn"):
		rest := strings.TrimSpace(sql[len("set shardproxy.min_lsn"):])
		rest = strings.TrimSpace(strings.TrimRight(rest, "; \t\n"))
		switch {
		case strings.HasPrefix(rest, "="):
			rest = strings.TrimSpace(rest[1:])
		case len(rest) > 2 && strings.EqualFold(rest[:2], "to"):
			rest = strings.TrimSpace(rest[2:])
		}
		rest = strings.Trim(rest, "'")
		if err := s.applyLSNToken(rest); err != nil {
			return true, s.refuseQuery(err)
		}
		if err := s.c.WriteFrame('C', append([]byte("SET"), 0)); err != nil {
			return true, &clientLostError{err: err}
		}
		return true, s.readyWithoutServer()
	}
	return false, nil
}

// containsFold reports whether s contains sub, ASCII case-insensitively,
// without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == sub[0]|0x20 && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
