// Package clients holds integration tests that drive shardproxy with real
// PostgreSQL clients (pgx in every query mode, psql, COPY, cancel requests,
// LISTEN/NOTIFY, TLS, authentication, client limits and malformed input)
// against real PostgreSQL servers started by the project's harness. The
// tests live in clients_test; this file only names the package.
package clients
