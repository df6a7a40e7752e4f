"""The vulnerability model: installed packages, the OS release they belong to, and what matching concluded."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from portcullis.model.layers import LayerRef
from portcullis.model.licences import UNKNOWN

# Every vulnerability finding carries one of these two rule ids; the advisory id is in its evidence.
VULN_RULE_ID = "DKR-VULN"
VULN_UNDECIDED_RULE_ID = "DKR-VULN-UNDECIDED"  # could not be matched: version does not parse, release unknown


class Ecosystem(StrEnum):
    """Where a package comes from; also the namespace advisories are keyed by in the database."""

    DEBIAN = "debian"
    UBUNTU = "ubuntu"
    ALPINE = "alpine"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GO = "go"
    MAVEN = "maven"
    RUBYGEMS = "rubygems"
    CARGO = "crates.io"


class Package(BaseModel):
    """One installed package, as an inventory parser proved it."""

    model_config = ConfigDict(frozen=True)

    ecosystem: Ecosystem
    name: str
    version: str
    purl: str
    arch: str = ""
    source_name: str = Field("", description="dpkg Source: / apk origin; empty when it equals the name")
    source_version: str = Field("", description="set when the source version differs from the binary version")
    location: str = Field("", description="the file that proved the package")
    layer: LayerRef | None = Field(None, description="the layer where this name+version first appeared")
    license: str = Field(UNKNOWN, description="the declared licence as an SPDX expression, or 'unknown'")

    @property
    def match_name(self) -> str:
        """OS advisories are written against the source package; language ones against the package itself."""
        return self.source_name or self.name

    @property
    def match_version(self) -> str:
        return self.source_version or self.version


class OsRelease(BaseModel):
    """The distribution an image is built on, from /etc/os-release."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="os-release ID: debian, ubuntu, alpine, ...")
    version_id: str = ""
    codename: str = Field("", description="VERSION_CODENAME; what the Debian tracker keys releases by")

    @property
    def alpine_branch(self) -> str:
        """secdb and OSV name Alpine releases by branch: 3.19.1 -> v3.19."""
        parts = self.version_id.split(".")
        return f"v{parts[0]}.{parts[1]}" if len(parts) >= 2 else self.version_id


class FixState(StrEnum):
    """The normalised fix state shown beside the vendor's own words."""

    FIXED = "fixed"  # a fixed version exists for this release; the installed one is older
    NOT_FIXED = "not_fixed"  # affected; no fix in this release yet
    WONT_FIX = "will_not_fix"  # affected; the vendor decided not to fix it in this release (no-dsa, ignored, EOL)
    NOT_AFFECTED = "not_affected"
    UNDETERMINED = "undetermined"  # the vendor has not decided whether this release is affected


class VendorStatus(BaseModel):
    """The vendor's own words for one advisory in one release, kept verbatim."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="debian-tracker, osv, alpine-secdb")
    release: str = ""
    status: str = Field("", description="tracker status (resolved/open/undetermined), OSV range kind, secdb 'fixed'")
    urgency: str = ""
    nodsa: str = Field("", description="the tracker's no-dsa text, when any")
    nodsa_reason: str = Field("", description="'' for no-dsa, else postponed / ignored")


class Match(BaseModel):
    """One advisory that applies to one installed package."""

    advisory_id: str
    aliases: list[str] = Field(default_factory=list)
    summary: str = ""
    package: Package
    fix_state: FixState
    fixed_version: str | None = None
    vendor: VendorStatus
    vendor_severity: str = Field("", description="the vendor's severity word (tracker urgency, GHSA severity)")
    cvss: list[str] = Field(default_factory=list, description="CVSS vectors published with the advisory")
