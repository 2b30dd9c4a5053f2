#!/usr/bin/env bash
# Installs the Debian packages shardproxy's demo, tests and benchmarks need,
# only when dpkg says they are missing, or stops naming what is missing.
# Usage: scripts/deps.sh demo|test|bench
set -euo pipefail

# postgresql-client-15 brings psql and pgbench; the driver tests
# (test/drivers) run Debian's python3 with psycopg2 and SQLAlchemy, and
# node-postgres on the machine's node and npm.
pkgs=(postgresql-15 postgresql-client-15)
case "${1:-test}" in
  demo) ;;
  test) pkgs+=(python3-psycopg2 python3-sqlalchemy) ;;
  bench) pkgs+=(pgbouncer) ;;
  *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (it brings its own npm, which
# conflicts with Debian's npm package), so the commands decide, not dpkg.
if [ "${1:-test}" = test ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if ! command -v go >/dev/null 2>&1; then
  echo "shardproxy: Go 1.26 or newer is required (go not found on PATH)" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "shardproxy: missing Debian packages: ${missing[*]} (run as root or install them: apt-get install ${missing[*]})" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
echo "shardproxy: installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; then
  $SUDO apt-get update >/dev/null
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "shardproxy: could not install: ${missing[*]}" >&2; exit 1; }
fi
