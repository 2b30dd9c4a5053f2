package router

// Statements on more than one shard: scatter reads merged by the plan's
// primitives, writes on several shards (split INSERTs, UPDATE/DELETE
// without a key, reference tables, DDL), and the client transactions that
// touched several shards. A write on several shards outside a transaction
// block runs in a transaction of the proxy's own on each shard and commits
// with two-phase commit; inside the client's transaction block it joins
// that transaction, which commits two-phase at the client's COMMIT.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
	"github.com/shardproxy/shardproxy/twopc"
)

// clientStatement is the client's statement as the distributed path needs
// it: the text, its parameter types and values, the result formats.
type clientStatement struct {
	sql           string
	paramOIDs     []uint32
	params        boundParams
	resultFormats []int16
}

// distributedResult is what the client gets: rows (nil fields: no rows,
// as for an INSERT without RETURNING) and the command tag.
type distributedResult struct {
	fields  []pgproto3.FieldDescription
	rows    [][][]byte
	tag     string
	notices [][]byte
}

// leafOf returns the plan's Route or InsertSplit.
func leafOf(p planner.Primitive) planner.Primitive {
	for {
		in := p.Inputs()
		if len(in) == 0 {
			return p
		}
		p = in[0]
	}
}

// errAborted is PostgreSQL's answer to a statement in a failed transaction.
func errAborted() *pgerror.Error {
	return pgerror.New(pgerror.InFailedSQLTransaction, "current transaction is aborted, commands ignored until end of transaction block")
}

// nonTransactional reports DDL that PostgreSQL refuses inside a
// transaction block: it runs shard after shard on its own.
func nonTransactional(a *planner.Analysis, sql string) bool {
	switch a.Command {
	case "VACUUM", "CREATE DATABASE", "DROP DATABASE", "ALTER SYSTEM", "CREATE TABLESPACE", "DROP TABLESPACE":
		return true
	}
	return strings.Contains(strings.ToLower(sql), "concurrently")
}

// runDistributed executes a plan whose statement runs on more than one
// shard (or needs the proxy's merge).
func (s *session) runDistributed(ctx context.Context, plan *planner.Plan, lits []planner.Literal, cs *clientStatement) (*distributedResult, error) {
	if s.txStatus == 'E' {
		return nil, errAborted()
	}
	stmts, rowsOf, err := s.shardStatements(ctx, plan, lits, cs)
	if err != nil {
		return nil, err
	}
	route, _ := leafOf(plan.Root).(*planner.Route)
	write := plan.Analysis != nil && !plan.Analysis.ReadOnly
	ordered := route != nil && route.Ordered
	if route != nil && route.Write {
		write = true
	}
	inBlock := s.inTransaction()
	ownTxn := write && !inBlock && len(stmts) > 1 && !nonTransactional(plan.Analysis, cs.sql)

	conns := make([]*serverConn, len(stmts))
	for i, st := range stmts {
		if err := s.useShard(ctx, st.shard); err != nil {
			s.abandonShards(inBlock)
			return nil, err
		}
		conns[i] = s.server
	}
	// Every connection is now idle (useShard relayed what was owed);
	// the current one is one of them.
	prefix := ""
	if ownTxn {
		prefix = "BEGIN"
		if ordered {
			prefix = "BEGIN; SET LOCAL lock_timeout = '" + ddlLockTimeout + "'"
		}
	}
	s.mu.Lock()
	s.busy = true
	s.mu.Unlock()
	answers, err := runOnConns(ctx, conns, stmts, prefix, ordered, s.r.cfg.MaxMergeBuffer)
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
	if err != nil {
		s.dropServer()
		return nil, err
	}
	for _, sc := range conns {
		delete(s.unsynced, sc) // runOnConns ended with a Sync on each
	}
	for _, a := range answers {
		if a.err == nil {
			continue
		}
		switch {
		case ownTxn:
			for i := range answers {
				_ = execSimple(conns[i], "ROLLBACK")
			}
			s.releaseServer()
		case inBlock:
			// The client's transaction failed on a shard; the client
			// ends it with ROLLBACK, which reaches every shard.
			s.txStatus = 'E'
			s.distributedFailed = true
		default:
			s.releaseServer()
		}
		return nil, a.err
	}
	if plan.Analysis != nil && plan.Analysis.CallsUserFunction {
		// A function may have changed the server sessions in ways the
		// proxy cannot see; those connections serve no one else.
		for _, sc := range conns {
			sc.dirty = true
		}
	}
	if ownTxn {
		if err := s.commitShards(ctx, conns, stmts); err != nil {
			return nil, err
		}
	}
	if plan.Analysis != nil && plan.Analysis.Kind == planner.DDLStatement {
		// Statements prepared before the change are re-prepared, and the
		// catalog is read again, once the change is visible.
		if inBlock {
			s.schemaChanged = true
		} else {
			s.r.schemaEpoch.Add(1)
		}
	}
	if inBlock {
		if write {
			for _, st := range stmts {
				s.noteWroteOn(st.shard)
			}
		}
	} else if s.mode == PoolTransaction {
		s.releaseServer()
	}
	return s.combine(plan, answers, rowsOf, cs)
}

// ddlLockTimeout bounds how long broadcast DDL waits for a lock on each
// shard, so two DDL statements crossing shards fail instead of waiting on
// each other forever.
const ddlLockTimeout = "10s"

// abandonShards gives back connections taken for a statement that failed
// before it ran anywhere.
func (s *session) abandonShards(inBlock bool) {
	if inBlock {
		return // they belong to the client's transaction now
	}
	if len(s.queue) == 0 {
		s.releaseServer()
	}
}

// combine merges the shards' answers as the plan says.
func (s *session) combine(plan *planner.Plan, answers []shardAnswer, rowsOf [][]int, cs *clientStatement) (*distributedResult, error) {
	res := &distributedResult{}
	for _, a := range answers {
		if len(a.notices) > 0 {
			// Broadcast statements warn once per shard; the client
			// hears it once.
			res.notices = a.notices
			break
		}
	}
	if replicatedWrite(plan.Analysis) {
		// Every shard holds the same copy: one shard's answer is the
		// answer (the others are equal).
		answers = answers[:1]
	}
	tag, err := sumTags(answers)
	if err != nil {
		return nil, err
	}
	res.tag = tag
	res.fields = answers[0].fields
	switch root := plan.Root.(type) {
	case *planner.Route:
		for _, a := range answers {
			res.rows = append(res.rows, a.rows...)
		}
		return res, nil
	case *planner.InsertSplit:
		res.rows = interleaveReturning(answers, rowsOf, len(root.Rows))
		return res, nil
	}
	merged, err := mergeRows(plan.Root, answers, &cs.params)
	if err != nil {
		return nil, err
	}
	res.fields, res.rows = merged.fields, merged.rows
	res.tag = fmt.Sprintf("SELECT %d", len(res.rows))
	return res, nil
}

// interleaveReturning puts RETURNING rows back in VALUES order when every
// shard returned one row per inserted row (ON CONFLICT DO NOTHING may
// return fewer; then shard order it is).
func interleaveReturning(answers []shardAnswer, rowsOf [][]int, n int) [][][]byte {
	exact := true
	for i, a := range answers {
		if len(a.rows) != len(rowsOf[i]) {
			exact = false
		}
	}
	if !exact {
		var out [][][]byte
		for _, a := range answers {
			out = append(out, a.rows...)
		}
		return out
	}
	out := make([][][]byte, n)
	for i, a := range answers {
		for j, r := range a.rows {
			out[rowsOf[i][j]] = r
		}
	}
	compact := out[:0]
	for _, r := range out {
		if r != nil {
			compact = append(compact, r)
		}
	}
	return compact
}

// sumTags adds the shards' row counts: INSERT 0 7, UPDATE 3, SELECT 42.
func sumTags(answers []shardAnswer) (string, error) {
	first := answers[0].tag
	i := strings.LastIndexByte(first, ' ')
	if i < 0 {
		return first, nil
	}
	var total int64
	for _, a := range answers {
		j := strings.LastIndexByte(a.tag, ' ')
		var n int64
		if j < 0 || a.tag[:j] != first[:i] {
			return first, nil
		}
		if _, err := fmt.Sscan(a.tag[j+1:], &n); err != nil {
			return first, nil
		}
		total += n
	}
	return fmt.Sprintf("%s %d", first[:i], total), nil
}

// writeResult sends a distributed result: RowDescription when asked, the
// rows and the command tag.
func (s *session) writeResult(res *distributedResult, describe bool) error {
	for _, n := range res.notices {
		if err := s.c.WriteFrame('N', n); err != nil {
			return &clientLostError{err: err}
		}
	}
	if describe {
		if res.fields != nil {
			rd := pgproto3.RowDescription{Fields: res.fields}
			buf, err := rd.Encode(s.scratch[:0])
			if err != nil {
				return err
			}
			s.scratch = buf
			if err := s.c.WriteRaw(buf); err != nil {
				return &clientLostError{err: err}
			}
		} else if err := s.c.WriteFrame('n', nil); err != nil {
			return &clientLostError{err: err}
		}
	}
	buf := s.scratch[:0]
	for _, row := range res.rows {
		buf = encodeDataRow(buf, row)
		if len(buf) > 64<<10 {
			if err := s.c.WriteRaw(buf); err != nil {
				return &clientLostError{err: err}
			}
			buf = buf[:0]
		}
	}
	s.scratch = buf[:0]
	if len(buf) > 0 {
		if err := s.c.WriteRaw(buf); err != nil {
			return &clientLostError{err: err}
		}
	}
	if res.tag == "" {
		return s.c.WriteFrame('I', nil)
	}
	if err := s.c.WriteFrame('C', append([]byte(res.tag), 0)); err != nil {
		return &clientLostError{err: err}
	}
	return nil
}

// shardTargets resolves which shards a Route runs on, in map order.
func (s *session) shardTargets(r *planner.Route, lits []planner.Literal, sql string, params *boundParams) ([]string, error) {
	m := s.r.Map()
	switch r.Target {
	case planner.TargetAll:
		ids := make([]string, len(m.Shards))
		for i, sh := range m.Shards {
			ids[i] = sh.ID
		}
		return ids, nil
	case planner.TargetNamed:
		if _, ok := m.Shard(r.Shard); !ok {
			return nil, pgerror.New(pgerror.UndefinedObject, "shard %q does not exist", r.Shard).
				WithHint("the shard hint must name a shard of the map; SHOW SHARDS lists them")
		}
		return []string{r.Shard}, nil
	case planner.TargetAny:
		if s.server != nil {
			return []string{s.shardID}, nil
		}
		for id := range s.parked {
			return []string{id}, nil
		}
		return []string{m.Shards[0].ID}, nil
	case planner.TargetKeys:
		if len(r.Keys) == 1 && !r.Keys[0].ArrayParam {
			// The hot path: one key, one owner, no map.
			ids, err := keyIDs(r.Keys[0], r.KeyType, lits, sql, params)
			if err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				return s.firstShard(m), nil
			}
			return s.oneShard(m.Owner(ids[0])), nil
		}
		owners := map[string]bool{}
		for _, k := range r.Keys {
			ids, err := keyIDs(k, r.KeyType, lits, sql, params)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				owners[m.Owner(id)] = true
			}
		}
		if len(owners) == 0 {
			// Every key is NULL or matches nothing: any one shard answers
			// (with no rows), as one database would.
			return []string{m.Shards[0].ID}, nil
		}
		var ids []string
		for _, sh := range m.Shards {
			if owners[sh.ID] {
				ids = append(ids, sh.ID)
			}
		}
		return ids, nil
	}
	return []string{m.Shards[0].ID}, nil
}

// insertOwners groups an InsertSplit's VALUES rows by owning shard, in map
// order; rows whose key is NULL go to the first shard.
func (s *session) insertOwners(is *planner.InsertSplit, lits []planner.Literal, sql string, params *boundParams) ([]string, [][]int, error) {
	m := s.r.Map()
	byShard := map[string][]int{}
	for i, k := range is.Rows {
		ids, err := keyIDs(k, is.KeyType, lits, sql, params)
		if err != nil {
			return nil, nil, err
		}
		owner := m.Shards[0].ID
		if len(ids) > 0 {
			owner = m.Owner(ids[0])
		}
		byShard[owner] = append(byShard[owner], i)
	}
	var shards []string
	var rows [][]int
	for _, sh := range m.Shards {
		if r, ok := byShard[sh.ID]; ok {
			shards = append(shards, sh.ID)
			rows = append(rows, r)
		}
	}
	return shards, rows, nil
}

// shardStatements builds each shard's statement for a distributed plan;
// rowsOf gives, for a split INSERT, each statement's VALUES rows.
func (s *session) shardStatements(ctx context.Context, plan *planner.Plan, lits []planner.Literal, cs *clientStatement) ([]*shardStatement, [][]int, error) {
	switch leaf := leafOf(plan.Root).(type) {
	case *planner.Route:
		shards, err := s.shardTargets(leaf, lits, cs.sql, &cs.params)
		if err != nil {
			return nil, nil, err
		}
		sql := leaf.SQL
		if sql == "" {
			sql = cs.sql
		}
		stmts := make([]*shardStatement, len(shards))
		for i, id := range shards {
			stmts[i] = &shardStatement{shard: id, sql: sql, paramOIDs: cs.paramOIDs,
				params: cs.params.values, paramFormats: cs.params.formats, resultFormats: cs.resultFormats}
		}
		if leaf.Hidden > 0 {
			formats, err := s.hiddenFormats(ctx, shards[0], sql, cs, leaf.Hidden)
			if err != nil {
				return nil, nil, err
			}
			for _, st := range stmts {
				st.resultFormats = formats
			}
		}
		return stmts, nil, nil
	case *planner.InsertSplit:
		shards, rows, err := s.insertOwners(leaf, lits, cs.sql, &cs.params)
		if err != nil {
			return nil, nil, err
		}
		stmts := make([]*shardStatement, len(shards))
		for i, id := range shards {
			sql, params, err := leaf.RowsSQL(rows[i])
			if err != nil {
				return nil, nil, pgerror.Wrap(err, pgerror.InternalError, "could not split the INSERT by shard")
			}
			st := &shardStatement{shard: id, sql: sql, resultFormats: cs.resultFormats}
			for _, p := range params {
				j := p - 1
				if j < 0 || j >= len(cs.params.values) {
					return nil, nil, pgerror.New(pgerror.ProtocolViolation, "bind message supplies %d parameters, but the statement needs $%d", len(cs.params.values), p)
				}
				st.params = append(st.params, cs.params.values[j])
				st.paramFormats = append(st.paramFormats, cs.params.format(j))
				st.paramOIDs = append(st.paramOIDs, cs.params.oid(j))
			}
			stmts[i] = st
		}
		return stmts, rows, nil
	}
	return nil, nil, pgerror.New(pgerror.InternalError, "plan has no route")
}

// hiddenFormats returns the result formats for a statement whose last
// hidden columns must come in binary: the client's formats for the
// visible ones. Bind needs one format per column, so the column count is
// learned once per statement text and schema epoch with a Describe.
func (s *session) hiddenFormats(ctx context.Context, shard, sql string, cs *clientStatement, hidden int) ([]int16, error) {
	key := columnCountKey{sql: sql, epoch: s.r.schemaEpoch.Load(), searchPath: s.settings["search_path"]}
	n, ok := s.r.columnCounts.Load(key)
	if !ok {
		if err := s.useShard(ctx, shard); err != nil {
			return nil, err
		}
		var buf []byte
		buf, err := (&pgproto3.Parse{Query: sql, ParameterOIDs: cs.paramOIDs}).Encode(buf)
		if err != nil {
			return nil, err
		}
		if buf, err = (&pgproto3.Describe{ObjectType: 'S'}).Encode(buf); err != nil {
			return nil, err
		}
		if buf, err = (&pgproto3.Sync{}).Encode(buf); err != nil {
			return nil, err
		}
		sc := s.server
		if err := sc.WriteRaw(buf); err != nil {
			return nil, &serverLostError{err: err}
		}
		if err := sc.Flush(); err != nil {
			return nil, &serverLostError{err: err}
		}
		var ans shardAnswer
		if err := readAnswer(sc, &ans); err != nil {
			return nil, err
		}
		if ans.err != nil {
			return nil, ans.err
		}
		n = len(ans.fields)
		s.r.columnCounts.Store(key, n)
	}
	visible := n.(int) - hidden
	if visible < 0 {
		return nil, pgerror.New(pgerror.InternalError, "the shard statement has %d columns, fewer than its %d hidden ones", n, hidden)
	}
	formats := make([]int16, 0, n.(int))
	for i := range visible {
		var f int16
		switch len(cs.resultFormats) {
		case 0:
		case 1:
			f = cs.resultFormats[0]
		default:
			if i < len(cs.resultFormats) {
				f = cs.resultFormats[i]
			}
		}
		formats = append(formats, f)
	}
	for range hidden {
		formats = append(formats, 1)
	}
	return formats, nil
}

type columnCountKey struct {
	sql, searchPath string
	epoch           uint64
}

// finishDistributed ends a transaction that spans shards: ROLLBACK on
// every shard, or COMMIT: one-phase when at most one shard wrote (the
// readers commit first, then the writer), two-phase otherwise.
func (s *session) finishDistributed(ctx context.Context, commit bool) error {
	if err := s.finishDistributedQuiet(ctx, commit); err != nil {
		return err
	}
	return s.c.WriteFrame('C', append([]byte(s.takeCommitTag(commit)), 0))
}

// finishDistributedQuiet is finishDistributed without the client's answer.
func (s *session) finishDistributedQuiet(ctx context.Context, commit bool) error {
	conns := s.participants()
	var failure error
	if commit {
		var writers, readers []*serverConn
		var writerIDs []string
		for _, id := range s.shardOrder(conns) {
			if s.wrote[id] {
				writers = append(writers, conns[id])
				writerIDs = append(writerIDs, id)
			} else {
				readers = append(readers, conns[id])
			}
		}
		for _, sc := range readers {
			if err := execSimple(sc, "COMMIT"); err != nil {
				failure = err
			}
		}
		switch {
		case failure != nil:
			for _, sc := range writers {
				_ = execSimple(sc, "ROLLBACK")
			}
		case len(writers) == 1:
			failure = execSimple(writers[0], "COMMIT")
			if failure == nil {
				s.fetchCommitLSN(writers[0], writerIDs[0])
			}
		case len(writers) > 1:
			failure = s.twoPhaseCommit(ctx, writers, writerIDs)
			if errors.Is(failure, twopc.ErrRolledBack) {
				// A shard's part had failed: PostgreSQL answers COMMIT of
				// a failed transaction with ROLLBACK, not an error.
				failure = nil
				s.commitTag = "ROLLBACK"
			} else if failure == nil {
				for i, sc := range writers {
					s.fetchCommitLSN(sc, writerIDs[i])
				}
			}
		}
	} else {
		for _, sc := range conns {
			if err := execSimple(sc, "ROLLBACK"); err != nil && failure == nil {
				failure = err
			}
		}
	}
	var lost *serverLostError
	s.txStatus = 'I'
	s.beginSQL = ""
	s.distributedFailed = false
	if errors.As(failure, &lost) {
		s.dropServer()
	} else {
		s.releaseServer()
	}
	return failure
}

// shardOrder lists the connections' shards in map order.
func (s *session) shardOrder(conns map[string]*serverConn) []string {
	var ids []string
	for _, sh := range s.r.Map().Shards {
		if _, ok := conns[sh.ID]; ok {
			ids = append(ids, sh.ID)
		}
	}
	return ids
}

// replicatedWrite reports a write to reference tables only (and no sharded
// table): every shard answers the same.
func replicatedWrite(a *planner.Analysis) bool {
	if a == nil || a.Kind == planner.DDLStatement {
		return false
	}
	ref := false
	for _, t := range a.Tables {
		switch {
		case t.Table.Kind == planner.Sharded:
			return false
		case t.Write && t.Table.Kind == planner.Reference:
			ref = true
		}
	}
	return ref
}

// takeCommitTag is the tag that ends a transaction spanning shards:
// COMMIT, or ROLLBACK when the commit found a shard's part failed.
func (s *session) takeCommitTag(commit bool) string {
	tag := s.commitTag
	s.commitTag = ""
	switch {
	case tag != "":
		return tag
	case commit:
		return "COMMIT"
	}
	return "ROLLBACK"
}

// oneShard returns a one-element shard list, reusing the session's slice.
func (s *session) oneShard(id string) []string {
	s.targetBuf = append(s.targetBuf[:0], id)
	return s.targetBuf
}

func (s *session) firstShard(m *metadata.Map) []string { return s.oneShard(m.Shards[0].ID) }
