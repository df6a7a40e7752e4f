#!/usr/bin/env bash
# Podman, for the test that audits its Docker-compatible API socket. Idempotent; skipped off Debian/root.
set -euo pipefail
command -v podman >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-podman: not root on Debian/Ubuntu; the Podman test will be skipped" >&2
  exit 0
fi
echo "install-podman: installing podman" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
