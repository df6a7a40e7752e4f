#!/usr/bin/env bash
# The "vulnlab" test images of the vulnerability work (see ../shared/vulndata/README.md, image-inventory):
#   portcullis-test/vulnlab:bookworm  debootstrap minbase bookworm (main suite only) with openssl, curl, libxml2,
#                                     python3, python3-pip, ca-certificates, plus seven old Python packages in
#                                     /usr/local/lib/python3.11/dist-packages; one layer (docker import)
#   portcullis-test/vulnlab:layered   FROM the above, classic builder: layer 2 an npm app in /opt/app (lodash 4.17.15,
#                                     minimist 1.2.5), layer 3 the expat and sqlite3 .debs in /tmp/debs, layer 4
#                                     `dpkg -i` of them and removal of /tmp/debs (whiteouts)
# Containers reach no registry, so everything is fetched on the host: the apt mirror (debootstrap, apt-get download),
# PyPI (pip download) and the npm registry (npm install). Idempotent: an image already present is kept.
set -euo pipefail

base=portcullis-test/vulnlab:bookworm
layered=portcullis-test/vulnlab:layered
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
have_image "$base" && have_image "$layered" && exit 0

work=$(mktemp -d)
chmod 755 "$work"  # mktemp makes it 0700, which would lock non-root users out of the root's /
trap 'rm -rf "$work"' EXIT

# The seven packages of image-inventory/python-dist-info.txt, old releases with known advisories.
python_packages=(requests==2.25.1 urllib3==1.26.4 idna==2.10 certifi==2020.12.5 chardet==4.0.0 Jinja2==3.1.2
  MarkupSafe==2.1.3)
# Wheels for the image's interpreter (CPython 3.11 on x86_64), whatever Python the host runs.
wheel_target=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64)

if ! have_image "$base"; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  root="$work/root"
  mkdir -m 755 "$root"
  debootstrap --variant=minbase --include=openssl,curl,libxml2,python3,python3-pip,ca-certificates \
    bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/tmp/portcullis-debootstrap-vulnlab.log 2>&1
  python3 -m pip download -q --no-deps "${wheel_target[@]}" -d "$work/wheels" "${python_packages[@]}"
  python3 -m pip install -q --root-user-action=ignore --no-deps --no-index --no-compile --find-links "$work/wheels" "${wheel_target[@]}" \
    --target "$root/usr/local/lib/python3.11/dist-packages" "${python_packages[@]}"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$root"
  echo "test-images: built $base" >&2
fi

if ! have_image "$layered"; then
  context="$work/layered"
  mkdir -p "$context/app" "$context/debs"
  chmod 777 "$context/debs"  # apt-get download fetches as the unprivileged _apt user
  (cd "$context/app" && printf '{"name": "vulnlab-app", "version": "1.0.0"}\n' >package.json &&
    npm install --ignore-scripts --no-audit --no-fund --loglevel=error lodash@4.17.15 minimist@1.2.5 >/dev/null)
  # The .debs must match the libraries already in the image (main suite, no security updates), not the host's
  # newest candidate: ask the image for its libexpat1 / libsqlite3-0 versions and download exactly those.
  installed=$(docker run --rm --label portcullis.test=1 --network none "$base" \
    dpkg-query -W -f '${Package} ${Version}\n' libexpat1 libsqlite3-0)
  expat_version=$(awk '$1 == "libexpat1" {print $2}' <<<"$installed")
  sqlite_version=$(awk '$1 == "libsqlite3-0" {print $2}' <<<"$installed")
  (cd "$context/debs" && apt-get download -qq "expat=$expat_version" "sqlite3=$sqlite_version" >/dev/null)
  cat >"$context/Dockerfile" <<EOF
FROM $base
# layer 2: language packages (npm) with known CVEs
COPY app /opt/app
# layer 3: .deb files (removed again in layer 4 -> whiteouts)
COPY debs /tmp/debs
# layer 4: OS packages installed from main (no security updates)
RUN dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs
CMD ["/bin/bash"]
EOF
  DOCKER_BUILDKIT=0 docker build -q --rm --force-rm -t "$layered" "$context" >/dev/null
  echo "test-images: built $layered" >&2
fi
