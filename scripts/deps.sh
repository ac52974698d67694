#!/usr/bin/env bash
# Installs the Debian 12 packages aiod needs to build and test, if missing.
# Uses sudo when not run as root. Usage: scripts/deps.sh [build|test]
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
            libsystemd-dev libjansson-dev libsqlite3-dev libcmocka-dev go-md2man
            libcurl4-openssl-dev libhiredis-dev)
test_pkgs=(python3 clang libclang-rt-14-dev libfuzzer-14-dev clang-format systemd valgrind
           debootstrap systemd-container dpkg-dev fakeroot file lintian man-db
           python3-protobuf protobuf-compiler bash-completion sqlite3 openssl
           nghttp2-server redis-server redis-tools iproute2 locales)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
