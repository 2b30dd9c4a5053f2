// Package localpg starts real PostgreSQL servers on this machine: a few
// shards, each a primary with optional streaming replicas, listening on
// 127.0.0.1 in a short directory of their own.
//
// It exists because shardproxy is tested and demonstrated against real
// PostgreSQL, not fakes: `shardproxy demo`, `make bench` and every
// integration test start their backends through this package, so it is an
// ordinary package rather than test-only code. StartForTest and
// RequirePostgres (testing.go) are the test-facing entry points.
//
// What it takes care of:
//   - finding the PostgreSQL 15 binaries (Debian package postgresql-15);
//   - running initdb once per cluster (or once per shared TemplateDir) and
//     copying the result for every primary, because initdb is the slow step;
//   - running every server binary as the `postgres` OS user when the caller
//     is root, since initdb and postgres refuse to run as root;
//   - starting `postgres` itself (not pg_ctl, which daemonises) with a
//     parent-death signal, so that a killed test run leaves no server
//     behind (the postmaster's children exit when it dies; see spawner for
//     the thread subtlety), and in its own process group, so that a Ctrl-C
//     at the terminal reaches the caller, which stops the servers in order;
//   - picking free ports and retrying when another process takes one first;
//   - creating replicas with pg_basebackup and waiting until they stream.
//
// The package keeps no package-level state: several clusters may run in one
// process. It never prints; it logs through the *slog.Logger it is given.
// Only Linux is supported (parent-death signals, /proc).
package localpg
