// Package testenv starts what integration tests run against: real local
// PostgreSQL shards (localpg), shardproxy nodes in the test process, and the
// shardproxy binary as a child process (`shardproxy serve`).
package testenv
