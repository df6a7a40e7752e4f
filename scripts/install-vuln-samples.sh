#!/usr/bin/env bash
# Real inventory samples for the vulnerability tests (tests/vuln/test_vuln_inventory_more.py), from Debian packages:
#   golang-go               a Go toolchain: the tests build a tiny dependency-free binary with embedded build info
#   libcommons-lang3-java   jars with META-INF/MANIFEST.MF and META-INF/maven/**/pom.properties in /usr/share/java
#   ruby-rack               a gem with its gemspec under /usr/share/rubygems-integration/all/specifications
#   rpm                     rpmbuild + rpm: the tests build a tiny package and install it into a real sqlite rpmdb
#   db5.3-util              db5.3_load: writes a real Berkeley DB hash file (the pre-4.16 rpmdb container) from them
# and, from PyPI into a scratch venv outside the project (the SPDX test validates with it; not a project dependency):
#   spdx-tools              pyspdxtools, the SPDX project's own validator, in ${PORTCULLIS_SPDX_VENV}
# Idempotent; does nothing when everything is present. Needs root (apt-get); tests skip with a reason when absent.
set -euo pipefail

SPDX_VENV="${PORTCULLIS_SPDX_VENV:-/tmp/portcullis-spdx-tools}"
if [ ! -x "$SPDX_VENV/bin/pyspdxtools" ]; then
    if python3 -m venv "$SPDX_VENV" && "$SPDX_VENV/bin/pip" install -q spdx-tools >/dev/null 2>&1; then
        echo "install-vuln-samples: spdx-tools installed in $SPDX_VENV" >&2
    else
        echo "install-vuln-samples: spdx-tools not installable; the SPDX validator test will be skipped" >&2
    fi
fi

wanted=(golang-go libcommons-lang3-java ruby-rack rpm db5.3-util)
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-vuln-samples: not root; the tests needing ${missing[*]} will be skipped" >&2
    exit 0
fi
echo "install-vuln-samples: installing ${missing[*]}" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
