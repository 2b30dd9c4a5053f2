// Package protocol holds the differential protocol suite: it sends the same
// raw frontend message sequences to PostgreSQL directly and through a
// shardproxy node, in session and in transaction pooling, and requires the
// same backend messages back. It exists because a pooling proxy that
// rewrites statement names, pins and releases server connections and makes
// up some answers itself can drift from PostgreSQL in ways no driver-level
// test notices (a message out of order, a status byte, a statement that
// should have been skipped); comparing with the plain database, message by
// message, is what catches that (the style of Vitess' end-to-end tests and
// SPQR's raw-protocol message groups).
//
// The package has no code outside its tests.
package protocol
