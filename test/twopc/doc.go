// Package twopc holds the integration tests of package twopc against real
// PostgreSQL 15 shards: distributed commits and their failures, crashes of
// the coordinating process at each crash point (a child process killed
// with SIGKILL from a hook), and recovery settling what each crash left
// prepared, so that nothing stays in pg_prepared_xacts. The tests live in
// twopc_test; this file only names the package.
package twopc
