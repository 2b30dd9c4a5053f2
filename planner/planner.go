package planner

// The Planner: Build behind the plan cache, as the router calls it for
// every statement (DESIGN.md section 3, "Plan cache"). The raw text is
// looked up first, then the normalized text; a plan found by its
// normalized text serves the statement when it is Rebindable (the router
// re-binds key values through KeyValue.Lit and the literals returned with
// it), and is otherwise rebuilt for the statement without being cached.
// Concurrent misses on one text build once. A session's shard setting is
// applied to the cached plan, so sessions with and without one share it.

import "fmt"

// PlannerConfig configures a Planner.
type PlannerConfig struct {
	Cache CacheConfig
}

// Validate checks the configuration.
func (c PlannerConfig) Validate() error {
	if err := c.Cache.Validate(); err != nil {
		return fmt.Errorf("planner: %w", err)
	}
	return nil
}

// Planner plans statements through a bounded cache. It is safe for
// concurrent use; plans it returns are shared and must not be modified.
type Planner struct {
	cache *PlanCache[*Plan]
}

// New returns a Planner with an empty cache.
func New(cfg PlannerConfig) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := NewPlanCache[*Plan](cfg.Cache)
	if err != nil {
		return nil, err
	}
	return &Planner{cache: c}, nil
}

// PlanContext is one statement's context: what Build needs, and what else
// a cached plan depends on.
type PlanContext struct {
	BuildContext
	Database, SearchPath string
	// CatalogVersion must change whenever the catalog or the map's table
	// configuration (which tables are sharded, by which key) changes:
	// plans built before are then no longer found.
	CatalogVersion uint64
}

// Plan returns the plan for sql and the statement's literals, which the
// plan's key values refer to (KeyValue.Text). Errors are Build's (a
// syntax error).
func (p *Planner) Plan(ctx PlanContext, sql string) (*Plan, []Literal, error) {
	return p.PlanAppend(ctx, sql, nil)
}

// PlanAppend is Plan appending the literals to lits; passing a reused
// slice makes a cache hit free of allocations.
func (p *Planner) PlanAppend(ctx PlanContext, sql string, lits []Literal) (*Plan, []Literal, error) {
	shared := ctx.BuildContext
	shared.SessionShard = ""
	key := CacheKey{Database: ctx.Database, SearchPath: ctx.SearchPath, CatalogVersion: ctx.CatalogVersion, Text: sql}
	pl, lits, err := p.cache.Lookup(key, lits, func() (*Plan, error) { return Build(sql, shared) })
	if err != nil {
		return nil, lits, err
	}
	if !pl.Rebindable && pl.source != sql || pl.shardSensitive && ctx.Shards != 1 {
		// Built from another statement's values, or for a map of one
		// shard: this statement gets its own.
		if pl, err = Build(sql, shared); err != nil {
			return nil, lits, err
		}
	}
	if ctx.SessionShard != "" && !pl.hinted {
		pl = withShardHint(pl, ctx.SessionShard)
	}
	return pl, lits, nil
}

// Stats returns the plan cache's counters.
func (p *Planner) Stats() CacheStats { return p.cache.Stats() }
