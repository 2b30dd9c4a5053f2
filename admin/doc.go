// Package admin is the HTTP admin API a node serves on http_listen, next to
// /metrics, /healthz and /readyz, and a Go client for it (DESIGN.md section
// 7). `shardproxy admin` is a thin command over the client.
//
// Every endpoint lives under /admin/v1/ and requires
// "Authorization: Bearer <admin_token>"; a missing or wrong token is a 401.
// Answers and errors are JSON; an error is {"error": "...", "code": "..."}.
//
//	GET  /admin/v1/status  every node: role, reachable, map version (asks each node's /local)
//	GET  /admin/v1/local   this node: role, leader, map version, applied index
//	GET  /admin/v1/shards  shards in this node's map, with how many ranges each owns
//	GET  /admin/v1/tables  sharded and reference tables in this node's map
//	GET  /admin/v1/ranges  ranges in this node's map: lo, hi, owner
//	POST /admin/v1/split   {"at": "N"} or {"range_lo": "LO"}; answers the new map version
//
// Keyspace positions are decimal strings (int64s do not survive JSON in
// most languages). Reads answer from the receiving node's own map, which
// may trail the leader's by a moment. A write may go to any node: a
// follower forwards it once to the leader and answers after it has applied
// the new map itself, so a following read on the same node sees the write.
//
// The package depends on the rest of the node only through Cluster.
package admin
