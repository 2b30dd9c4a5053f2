// Package pgerror holds the SQLSTATE codes and the client-facing error type
// shared by every layer of shardproxy.
//
// Errors are built as ordinary Go errors (wrapped with %w) anywhere in the
// proxy and flattened into a PostgreSQL ErrorResponse only at the wire
// boundary. Codes are a typed value rather than bare strings so a typo is a
// compile error, and the few codes shardproxy invents live in codes.go inside
// standard classes, so clients that only understand the class still do the
// right thing.
package pgerror
