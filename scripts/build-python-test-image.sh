#!/usr/bin/env bash
# A Debian root with python3 (debootstrap, offline from the apt mirror): the `portcullis inside`
# self-assessment and its zipapp run in it. Idempotent.
set -euo pipefail
image=portcullis-test/python:bookworm
docker image inspect "$image" >/dev/null 2>&1 && exit 0
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
root=$(mktemp -d)
chmod 755 "$root"  # mktemp makes it 0700, which would lock non-root users out of /
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3 bookworm "$root" "${mirror:-http://deb.debian.org/debian}" \
  >/tmp/portcullis-debootstrap-python.log 2>&1
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/usr/bin/python3"]' - "$image" >/dev/null
echo "test-images: built $image" >&2
