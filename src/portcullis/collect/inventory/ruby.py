"""Installed Ruby gems: `specifications/<name>-<version>.gemspec`, the Ruby files RubyGems writes when it installs a
gem (also what Debian's ruby-* packages ship under /usr/share/rubygems-integration/*/specifications).

The files are Ruby code, never run: the `name`, `version` and `licenses` assignments are read as literals, the way
RubyGems itself writes them (`s.name = "rack".freeze`, `s.version = "2.2.22"`, `s.licenses = ["MIT".freeze]`).
"""

from __future__ import annotations

import re

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.licences import UNKNOWN, combine, to_spdx
from portcullis.model.vuln import Ecosystem, Package

_ASSIGNMENT = r"""^\s*\w+\.{field}\s*=\s*(?:Gem::Version\.new\(\s*)?(["'])(?P<value>[^"']+)\1"""
_NAME = re.compile(_ASSIGNMENT.format(field="name"), re.MULTILINE)
_VERSION = re.compile(_ASSIGNMENT.format(field="version"), re.MULTILINE)
# `s.licenses = ["MIT".freeze, "Ruby".freeze]` or `s.license = "MIT"`: the gem's licences, any of which applies
_LICENSES = re.compile(r"^\s*\w+\.licenses?\s*=\s*(?P<value>\[[^\]\n]*\]|[\"'][^\"'\n]+[\"'])", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")
_SPEC_PATH = re.compile(r"(^|/)specifications/(default/)?[^/]+\.gemspec$")  # default/: gems bundled with Ruby


def is_gemspec_path(path: str) -> bool:
    """Installed gem specifications, not the .gemspec a gem's source tree carries."""
    return bool(_SPEC_PATH.search(path.lstrip("/")))


def parse_gemspec(text: str, location: str) -> Inventory:
    name, version = _NAME.search(text), _VERSION.search(text)
    if name is None or version is None:
        return Inventory(skipped=[f"{location}: no literal name/version assignment"])
    gem, release = name.group("value"), version.group("value")
    purl = PackageURL(type="gem", name=gem, version=release).to_string()
    package = Package(
        ecosystem=Ecosystem.RUBYGEMS,
        name=gem,
        version=release,
        purl=purl,
        location=location,
        license=gem_licence(text) or UNKNOWN,
    )
    return Inventory([package])


def gem_licence(text: str) -> str:
    """The SPDX expression of a gemspec's `licenses`: RubyGems lists alternatives the user may pick from."""
    assigned = _LICENSES.search(text)
    if assigned is None:
        return ""
    names = [to_spdx(quoted) for quoted in _QUOTED.findall(assigned.group("value"))]
    alternatives = [f"({n})" if " " in n else n for n in dict.fromkeys(names) if n]
    return combine([" OR ".join(alternatives)]) if alternatives else ""
