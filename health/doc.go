// Package health knows, for every backend of the shard map, whether it
// answers, whether it is in recovery, and how far each replica's replay is
// behind its primary in bytes of WAL; and from that, which replica may
// serve a read (DESIGN.md section 4).
//
// A Monitor polls every backend of the current map every Interval (500ms
// by default), all at once, each poll bounded by less than an interval,
// over one connection per backend that it keeps and replaces after a
// failure. The probe is the same on every backend, because roles change
// under it: pg_is_in_recovery(), then pg_last_wal_replay_lsn() in recovery
// or pg_current_wal_insert_lsn() out of it, and the timeline (see probe in
// poll.go for why each function). Lag is the shard primary's last current
// position minus the replica's replay position.
//
// Each round ends by publishing an immutable snapshot through an atomic
// pointer. PickReplica, on the router's hot path, reads it with a few
// atomic loads and no allocation: a replica qualifies if it was up, in
// recovery and within MaxLagBytes at the last round, has not been marked
// down by the router since (MarkDown), and has replayed past the session's
// read-your-writes position; the one with the fewest outstanding queries
// (Begin) wins, rotating among equals. No qualifying replica: the caller
// uses the primary.
//
// A replica found out of recovery on a newer timeline than its primary (or
// while the primary is down) is reported once through Config.OnPromoted;
// the monitor never changes the map itself, because primary changes are
// map changes made by the Raft leader, and two nodes must not each pick a
// primary.
//
// The package keeps no package-level state, logs only through the
// *slog.Logger it is given, and reaches servers only through the Querier
// the caller's Connect returns (PgConn adapts a pgconn connection).
package health
