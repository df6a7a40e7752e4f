"""One severity per finding: the vendor's word first (Debian urgency, GHSA/Ubuntu severity), else the highest CVSS
base score published with the advisory, else medium, marked as assumed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]
from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

from portcullis.model.findings import Severity

_VENDOR_WORDS = {
    "unimportant": Severity.INFO,  # Debian: no security impact for Debian users
    "negligible": Severity.INFO,  # Ubuntu
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,  # GHSA
    "high": Severity.HIGH,
    "important": Severity.HIGH,  # Red Hat
    "critical": Severity.CRITICAL,
}
ASSUMED = Severity.MEDIUM  # neither the vendor nor CVSS rates it: do not let it fall under a --fail-on gate


@dataclass
class Rating:
    level: Severity
    origin: str  # vendor, cvss or assumed
    vendor: str = ""
    cvss: list[dict[str, Any]] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"level": self.level.value, "from": self.origin, "vendor": self.vendor, "cvss": self.cvss}


def cvss_score(vector: str) -> float | None:
    """The base score of a CVSS v2, v3.x or v4.0 vector; None when it does not parse."""
    try:
        if vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).scores()[0])
        return float(CVSS2(vector).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError):
        return None


def band(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW if score > 0 else Severity.INFO


def rate(vendor_word: str, vectors: list[str]) -> Rating:
    scored = [{"vector": v, "score": cvss_score(v)} for v in vectors]
    word = vendor_word.strip().rstrip("*").lower()
    if word in _VENDOR_WORDS:
        return Rating(_VENDOR_WORDS[word], "vendor", vendor_word, scored)
    scores = [float(s["score"]) for s in scored if s["score"] is not None]
    if scores:
        return Rating(band(max(scores)), "cvss", vendor_word, scored)
    return Rating(ASSUMED, "assumed", vendor_word, scored)
