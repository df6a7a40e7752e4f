#!/usr/bin/env bash
# Tools `portcullis harden seccomp|apparmor` and their tests use: strace (host-side syscall recording),
# apparmor_parser (profile validation without loading), Docker's default seccomp profile (size comparison)
# and the kernel's syscall tables (linux-libc-dev). Installs only what is missing, on Debian/Ubuntu as root.
set -euo pipefail

DEFAULT_PROFILE=/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
missing=()
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v apparmor_parser >/dev/null 2>&1 || missing+=(apparmor)
[ -f "$DEFAULT_PROFILE" ] || missing+=(golang-github-docker-docker-dev)
[ -f /usr/include/x86_64-linux-gnu/asm/unistd_64.h ] || [ -f /usr/include/asm/unistd_64.h ] || missing+=(linux-libc-dev)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "portcullis: missing ${missing[*]}; install them with your package manager (needs root)" >&2
  exit 1
fi
echo "portcullis: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
# --no-install-recommends: the docker dev package would otherwise pull in a Go toolchain.
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
