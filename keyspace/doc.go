// Package keyspace computes a row's position in the keyspace and the ranges
// that divide the keyspace among shards.
//
// A position is a signed 64-bit integer, the value PostgreSQL's own extended
// hash function for the shard key's type returns with seed 0:
//
//	integer keys (int2, int4, int8)  hashint8extended(k::int8, 0)
//	text and varchar                 hashtextextended(k, 0)
//	uuid                             uuid_hash_extended(k, 0)
//
// The functions here agree with PostgreSQL bit for bit (a test compares them
// with a live server for many values). That is the point of using the
// server's functions rather than a hash of our own: the server can compute
// the same position, so moving a range, verifying a copy and cleaning up
// after a move select rows in SQL, on the shard, with a predicate such as
//
//	hashint8extended(id, 0) >= $lo and hashint8extended(id, 0) < $hi
//
// instead of streaming every row through the proxy to classify it.
//
// int2, int4 and int8 hash alike: hashint2extended(k, 0) and
// hashint4extended(k, 0) equal hashint8extended(k, 0) for every value in
// their range, so Int serves all three and a key column may be widened
// without moving rows. Text is hashed as its UTF-8 bytes, which is what
// PostgreSQL does for every deterministic collation (C, libc and
// deterministic ICU ones); a column with a nondeterministic collation hashes
// a sort key instead, and Text does not match it. char(n) (bpchar) is not
// covered: PostgreSQL strips its trailing blanks before hashing.
//
// The package is pure: no I/O, no state, no allocation.
package keyspace
