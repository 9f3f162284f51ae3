#!/usr/bin/env bash
# Installs the system libraries triage builds against, only if they are missing.
# Debian/Ubuntu: libopenblas-dev (FP32 matrix products; the binary loads it when an FP32 model loads),
# libcurl4-openssl-dev (cloud tier; loaded on the first cloud request),
# libsqlite3-dev (decision record), pkg-config. With --test, also what only the tests use:
# qemu-user, which runs the binary on emulated CPUs without AVX-512 or AVX; postgresql, the
# fleet database the fleet tests start a throwaway cluster of (scripts/with-postgres.sh);
# chromium, the headless browser that renders the HTML report in its test.
set -euo pipefail
packages=(libopenblas-dev libcurl4-openssl-dev libsqlite3-dev pkg-config)
[ "${1:-}" = "--test" ] && packages+=(qemu-user postgresql chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1
    fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update >/dev/null
    $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}
