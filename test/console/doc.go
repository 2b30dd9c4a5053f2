// Package console holds integration tests of the admin SQL console: psql
// and pgx connect to a real node's database "shardproxy" as an admin user
// and run every SHOW command against shards started by the project's
// harness; a non-admin user is refused. The tests live in console_test;
// this file only names the package.
package console
