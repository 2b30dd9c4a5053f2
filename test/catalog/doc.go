// Package catalog holds the integration test of package catalog against
// real PostgreSQL 15: Load must report exactly the columns, order, types
// and flags the server has (after dropped columns, through domains, for
// serial, identity and generated columns and quoted names), Resolve must
// pick the relation the server's own name lookup picks for the same
// search_path, and ParseSearchPath must accept exactly the settings the
// server accepts. It also times Load on a database of about 200 tables.
// The tests live in catalog_test; this file only names the package.
package catalog
