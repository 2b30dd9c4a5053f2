// Package drivers holds integration tests that run real non-Go PostgreSQL
// drivers through shardproxy, in transaction and session pooling: Python's
// psycopg2 and SQLAlchemy (Debian's python3 and packages) and Node.js's
// node-postgres (pinned in node/package-lock.json). Each driver runs a
// script of this directory that prints a JSON summary; the tests in
// drivers_test check it and the database state. A missing interpreter,
// module or npm package fails the tests, naming what to install
// (scripts/deps.sh test installs all of it).
package drivers
