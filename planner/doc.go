// Package planner turns a statement plus the shard map and the catalog into
// a plan: pure, no I/O. AnalyzeSQL says which tables and sharding keys a
// statement touches (keys*.go); Build turns that into a small tree of
// primitives the router runs (plan.go: routes, merges, splits, refusals);
// Normalize and PlanCache key plans by statement text with literal values
// taken out, and Planner puts Build behind that cache, so a statement that
// differs from a cached one only in its constants costs a lookup. The
// pg_query parse tree never leaves the package.
package planner
