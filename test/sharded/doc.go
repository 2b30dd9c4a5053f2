// Package sharded holds the differential suite for sharded routing, the
// acceptance test of the routing issue: one PostgreSQL server (direct)
// and a proxy in front of three shards get the same schema and rows, and
// every query of a corpus, every DML step and every bad input must give
// the same answer on both (or, for a shape the proxy cannot answer
// exactly, a 0A000 refusal, within a budget). It also checks where the
// proxy put each row: on the shard that owns the key's hash in the map.
//
// A comparison against a plain database is only as good as the corpus and
// the comparison themselves, so SHARDED_SELFCHECK=1 runs everything against
// a second plain server instead of the proxy, loaded in another row order:
// that run must pass completely. See README.md.
//
// The package has no code outside its tests.
package sharded
