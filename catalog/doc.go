// Package catalog is the schema knowledge the planner needs and cannot get
// from the SQL text alone: for each table, its columns in order with their
// names and types, and which table an unqualified name means under a
// search_path.
//
// The planner needs it for three things (DESIGN.md section 2, "Catalog"):
//
//   - an INSERT without a column list: the i-th value goes to the i-th
//     column that is not dropped, so the shard key's position comes from
//     the column order (Table.Column returns it);
//   - a key compared with an untyped literal (id = '42'): the key column's
//     type picks the hash function (Column.BaseTypeOID sees through domains);
//   - a name such as "accounts": the search_path decides whether it means
//     app.accounts or public.accounts (Snapshot.Resolve does what
//     PostgreSQL's name lookup does).
//
// A Snapshot is immutable and versioned, like the shard map: the proxy
// builds a new one after DDL passes through it and swaps a pointer, and the
// version goes into plan cache keys. Load is the only I/O in the package:
// one query against one server, so the snapshot is consistent (a single
// statement sees one MVCC snapshot of the system catalogs) and cheap to
// refresh. Everything else is pure, has no package state, and can be built
// by hand with NewSnapshot, which is how planner tests fake a schema.
//
// What a snapshot describes: ordinary and partitioned tables, views,
// materialized views and foreign tables outside pg_catalog and
// information_schema, excluding temporary tables (they belong to one
// server session; the router pins such sessions). What it only knows by
// name: any other relation (a pg_catalog table, a sequence, an index, a
// composite type, ...) that has the same name as a described table in
// another schema, because such a relation can shadow the table in a
// search_path. Resolve reports those as not found, as it does a name that
// exists nowhere: for routing both mean "not a table we shard".
//
// Limits, each the same for every proxy node: privileges are not checked
// (PostgreSQL leaves a schema without USAGE out of the path; Resolve does
// not), and temporary tables and the implicit pg_temp schema are not seen.
package catalog
