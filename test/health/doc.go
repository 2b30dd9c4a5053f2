// Package health holds the integration tests of package health against
// real PostgreSQL 15 streaming replication: a Monitor over one shard with
// one replica must see the replica eligible, lagging once its replay is
// paused while the primary writes, eligible again after it resumes and
// catches up, down within one poll of being killed, and promoted (on the
// next timeline, reported once) after pg_promote(). Fakes cannot tell
// whether the probe's functions behave so on a real standby; these tests
// can. The tests live in health_test; this file only names the package.
package health
