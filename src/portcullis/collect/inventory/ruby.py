"""Installed Ruby gems: `specifications/<name>-<version>.gemspec`, the Ruby files RubyGems writes when it installs a
gem (also what Debian's ruby-* packages ship under /usr/share/rubygems-integration/*/specifications).

The files are Ruby code, never run: the `name` and `version` assignments are read as literals, the way RubyGems
itself writes them (`s.name = "rack".freeze`, `s.version = "2.2.22"`).
"""

from __future__ import annotations

import re

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.vuln import Ecosystem, Package

_ASSIGNMENT = r"""^\s*\w+\.{field}\s*=\s*(?:Gem::Version\.new\(\s*)?(["'])(?P<value>[^"']+)\1"""
_NAME = re.compile(_ASSIGNMENT.format(field="name"), re.MULTILINE)
_VERSION = re.compile(_ASSIGNMENT.format(field="version"), re.MULTILINE)
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
    return Inventory([Package(ecosystem=Ecosystem.RUBYGEMS, name=gem, version=release, purl=purl, location=location)])
