// Package testenv starts what integration tests run against: real local
// PostgreSQL shards (localpg) and shardproxy nodes in the test process.
package testenv
