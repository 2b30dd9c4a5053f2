// Package pooling holds integration tests of shardproxy's server-connection
// pooling against real PostgreSQL: pgbench through a small pool, several
// clients sharing ONE server connection (settings, prepared statements,
// re-prepare, cancel races, disconnects, idle-transaction timeout), session
// pooling and graceful shutdown. The tests live in pooling_test; this file
// only names the package.
package pooling
