"""SPDX 2.3 JSON SBOM, written directly (the format is small): the document describes the image, the image contains
every package. Each package carries its purl as a PACKAGE-MANAGER external reference and, in `sourceInfo`, the file
that proved it and the layer that introduced it.

Nothing is asserted that inventory did not prove: `licenseDeclared` is the package's declared licence expression
(NOASSERTION when unknown); download locations and concluded licences are NOASSERTION.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from portcullis import __version__
from portcullis.model.licences import UNKNOWN
from portcullis.model.vuln import OsRelease, Package

SPDX_VERSION = "SPDX-2.3"
DATA_LICENSE = "CC0-1.0"  # required by the specification for the document's own metadata
DOCUMENT_ID = "SPDXRef-DOCUMENT"
NAMESPACE_BASE = "https://portcullis.invalid/spdx/"  # unique per document: base + subject + uuid
NOASSERTION = "NOASSERTION"


def spdx_id(kind: str, n: int, name: str) -> str:
    """SPDXRef-<kind>-<n>-<name>: only letters, digits, '.' and '-' are allowed after the prefix."""
    return f"SPDXRef-{kind}-{n}-" + re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-")[:60]


def _source_info(package: Package) -> str:
    parts = []
    if package.location:
        parts.append(f"proved by {package.location}")
    if package.layer is not None:
        layer = package.layer
        made_by = f" ({layer.created_by})" if layer.created_by else ""
        parts.append(f"introduced in layer {layer.index} {layer.diff_id}{made_by}")
    if package.source_name:
        parts.append(f"built from source package {package.source_name} {package.source_version or package.version}")
    return "; ".join(parts)


_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


def extracted_licences(packages: Sequence[Package]) -> list[dict[str, str]]:
    """SPDX requires every LicenseRef- an expression uses to be declared: a name the SPDX list does not hold."""
    refs = sorted({ref for p in packages if p.license != UNKNOWN for ref in _LICENSE_REF.findall(p.license)})
    return [
        {
            "licenseId": ref,
            "name": ref.removeprefix("LicenseRef-"),
            "extractedText": f"A licence declared as '{ref.removeprefix('LicenseRef-')}' by the package's metadata; "
            "its text is in the package's own copyright or licence files.",
        }
        for ref in refs
    ]


def package_entry(package: Package, element_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": package.name,
        "SPDXID": element_id,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION if package.license == UNKNOWN else package.license,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl}
        ],
    }
    info = _source_info(package)
    if info:
        entry["sourceInfo"] = info
    return entry


def spdx_document(
    packages: Sequence[Package],
    *,
    subject: str,
    os_release: OsRelease | None = None,
    created: datetime | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The SPDX 2.3 document as a JSON-ready dict."""
    moment = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    image_id = spdx_id("Image", 0, subject)
    image: dict[str, Any] = {
        "name": subject,
        "SPDXID": image_id,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
    }
    entries = [image]
    relationships = [
        {"spdxElementId": DOCUMENT_ID, "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id},
    ]
    if os_release is not None:
        os_id = spdx_id("OperatingSystem", 0, os_release.id)
        entries.append(
            {
                "name": os_release.id,
                "SPDXID": os_id,
                "versionInfo": os_release.version_id or NOASSERTION,
                "downloadLocation": NOASSERTION,
                "filesAnalyzed": False,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
            }
        )
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id})
    for n, package in enumerate(packages, 1):
        element_id = spdx_id("Package", n, package.name)
        entries.append(package_entry(package, element_id))
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": element_id}
        )
    safe_subject = re.sub(r"[^A-Za-z0-9._-]+", "-", subject).strip("-")
    extracted = extracted_licences(packages)
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": DATA_LICENSE,
        "SPDXID": DOCUMENT_ID,
        "name": subject,
        "documentNamespace": namespace or f"{NAMESPACE_BASE}{safe_subject}-{uuid4()}",
        "creationInfo": {
            "created": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": [f"Tool: portcullis-{__version__}"],
        },
        "packages": entries,
        "relationships": relationships,
        **({"hasExtractedLicensingInfos": extracted} if extracted else {}),
    }


def render_spdx(
    packages: Sequence[Package],
    *,
    subject: str,
    os_release: OsRelease | None = None,
    created: datetime | None = None,
    namespace: str | None = None,
) -> str:
    document = spdx_document(packages, subject=subject, os_release=os_release, created=created, namespace=namespace)
    return json.dumps(document, indent=2) + "\n"
