// Package planner turns a statement plus the shard map into a plan: pure, no
// I/O. For now every statement is routed to the first shard's primary; the
// sharded planner (pg_query_go, golden plan files) replaces Plan's body
// without changing its callers.
package planner
