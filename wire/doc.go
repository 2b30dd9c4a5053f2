// Package wire speaks the PostgreSQL frontend/backend protocol to clients:
// startup, TLS, authentication, cancel requests, framing with a maximum
// message size. It knows nothing about shards or backends: after a client is
// authenticated it hands the connection to a Handler.
package wire
