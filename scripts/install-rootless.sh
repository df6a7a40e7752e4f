#!/usr/bin/env bash
# What rootless Docker needs (rootlesskit, slirp4netns, newuidmap), for the test that audits a rootless
# engine. Idempotent; skipped off Debian/root (the test then skips with the reason).
set -euo pipefail
if command -v rootlesskit >/dev/null 2>&1 && command -v slirp4netns >/dev/null 2>&1 && command -v newuidmap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-rootless: not root on Debian/Ubuntu; the rootless test will be skipped" >&2
  exit 0
fi
echo "install-rootless: installing rootlesskit, slirp4netns and uidmap" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rootlesskit slirp4netns uidmap >/dev/null
