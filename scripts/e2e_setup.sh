#!/usr/bin/env bash
# Browser-test prerequisites: Debian's chromium at /usr/bin/chromium (never a Playwright browser download).
# Idempotent and quiet; CI calls it before the tests. Needs root (or sudo) for apt-get.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "e2e_setup: /usr/bin/chromium is missing and this is not root (no sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "e2e_setup: apt-get ran but /usr/bin/chromium is still missing" >&2; exit 1; }
