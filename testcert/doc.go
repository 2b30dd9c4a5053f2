// Package testcert makes self-signed certificates for 127.0.0.1 and
// localhost: what the tests and the benchmark's TLS clients need, made in
// one place.
package testcert
