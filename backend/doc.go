// Package backend opens and frames connections to PostgreSQL servers.
//
// Logging in (TLS, SCRAM, md5, trust, error handling) is delegated to pgx's
// pgconn, which does it well; the connection is then hijacked so the router
// can forward frames whole without pgconn's decoding. The package also sends
// CancelRequests to servers.
package backend
