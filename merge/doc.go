// Package merge evaluates the primitives a plan puts above its Route
// (MergeSort, Sort, Aggregate, Filter, Distinct, Limit, Project) over the
// rows the shards answered, so that a scatter-gather read returns exactly
// what one PostgreSQL holding all the rows would return: same rows, same
// order, same types, same text digit for digit.
//
// Values are compared, grouped and added by type and value (1.0 and 1.00
// are one numeric, text in the C collation), read in whichever format the
// shards sent them; what the proxy computes (sums, counts, averages) is
// written in the column's format with PostgreSQL's output rules. A shape or
// type the package cannot evaluate exactly is refused with SQLSTATE 0A000
// and a hint, never answered approximately. See DESIGN.md for the
// invariants and trade-offs.
//
// The package also turns per-shard command tags into the one the client
// sees (CommandTag, SumTags). It holds no state: every call is independent.
package merge
