"""Declared licences as SPDX expressions, and whether an expression is acceptable under a deny list.

Package managers spell licences many ways: Debian copyright files use DEP-5 short names (`GPL-2+`, `Expat`,
`BSD-3-clause`), Python metadata free text or trove classifiers, npm and apk SPDX-like strings, rpm Fedora's
short names. `to_spdx` turns one such declaration into an SPDX expression with the `license-expression` library:
a name it knows becomes its SPDX id, a known alias its SPDX id, anything else `LicenseRef-<name>` (still valid
SPDX, and still matchable by a deny pattern). A declaration that is prose (a pasted licence text) gives nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from functools import cache

from license_expression import (
    ExpressionError,
    LicenseExpression,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)

UNKNOWN = "unknown"  # what a package carries when no declaration gave an expression

# Names the SPDX list does not know under these spellings: DEP-5 short names, Fedora/rpm short names, and the
# words Python and npm metadata commonly use. Keys are lower case.
_ALIASES = {
    "expat": "MIT",
    "mit license": "MIT",
    "mit/x11": "MIT",
    "x11": "X11",
    "gpl": "GPL-1.0-or-later",
    "gpl+": "GPL-1.0-or-later",
    "lgpl": "LGPL-2.0-or-later",
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "lgplv2": "LGPL-2.0-only",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv2.1": "LGPL-2.1-only",
    "lgplv2.1+": "LGPL-2.1-or-later",
    "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later",
    "asl 2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "the apache software license, version 2.0": "Apache-2.0",
    "the mit license": "MIT",
    "eclipse public license 2.0": "EPL-2.0",
    "eclipse public license - v 2.0": "EPL-2.0",
    "eclipse public license 1.0": "EPL-1.0",
    "eclipse public license - v 1.0": "EPL-1.0",
    "epl 2.0": "EPL-2.0",
    "mpl-2": "MPL-2.0",
    "mpl 2.0": "MPL-2.0",
    "mplv2.0": "MPL-2.0",
    "psf": "PSF-2.0",
    "psfl": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "public-domain": "LicenseRef-public-domain",
    "public domain": "LicenseRef-public-domain",
    "isc license": "ISC",
    "zlib/libpng": "Zlib",
    "artistic": "Artistic-1.0-Perl",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
}
# DEP-5 and rpm write GPL-family versions without the ".0": GPL-2, GPL-2+, LGPL-2.1+, AGPL-3
_GNU_SHORT = re.compile(r"^(A?GPL|LGPL|GFDL)-?v?(\d)(?:\.(\d))?(\+|-only|-or-later)?$", re.IGNORECASE)
# Trove classifiers: the last segment names the licence
_CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0",
    "BSD License": "BSD-3-Clause",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "Academic Free License (AFL)": "AFL-3.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
}
_OPERATOR = re.compile(r"\s*,?\s+(and|or|with)\s+|\s*,\s*|\s*([()])\s*", re.IGNORECASE)
_MAX_DECLARATION = 200  # longer than this is a pasted licence text, not a name


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def _spdx_name(name: str) -> str:
    """One licence name as an SPDX id (known, aliased or GNU short form), else LicenseRef-<name>."""
    alias = _ALIASES.get(name.lower())
    if alias:
        return alias
    gnu = _GNU_SHORT.match(name)
    if gnu:
        family, major, minor, suffix = gnu.groups()
        family = family.upper()
        minor = minor or "0"
        tail = "-or-later" if suffix in ("+", "-or-later") else "-only"
        return f"{family}-{major}.{minor}{tail}"
    for candidate in (name, f"{name}.0"):  # DEP-5 also drops the ".0" outside the GNU family: Artistic-2, MPL-2
        symbol = _licensing().known_symbols_lowercase.get(candidate.lower())
        if symbol is not None:
            return str(symbol.key)
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "unnamed")


def _is_exception(rest: str) -> bool:
    name = _OPERATOR.split(rest, maxsplit=1)[0].strip()
    symbol = _licensing().known_symbols_lowercase.get(name.lower())
    return symbol is not None and bool(getattr(symbol, "is_exception", False))


def to_spdx(declared: str) -> str:
    """The SPDX expression for one declaration; '' when it names no licence (empty, prose, or unparsable)."""
    text = declared.strip()
    if not text or len(text) > _MAX_DECLARATION or "\n" in text or text.upper() in ("UNKNOWN", "NONE", "NOASSERTION"):
        return ""
    text = re.sub(r"_(or|and)_", r" \1 ", text)  # Debian's `LGPLv3+_or_GPLv2+` names an alternative
    whole = _ALIASES.get(text.lower())
    if whole:
        return whole
    parts: list[str] = []
    position = 0
    for found in _OPERATOR.finditer(text):
        name = text[position : found.start()].strip()
        if name:
            parts.append(_spdx_name(name))
        if found.group(1):
            parts.append(found.group(1).upper())
            if parts[-1] == "WITH" and not _is_exception(text[found.end() :]):
                parts[-1] = "AND"  # SPDX allows only listed exceptions after WITH; keep the other as its own ref
        elif found.group(2):
            parts.append(found.group(2))
        elif parts and parts[-1] not in ("AND", "OR", "WITH", "("):
            parts.append("AND")  # a bare comma joins licences that each cover part of the package
        position = found.end()
    tail = text[position:].strip()
    if tail:
        parts.append(_spdx_name(tail))
    return combine([" ".join(parts)])


def combine(expressions: Iterable[str]) -> str:
    """Several expressions that all apply (each covers part of a package), ANDed and deduplicated; '' for none."""
    wanted = [e for e in dict.fromkeys(expressions) if e]
    if not wanted:
        return ""
    joined = " AND ".join(f"({e})" if len(wanted) > 1 else e for e in wanted)
    try:
        parsed = _licensing().parse(joined, validate=False, simple=False)
    except ExpressionError:
        return ""
    return "" if parsed is None else str(_licensing().dedup(parsed).render())


def from_classifiers(classifiers: Sequence[str]) -> str:
    """An SPDX expression from `License :: ...` trove classifiers (several are alternatives the author offers)."""
    names = []
    for classifier in classifiers:
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] == "License" and len(parts) > 1:
            spdx = _CLASSIFIERS.get(parts[-1])
            if spdx:
                names.append(spdx)
    return " OR ".join(dict.fromkeys(names)) if len(names) > 1 else (names[0] if names else "")


def _allowed(node: LicenseExpression, deny: Sequence[str]) -> bool:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _allowed(node.license_symbol, deny)
    if isinstance(node, LicenseSymbol):
        key = str(node.key).lower()
        return not any(fnmatchcase(key, pattern.lower()) for pattern in deny)
    operands = [_allowed(arg, deny) for arg in node.args]
    return any(operands) if node.operator.strip() == "OR" else all(operands)


def denied(expression: str, deny: Sequence[str]) -> bool:
    """Whether no choice the expression offers avoids every denied licence (SPDX ids or glob patterns such as
    `GPL-3.0*`). `MIT OR GPL-3.0-only` is acceptable with GPL-3.0-only denied; `MIT AND GPL-3.0-only` is not."""
    if not expression or expression == UNKNOWN or not deny:
        return False
    try:
        parsed = _licensing().parse(expression, validate=False)
    except ExpressionError:
        return False
    return parsed is not None and not _allowed(parsed, deny)
