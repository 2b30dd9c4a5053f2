#!/usr/bin/env bash
# Runs the proxy benchmark (`make bench`): direct vs PgBouncer vs shardproxy
# over one and over two shards under pgbench, checked against the issue's
# targets, and the memory of 10,000 idle clients; results printed and kept
# under bench/results/. The work is done by bench/cmd/pgbench-compare, built
# here and exec'd so that signals reach it directly; it stops every process
# it started, also on Ctrl-C.
#
# Usage: scripts/bench.sh [pgbench-compare flags]   (see -h)
#   e.g. scripts/bench.sh -workloads idle-clients -idle-clients 10000
# Environment: BENCH_DURATION (default 10s per run), BENCH_REPEATS (default 5).
# Expects bin/shardproxy (make build) and pgbouncer (scripts/deps.sh bench).
# The idle clients need an open-file hard limit (ulimit -Hn) above their
# count; pgbench-compare raises the soft limit itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/shardproxy ] || go build -o bin/shardproxy ./cmd/shardproxy
go build -o bin/pgbench-compare ./bench/cmd/pgbench-compare
exec bin/pgbench-compare "$@"
