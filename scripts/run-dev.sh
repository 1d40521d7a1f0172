#!/bin/sh
# Run bxd on its embedded default: loopback, the development settings.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/firmware/bxd" "$@"
