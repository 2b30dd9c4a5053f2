// Package mergecheck holds the integration test of package merge against a
// real PostgreSQL 15: what the proxy computes from the shards' partial
// results (avg's numeric scale, sums, float and numeric text and binary
// output, merged ORDER BY, GROUP BY and DISTINCT) must be byte for byte
// what one server answers over all the rows. Shards are simulated by
// running the partial query over parts of the data on one server. The
// tests live in mergecheck_test; this file only names the package.
package mergecheck
