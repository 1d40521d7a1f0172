#!/bin/sh
# Install the Debian packages bx needs, when any is missing. Idempotent and
# quick when everything is there; needs root or sudo to install.
set -eu

PKGS="meson ninja-build pkg-config gcc clang clang-format clang-tidy libclang-rt-14-dev
libcmocka-dev libhwloc-dev libnuma-dev libsodium-dev liburing-dev libdnnl-dev
libsystemd-dev libjansson-dev dpdk-dev liblwip-dev python3 python3-aiohttp iproute2"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
