#!/usr/bin/env bash
# One agent token per swarm node, made by the running service, printed as `NODE TOKEN` lines for the secret the
# agents read (each takes its own node's line):
#
#   bash deploy/swarm/agent-tokens.sh fleet | docker secret create portcullis_agent_tokens -
#
# Run it where `docker` talks to a manager, on the node that runs the stack's server task (docker exec is local).
set -euo pipefail
stack=${1:?usage: agent-tokens.sh STACK}
task=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_server" | head -n 1)
if [ -z "$task" ]; then
  echo "agent-tokens: no running ${stack}_server task on this node" >&2
  exit 1
fi
for node in $(docker node ls --format '{{.Hostname}}'); do
  token=$(docker exec "$task" sh -c 'PGPASSWORD="$(cat /run/secrets/portcullis_db_password)" portcullis token add "$1" --role agent 2>/dev/null' - "$node")
  printf '%s %s\n' "$node" "$token"
done
