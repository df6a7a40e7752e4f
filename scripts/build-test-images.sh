#!/usr/bin/env bash
# Build the test images offline (no registry is reachable): a static busybox root imported with
# `docker import`, and a minimal Debian root from debootstrap. Images already present are kept.
# busybox and debootstrap come from scripts/install-programs.sh (make programs).
set -euo pipefail

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have_image portcullis-test/busybox:1; then
  root=$(mktemp -d)
  chmod 755 "$root"  # mktemp makes it 0700, which would lock non-root users out of /
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - portcullis-test/busybox:1 >/dev/null
  rm -rf "$root"
  echo "test-images: built portcullis-test/busybox:1" >&2
fi

if ! have_image portcullis-test/debian:bookworm; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d)
  chmod 755 "$root"  # mktemp makes it 0700, which would lock non-root users out of /
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/portcullis-debootstrap.log 2>&1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - portcullis-test/debian:bookworm >/dev/null
  rm -rf "$root"
  echo "test-images: built portcullis-test/debian:bookworm" >&2
fi

# Image-analysis test images (tests/images/<name>/Dockerfile), built FROM the two roots above with the classic builder.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for recipe in "$here"/tests/images/*/Dockerfile; do
  name=$(basename "$(dirname "$recipe")")
  if ! have_image "portcullis-test/$name:1"; then
    DOCKER_BUILDKIT=0 docker build -q -t "portcullis-test/$name:1" "$(dirname "$recipe")" >/dev/null
    echo "test-images: built portcullis-test/$name:1" >&2
  fi
done
bash "$(dirname "$0")/build-python-test-image.sh"
bash "$(dirname "$0")/build-postgres-test-image.sh"
bash "$(dirname "$0")/build-vulnlab-image.sh"
