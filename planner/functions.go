package planner

// Which function calls are reads. DESIGN.md section 3: read or write is
// decided by an explicit list, not by volatility. The list starts from
// pg_catalog's immutable and stable functions (builtin_functions.txt,
// generated from PostgreSQL 15), adds the volatile ones that only read
// (random, clock_timestamp, replication status, ...), and removes the ones
// with side effects or that need the session that wrote (nextval and
// friends, advisory locks, txid_current, which is labelled stable but
// assigns a transaction id). Functions outside pg_catalog are writes unless
// the Schema says otherwise (ReadOnlyFunctions).

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed builtin_functions.txt
var builtinFunctionsText string

//go:embed builtin_aggregates.txt
var builtinAggregatesText string

// sideEffectFunctions have effects beyond reading, or read state that
// only the session (or the primary) that made it has.
var sideEffectFunctions = map[string]bool{
	"nextval": true, "setval": true, "currval": true, "lastval": true,
	"pg_advisory_lock": true, "pg_advisory_lock_shared": true,
	"pg_advisory_unlock": true, "pg_advisory_unlock_shared": true, "pg_advisory_unlock_all": true,
	"pg_advisory_xact_lock": true, "pg_advisory_xact_lock_shared": true,
	"pg_try_advisory_lock": true, "pg_try_advisory_lock_shared": true,
	"pg_try_advisory_xact_lock": true, "pg_try_advisory_xact_lock_shared": true,
	"txid_current": true, "pg_current_xact_id": true,
	"pg_notify": true,
}

// volatileReads are volatile pg_catalog functions without side effects.
var volatileReads = []string{
	"random", "random_normal", "setseed", "clock_timestamp", "timeofday", "gen_random_uuid",
	"pg_sleep", "pg_sleep_for", "pg_sleep_until", "set_config", "current_query",
	"pg_is_in_recovery", "pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state",
	"pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
	"pg_last_committed_xact", "pg_xact_commit_timestamp", "pg_xact_commit_timestamp_origin",
	"pg_xact_status", "txid_status", "pg_sequence_last_value",
	"pg_database_size", "pg_relation_size", "pg_table_size", "pg_indexes_size",
	"pg_total_relation_size", "pg_tablespace_size", "pg_partition_tree", "pg_partition_ancestors",
	"pg_lock_status", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_jit_available",
	"pg_notification_queue_usage", "pg_collation_actual_version", "pg_database_collation_actual_version",
	"pg_control_checkpoint", "pg_control_init", "pg_control_recovery", "pg_control_system",
}

type builtinSet struct {
	reads, aggregates map[string]bool
	// stable: immutable or stable, so two calls in one statement give one
	// value (a hidden copy of a sort key equals the key).
	stable map[string]bool
}

// builtins is built once, on first use, and never changed.
var builtins = sync.OnceValue(func() builtinSet {
	b := builtinSet{reads: lines(builtinFunctionsText), aggregates: lines(builtinAggregatesText), stable: lines(builtinFunctionsText)}
	for _, f := range volatileReads {
		b.reads[f] = true
	}
	for f := range sideEffectFunctions {
		delete(b.reads, f)
		delete(b.stable, f)
	}
	return b
})

func lines(text string) map[string]bool {
	m := make(map[string]bool, strings.Count(text, "\n"))
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line != "" && line[0] != '#' {
			m[line] = true
		}
	}
	return m
}

// isBuiltinRead reports whether a pg_catalog function only reads.
func isBuiltinRead(fn string) bool { return builtins().reads[fn] }

// isAggregate reports whether a pg_catalog function is an aggregate.
func isAggregate(fn string) bool { return builtins().aggregates[fn] }

// isStableBuiltin reports whether a pg_catalog function gives one value
// for the same arguments within a statement (immutable or stable).
func isStableBuiltin(fn string) bool { return builtins().stable[fn] }
