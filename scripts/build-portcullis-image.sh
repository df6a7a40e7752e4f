#!/usr/bin/env bash
# Build the Portcullis container image (Dockerfile) offline and idempotently: the runtime wheels
# (requirements.lock, exact pins, cp311 for the image's python) and the project's own wheel are
# prepared on the host into build/image/wheels, the only build context; `docker build` downloads nothing.
# The image carries a label with the hash of its inputs (base image, Dockerfile, lock, pyproject, src/):
# when it matches, nothing is rebuilt.
#
#   PORTCULLIS_IMAGE       the tag to build (default portcullis:local)
#   PORTCULLIS_IMAGE_BASE  a Debian bookworm root with python3 3.11 (default portcullis-test/python:bookworm,
#                          built offline by scripts/build-python-test-image.sh; python:3.11-slim-bookworm
#                          where a registry is reachable)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
image=${PORTCULLIS_IMAGE:-portcullis:local}
base=${PORTCULLIS_IMAGE_BASE:-portcullis-test/python:bookworm}
python=${PYTHON_FOR_WHEELS:-$here/.venv/bin/python}

if ! base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null); then
  echo "build-portcullis-image: base image $base is missing (make test-images builds portcullis-test/python:bookworm)" >&2
  exit 1
fi
inputs=$(
  {
    echo "$base_id"
    cat Dockerfile .dockerignore requirements.lock pyproject.toml README.md
    find src -type f -name '*.py' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | awk '{print $1}'
)
current=$(docker image inspect -f '{{index .Config.Labels "portcullis.inputs"}}' "$image" 2>/dev/null || true)
wheels=build/image/wheels
# A fresh clone beside an up-to-date image still needs its own wheels: the offline-install test reads them.
if [ "$current" = "$inputs" ] && [ -n "$(find "$wheels" -maxdepth 1 -name 'portcullis-*.whl' 2>/dev/null)" ]; then
  exit 0
fi

if [ ! -x "$python" ]; then
  echo "build-portcullis-image: no $python to prepare the wheels with (make setup creates .venv)" >&2
  exit 1
fi
started=$SECONDS
rm -rf "$wheels"
mkdir -p "$wheels"
arch=$(uname -m)
platforms=(--platform "manylinux1_$arch" --platform "manylinux2010_$arch" --platform "manylinux2014_$arch")
for minor in $(seq 5 36); do  # bookworm's glibc is 2.36
  platforms+=(--platform "manylinux_2_${minor}_$arch")
done
pip_version=$("$python" -m pip --version | awk '{print $2}')
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
  -d "$wheels" -r requirements.lock "pip==$pip_version"
"$python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$wheels" .
cp requirements.lock "$wheels/requirements.lock"

if [ "$current" = "$inputs" ]; then
  echo "image: $image is up to date; wheels prepared in $((SECONDS - started)) s" >&2
  exit 0
fi
# The classic builder keeps the install stage as an untagged image and the image this build replaces loses its tag:
# the stage is built under a tag of its own and both are removed, so rebuilds do not pile up on the engine.
previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
stage="portcullis-build-stage:install-$$"
trap 'docker image rm "$stage" >/dev/null 2>&1 || true' EXIT
DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$base" --target install -t "$stage" . >/dev/null
DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$base" --label "portcullis.inputs=$inputs" -t "$image" . >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true  # still used by a container, or tagged elsewhere: kept
fi
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "image: built $image FROM $base in $((SECONDS - started)) s ($((size / 1000000)) MB)" >&2
