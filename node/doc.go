// Package node assembles one shardproxy node from its configuration: the
// client listener (wire), the router and its pools, and the HTTP endpoint
// for health and metrics. cmd/shardproxy only parses flags and calls it;
// tests start several nodes in one process through it.
package node
