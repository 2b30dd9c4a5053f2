package router

// Planning a statement for this session: the map, the catalog of the
// client's database and the session's search_path and shard hint go in,
// a plan (and the statement's literals, which cached plans re-bind) comes
// out.

import (
	"context"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/planner"
)

// defaultSearchPath is PostgreSQL's default search_path.
const defaultSearchPath = `"$user", public`

// schemaViewFor returns the schema the session plans against.
func (s *session) schemaViewFor(ctx context.Context) (*schemaView, error) {
	snap, err := s.r.catalogSnapshot(ctx, s.c.Database, s.cred)
	if err != nil {
		return nil, err
	}
	sp := s.settings["search_path"]
	if sp == "" {
		sp = defaultSearchPath
	}
	m := s.r.Map()
	if v := s.view; v != nil && v.snap == snap && v.m == m && v.rawPath == sp {
		return v, nil // the common case: nothing changed since the last statement
	}
	path, err := catalog.ParseSearchPath(sp)
	if err != nil {
		path = []string{"$user", "public"}
	}
	s.view = &schemaView{m: m, snap: snap, searchPath: path, rawPath: sp, user: s.cred.User}
	return s.view, nil
}

func (s *session) buildPlan(ctx context.Context, sql string) (*planner.Plan, []planner.Literal, error) {
	v, err := s.schemaViewFor(ctx)
	if err != nil {
		return nil, nil, err
	}
	pc := planner.PlanContext{
		BuildContext: planner.BuildContext{Schema: v, Shards: len(v.m.Shards), SessionShard: s.settings[shardHintSetting]},
		Database:     s.c.Database, SearchPath: v.rawPath,
		// The catalog is reloaded at every schema epoch; the map's
		// version covers changes to its table list.
		CatalogVersion: v.snap.Version()<<20 ^ v.m.Version,
	}
	plan, lits, err := s.r.planner.PlanAppend(pc, sql, s.lits[:0])
	s.lits = lits
	if err != nil {
		return nil, nil, err
	}
	return plan, lits, nil
}

// shardHintSetting routes every statement of a session to one shard.
const shardHintSetting = "shardproxy.shard"

// callsUserFunction reports whether sql calls a function outside
// pg_catalog: such a call may change the server session (set_config,
// advisory locks, LISTEN) without the text showing it, so the session's
// state is read back and checked after the transaction, as after a DO
// block. The analysis needs no catalog; it is cached like any plan, under
// a key of its own.
func (s *session) callsUserFunction(sql string) bool {
	pc := planner.PlanContext{BuildContext: planner.BuildContext{Shards: 1}, Database: "\x00functions"}
	plan, lits, err := s.r.planner.PlanAppend(pc, sql, s.lits[:0])
	s.lits = lits[:0]
	return err == nil && plan.Analysis != nil && plan.Analysis.CallsUserFunction
}
