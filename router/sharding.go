package router

// Where a client's statement runs. Every statement is planned (the plan
// cache makes a repeated text cost a lookup); a plan whose keys all live on
// one shard runs there through the pass-through machinery unchanged (the
// client's own text, its own statement names), and anything wider goes
// through the distributed path (distributed.go).

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// sharded reports whether statements need planning: more than one shard,
// or configured tables (whose constraints the planner checks).
func (s *session) sharded() bool {
	m := s.r.Map()
	return s.mode == PoolTransaction && (len(m.Shards) > 1 || len(m.Tables) > 0 || s.r.cfg.Replicas != nil && hasReplicas(m))
}

func hasReplicas(m *metadata.Map) bool {
	for _, sh := range m.Shards {
		if len(sh.Replicas) > 0 {
			return true
		}
	}
	return false
}

// routing is the decision for one statement.
type routing struct {
	plan *planner.Plan
	lits []planner.Literal
	// shard is set when the statement runs on that one shard as the
	// client wrote it.
	shard string
}

// route plans a statement and decides where it runs. params are the
// Bind's values (nil in the simple protocol).
func (s *session) route(ctx context.Context, sql string, params *boundParams) (*routing, error) {
	plan, lits, err := s.buildPlan(ctx, sql)
	if err != nil {
		return nil, err
	}
	if a := plan.Analysis; a != nil && a.Command == "EXECUTE" {
		return s.routeExecute(ctx, plan, lits)
	}
	return s.decide(plan, lits, sql, params)
}

// routeExecute routes EXECUTE by the plan of its PREPARE, with EXECUTE's
// arguments as the parameters. It runs where the prepared statement's
// keys are; a prepared statement needing several shards is refused (the
// extended protocol runs those).
func (s *session) routeExecute(ctx context.Context, plan *planner.Plan, lits []planner.Literal) (*routing, error) {
	a := plan.Analysis
	text, ok := s.sqlStmts[a.Name]
	if !ok {
		// The server answers with PostgreSQL's own error.
		return &routing{plan: plan, lits: lits, shard: s.r.Map().Shards[0].ID}, nil
	}
	args := make([][]byte, len(a.Args))
	computed := false
	for i, v := range a.Args {
		if v == nil {
			computed = true
			continue
		}
		t, err := v.Text(lits)
		if err != nil {
			return nil, pgerror.Wrap(err, pgerror.InternalError, "could not read EXECUTE's arguments")
		}
		args[i] = []byte(t)
	}
	lits = append([]planner.Literal(nil), lits...)
	prep, prepLits, err := s.buildPlan(ctx, text)
	if err != nil {
		return nil, err
	}
	if prep.Inner == nil {
		return &routing{plan: plan, lits: lits, shard: s.r.Map().Shards[0].ID}, nil
	}
	switch leafOf(prep.Inner.Root).(type) {
	case *planner.Route, *planner.InsertSplit:
	default:
		return nil, pgerror.New(pgerror.FeatureNotSupported, "EXECUTE of this prepared statement is not supported across shards").
			WithHint("run the statement itself, or prepare it with the extended protocol")
	}
	if r, ok := leafOf(prep.Inner.Root).(*planner.Route); computed && (!ok || r.Target == planner.TargetKeys) {
		return nil, pgerror.New(pgerror.FeatureNotSupported, "EXECUTE with computed arguments cannot be routed by key").
			WithHint("pass constants to EXECUTE, or bind parameters with the extended protocol")
	}
	inner, err := s.decide(prep.Inner, prepLits, text, &boundParams{values: args})
	if err != nil {
		return nil, err
	}
	if inner.shard == "" {
		return nil, pgerror.New(pgerror.FeatureNotSupported, "EXECUTE of a prepared statement that spans shards is not supported").
			WithHint("run the statement itself, or prepare it with the extended protocol")
	}
	return &routing{plan: plan, lits: lits, shard: inner.shard}, nil
}

// decide resolves a plan's targets for these literals and parameters.
func (s *session) decide(plan *planner.Plan, lits []planner.Literal, sql string, params *boundParams) (*routing, error) {
	var err error
	rt := &routing{plan: plan, lits: lits}
	if plan.Explain {
		return rt, nil
	}
	if r, ok := plan.Root.(*planner.Refuse); ok {
		return nil, r.Refusal.Err()
	}
	m := s.r.Map()
	var shards []string
	switch leaf := leafOf(plan.Root).(type) {
	case *planner.Route:
		if shards, err = s.shardTargets(leaf, lits, sql, params); err != nil {
			return nil, err
		}
	case *planner.InsertSplit:
		if shards, _, err = s.insertOwners(leaf, lits, sql, params); err != nil {
			return nil, err
		}
	case *planner.CopyIn:
		for _, sh := range m.Shards {
			shards = append(shards, sh.ID)
		}
	}
	a := plan.Analysis
	if a != nil && len(shards) > 1 && a.SingleShard != "" {
		return nil, pgerror.New(pgerror.FeatureNotSupported, "%s", a.SingleShard).
			WithHint("this statement is exact only when every key it touches is on one shard, and these keys are on %d shards", len(shards))
	}
	if a != nil && a.KeyUpdate && len(m.Shards) > 1 {
		if err := s.checkKeyUpdate(a, shards, lits, sql, params); err != nil {
			return nil, err
		}
	}
	if len(shards) == 1 {
		rt.shard = shards[0]
	}
	if a != nil {
		s.routeCursor(a, rt)
		if s.server != nil && (isSessionCommand(a.Command) || isBlockCommand(a.Command) || answersAnywhere(a)) &&
			rt.shard == m.Shards[0].ID && plan.TargetHint == "" {
			// SET, RESET and SHOW mean the same on every shard, and so
			// does a read of no table with built-in functions only: the
			// current connection answers, and no other shard joins the
			// transaction for them (SELECT now() then answers the block's
			// own start). COMMIT, ROLLBACK and savepoints belong to the
			// block on the current connection (the first shard may have
			// no part in it: a deferred BEGIN went to the shard of the
			// block's first statement).
			rt.shard = s.shardID
		}
	}
	return rt, nil
}

func isSessionCommand(cmd string) bool {
	return cmd == "SET" || cmd == "RESET" || cmd == "SHOW"
}

// answersAnywhere: a SELECT of no table, with no side effect and no user
// function (which could read an unsharded table on the first shard).
func answersAnywhere(a *planner.Analysis) bool {
	return a.Command == "SELECT" && len(a.Tables) == 0 && a.ReadOnly && !a.CallsUserFunction
}

// isBlockCommand: a statement that acts on the open transaction block.
func isBlockCommand(cmd string) bool {
	switch cmd {
	case "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PREPARE TRANSACTION":
		return true
	}
	return false
}

// routeCursor keeps a cursor's statements on the shard that declared it.
func (s *session) routeCursor(a *planner.Analysis, rt *routing) {
	switch a.Command {
	case "DECLARE CURSOR":
		if rt.shard != "" {
			if s.cursors == nil {
				s.cursors = map[string]string{}
			}
			s.cursors[a.Name] = rt.shard
		}
	case "FETCH", "MOVE", "CLOSE CURSOR":
		if id, ok := s.cursors[a.Name]; ok {
			rt.shard = id
		}
	}
}

// checkKeyUpdate allows an UPDATE of the key only when the row stays on
// its shard.
func (s *session) checkKeyUpdate(a *planner.Analysis, shards []string, lits []planner.Literal, sql string, params *boundParams) error {
	refuse := pgerror.New(pgerror.FeatureNotSupported, "an UPDATE that changes a row's sharding key could move it to another shard").
		WithHint("delete the row and insert it with the new key, in one transaction")
	if a.NewKey == nil || len(shards) != 1 {
		return refuse
	}
	keyType := "int8"
	for _, t := range a.Tables {
		if t.Write && t.Table.Kind == planner.Sharded && s.view != nil {
			keyType = s.view.KeyType(t.Table)
		}
	}
	ids, err := keyIDs(*a.NewKey, keyType, lits, sql, params)
	if err != nil {
		return err
	}
	m := s.r.Map()
	for _, id := range ids {
		if m.Owner(id) != shards[0] {
			return refuse
		}
	}
	return nil
}

// transactionControl handles COMMIT, ROLLBACK and friends of a
// transaction that spans shards; handled is false when the statement can
// go to the current server as usual.
func (s *session) transactionControl(ctx context.Context, a *planner.Analysis) (handled bool, err error) {
	switch a.Command {
	case "BEGIN", "START TRANSACTION":
		return false, nil
	case "COMMIT", "END", "ROLLBACK", "ABORT":
		if len(s.parked) == 0 && !s.distributedFailed {
			return false, nil
		}
		commit := (a.Command == "COMMIT" || a.Command == "END") && s.txStatus == 'T' && !s.distributedFailed
		return true, s.finishDistributed(ctx, commit)
	case "SAVEPOINT", "RELEASE", "ROLLBACK TO", "PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED":
		if len(s.parked) > 0 {
			return true, pgerror.New(pgerror.FeatureNotSupported, "%s is not supported in a transaction that spans shards", a.Command).
				WithHint("keep the transaction on one shard, or do without savepoints")
		}
	}
	return false, nil
}

// noteBegin remembers the client's BEGIN for shards that join later.
func (s *session) noteBegin(a *planner.Analysis, sql string, multi bool) {
	if a.Command != "BEGIN" && a.Command != "START TRANSACTION" {
		return
	}
	s.beginSQL = sql
	if multi {
		s.beginSQL = "BEGIN"
	}
}

// explainRoute answers EXPLAIN (ROUTE) with the plan tree, one row per
// primitive, in a column named like EXPLAIN's.
func explainRows(plan *planner.Plan) *distributedResult {
	res := &distributedResult{fields: []pgproto3.FieldDescription{{
		Name: []byte("QUERY PLAN"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1,
	}}}
	for _, line := range planner.Describe(plan.Root) {
		res.rows = append(res.rows, [][]byte{[]byte(line)})
	}
	res.tag = "EXPLAIN"
	return res
}

// shardedSimpleQuery routes a simple-protocol query; handled is false
// when it goes through the pass-through path (on the shard now current).
func (s *session) shardedSimpleQuery(ctx context.Context, sql string) (handled bool, err error) {
	s.lsnShard, s.passAnalysis = "", nil
	if handled, err := s.lsnCommand(ctx, sql); handled {
		return true, err
	}
	rt, err := s.route(ctx, sql, nil)
	if err != nil {
		return true, s.refuseQuery(err)
	}
	if rt.plan.Explain {
		res := explainRows(rt.plan)
		if err := s.writeResult(res, true); err != nil {
			return true, err
		}
		return true, s.readyWithoutServer()
	}
	if a := rt.plan.Analysis; a != nil {
		if done, err := s.transactionControl(ctx, a); done {
			if err != nil {
				return true, s.refuseQuery(err)
			}
			return true, s.readyWithoutServer()
		}
		trimmed := strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n")
		s.noteBegin(a, sql, strings.Contains(trimmed, ";"))
	}
	if s.txStatus == 'E' {
		if s.distributedFailed || s.server == nil {
			// The failure was on another shard: this one would run the
			// statement, PostgreSQL would not.
			return true, s.refuseQuery(errAborted())
		}
		// The current server answers with PostgreSQL's own 25P02.
		return false, nil
	}
	if rt.shard != "" {
		// The pooling analysis only for a read that can be pipelined.
		if s.pipelineIdle() && pipelinablePlan(rt) && pipelinablePooling(planner.Analyze(sql)) {
			s.planLiteralParams(rt, sql)
			if handled, err := s.pipelineQuery(ctx, rt, sql); handled {
				return true, err
			}
		}
		if err := s.routeTo(ctx, rt); err != nil {
			return true, s.refuseQuery(err)
		}
		s.noteWrite(rt)
		s.lsnShard = s.commitsWriteOn(rt)
		s.passAnalysis = rt.plan.Analysis
		s.planLiteralParams(rt, sql)
		return false, nil
	}
	if ci, ok := leafOf(rt.plan.Root).(*planner.CopyIn); ok {
		return true, s.shardedCopy(ctx, rt.plan, ci, sql)
	}
	if co, ok := rt.plan.Root.(*planner.CopyOut); ok {
		route, _ := leafOf(co).(*planner.Route)
		if route == nil {
			return true, s.refuseQuery(pgerror.New(pgerror.InternalError, "COPY TO plan has no route"))
		}
		shards, err := s.shardTargets(route, rt.lits, sql, nil)
		if err != nil {
			return true, s.refuseQuery(err)
		}
		return true, s.shardedCopyOut(ctx, co, route, shards, sql)
	}
	res, err := s.runDistributed(ctx, rt.plan, rt.lits, &clientStatement{sql: sql})
	if err != nil {
		return true, s.refuseQuery(err)
	}
	if err := s.writeResult(res, true); err != nil {
		return true, err
	}
	return true, s.readyWithoutServer()
}

// noteWrite records a write on the current shard inside a transaction
// block, for the commit to know who wrote.
func (s *session) noteWrite(rt *routing) {
	if rt.plan.Analysis == nil || rt.plan.Analysis.ReadOnly || !s.inTransaction() {
		return
	}
	s.noteWroteOn(s.shardID)
}

// commitsWriteOn names the shard on which the statement about to run
// commits a write the session should read back ("" when none): an
// autocommit write, or the COMMIT of a transaction that wrote there.
func (s *session) commitsWriteOn(rt *routing) string {
	a := rt.plan.Analysis
	if a == nil || !s.wantsCommitLSN(rt.shard) || a.Kind == planner.CopyStatement || rt.plan.Statements != nil {
		return ""
	}
	switch {
	case (a.Command == "COMMIT" || a.Command == "END") && s.txStatus == 'T' && s.wrote[s.shardID]:
		return s.shardID
	case !a.ReadOnly && s.txStatus == 'I' && !s.upgraded:
		return rt.shard
	}
	return ""
}
