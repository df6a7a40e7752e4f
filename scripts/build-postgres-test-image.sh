#!/usr/bin/env bash
# portcullis-test/postgres:15: PostgreSQL 15 from Debian's packages (debootstrap, offline from the apt mirror) with an
# entry point that takes the official image's POSTGRES_USER/POSTGRES_DB/POSTGRES_PASSWORD_FILE, for the Swarm test
# (tests/deploy/test_swarm.py), where no registry serves postgres:15. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=portcullis-test/postgres:15
docker image inspect "$image" >/dev/null 2>&1 && exit 0
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
root=$(mktemp -d)
chmod 755 "$root"
context=$(mktemp -d)
trap 'rm -rf "$root" "$context"' EXIT
debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "${mirror:-http://deb.debian.org/debian}" \
  >/tmp/portcullis-debootstrap-postgres.log 2>&1
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# the package's own cluster is not used: the entry point makes one in the data volume on first start
rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15
tar -C "$root" -c . | docker import - portcullis-test/postgres-root:15 >/dev/null
cp "$here/../tests/support/postgres_image/entrypoint.sh" "$context/entrypoint.sh"
printf '%s\n' 'FROM portcullis-test/postgres-root:15' 'COPY entrypoint.sh /usr/local/bin/entrypoint.sh' \
  'RUN chmod 0755 /usr/local/bin/entrypoint.sh' 'EXPOSE 5432' 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]' \
  >"$context/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$context" >/dev/null
docker rmi portcullis-test/postgres-root:15 >/dev/null
echo "test-images: built $image" >&2
