// Package keyspace holds the integration test of package keyspace against
// real PostgreSQL 15: the Go hash functions must return exactly what the
// server's hashint8extended, hashint4extended, hashint2extended,
// hashtextextended and uuid_hash_extended return, for many random and edge
// values, and a range must select in SQL the rows it contains in Go. The
// tests live in keyspace_test; this file only names the package.
package keyspace
