// Package router executes client sessions against backend servers: it owns
// the server-connection pools, transaction and session pooling, the state a
// client expects to survive pooling (settings, prepared statements), cancel
// mapping and, as the planner grows, the execution of plans over shards.
//
// One goroutine owns a client's whole cycle (read client, route, write server,
// read server, write client); there are no per-query channel hand-offs. Frames
// are forwarded whole and decoded only where the proxy must look inside.
package router
