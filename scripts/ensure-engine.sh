#!/usr/bin/env bash
# Make sure a Docker engine answers. If none does and this is Debian/Ubuntu as root,
# install docker.io and start dockerd in the background; otherwise explain how to point at one.
set -euo pipefail

engine_answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "portcullis: DOCKER_HOST=${DOCKER_HOST} does not answer; start that engine or unset DOCKER_HOST" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "portcullis: no Docker engine is reachable; start one, or set DOCKER_HOST (or a docker context) to point at one" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "portcullis: installing docker.io (no engine found)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "portcullis: starting dockerd in the background (log: /var/log/dockerd.log)" >&2
  # --iptables=false: never touch the host firewall; vfs works on every filesystem.
  setsid dockerd --iptables=false --storage-driver=vfs >/var/log/dockerd.log 2>&1 < /dev/null &
fi
for _ in $(seq 1 60); do
  if engine_answers; then exit 0; fi
  sleep 1
done
echo "portcullis: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
