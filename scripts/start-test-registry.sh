#!/usr/bin/env bash
# Start two local registries (Debian's docker-registry) for the image tests, then push the test images:
#   127.0.0.1:5000  anonymous
#   127.0.0.1:5001  basic auth (htpasswd, user "portcullis", password "portcullis-test")
# Each has its own config and storage under $PORTCULLIS_REGISTRY_DIR (default /var/tmp/portcullis-registry).
# Idempotent: a registry already answering is left alone; images already pushed are pushed again (a no-op).
set -euo pipefail

base=${PORTCULLIS_REGISTRY_DIR:-/var/tmp/portcullis-registry}
mkdir -p "$base"

answers() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/v2/" -w '%{http_code}' | grep -qE '^(200|401)$'; }

start_registry() {
  local name=$1 port=$2 auth=$3 dir="$base/$1"
  mkdir -p "$dir/storage"
  if answers "$port"; then return 0; fi
  {
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/storage"
    printf '  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$port"
    printf '%s' "$auth"
  } > "$dir/config.yml"
  setsid docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 50); do answers "$port" && return 0; sleep 0.1; done
  echo "start-test-registry: $name did not answer on 127.0.0.1:$port (see $dir/registry.log)" >&2
  return 1
}

if [ ! -s "$base/auth/htpasswd" ]; then
  mkdir -p "$base/auth"
  # bcrypt through libxcrypt (python's crypt module); htpasswd from apache2-utils when present.
  if command -v htpasswd >/dev/null 2>&1; then
    htpasswd -Bbn portcullis portcullis-test > "$base/auth/htpasswd"
  else
    python3 -W ignore -c 'import crypt; print("portcullis:" + crypt.crypt("portcullis-test", crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
      > "$base/auth/htpasswd"
  fi
fi

start_registry anonymous 5000 ''
start_registry auth 5001 "$(printf 'auth:\n  htpasswd:\n    realm: portcullis-test\n    path: %s\n' "$base/auth/htpasswd")"

# Push the image-test images to the anonymous registry and one to the authenticated one.
for image in portcullis-test/busybox:1 portcullis-test/debian:bookworm portcullis-test/risky:1 portcullis-test/hardened:1; do
  docker image inspect "$image" >/dev/null 2>&1 || continue
  docker tag "$image" "127.0.0.1:5000/$image"
  docker push -q "127.0.0.1:5000/$image" >/dev/null
done
if docker image inspect portcullis-test/busybox:1 >/dev/null 2>&1; then
  echo portcullis-test | docker login -u portcullis --password-stdin 127.0.0.1:5001 >/dev/null 2>&1
  docker tag portcullis-test/busybox:1 127.0.0.1:5001/portcullis-test/busybox:1
  docker push -q 127.0.0.1:5001/portcullis-test/busybox:1 >/dev/null
  docker logout 127.0.0.1:5001 >/dev/null 2>&1 || true
fi
echo "start-test-registry: registries on 127.0.0.1:5000 (anonymous) and 127.0.0.1:5001 (basic auth)" >&2
