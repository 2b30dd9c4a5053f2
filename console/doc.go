// Package console is the admin SQL console: a client that logs in to the
// pseudo-database "shardproxy" as an admin user talks to the proxy itself,
// PgBouncer-style, instead of to a shard. It answers SHOW SHARDS, SHOW
// RANGES, SHOW TABLES, SHOW POOLS, SHOW REPLICAS, SHOW NODES, SHOW VERSION
// and SHOW HELP (DESIGN.md section 7) over the simple and the extended
// query protocol, so psql and drivers such as pgx both work.
//
// The package reads the node's state only through Source, which the node
// implements; it keeps no state between sessions and never logs.
package console
