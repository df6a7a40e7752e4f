#!/bin/sh
# Entry point of portcullis-test/postgres:15 (scripts/build-postgres-test-image.sh), the offline stand-in for the
# official postgres image in the Swarm test: it honours the same variables the stack gives that image
# (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE), so deploy/swarm/stack.yaml runs unchanged on either.
set -eu
data=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
bin=/usr/lib/postgresql/15/bin
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
chmod 0700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp)
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then cat "$POSTGRES_PASSWORD_FILE" >"$pwfile"; else printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD_FILE}" >"$pwfile"; fi
  chown postgres "$pwfile"
  as_postgres "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$database" != postgres ]; then as_postgres "$bin/createdb" -h /run/postgresql -U "$user" "$database"; fi
  as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" \
  -c listen_addresses="${POSTGRES_LISTEN:-*}" -c port="${POSTGRES_PORT:-5432}" -c unix_socket_directories=/run/postgresql
