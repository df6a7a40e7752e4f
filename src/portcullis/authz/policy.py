"""The authz policy file: which rules deny, which only log, and who is exempt.

```yaml
deny: [CIS-5.5, CIS-5.32, CIS-5.16]     # rule ids, or id prefixes (CIS-5.1 matches CIS-5.1 and CIS-5.1.x)
log: [CIS-5.13]                         # failures are written to the plugin's log, the request passes
unknown_fields: deny                    # a body field the plugin does not model that looks dangerous: deny or log
max_body_kib: 1024                      # a request body above this is denied unread
exemptions:
  - rules: [CIS-5.32]
    image: "registry.local/portainer*"  # fnmatch pattern on Config.Image, or
    label: "ops.exempt=socket"          # a label KEY=VALUE (or just KEY) on the container
    reason: "the UI manages this engine"
```

A failing rule named in neither list is ignored. Loading checks every rule id against the rules the plugin judges,
so a typo cannot silently disable a denial.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from portcullis.authz import AuthzError
from portcullis.checks.registry import id_matches


class Exemption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[str] = Field(min_length=1)
    image: str | None = None
    label: str | None = None
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _has_subject(self) -> Exemption:
        if (self.image is None) == (self.label is None):
            raise ValueError("an exemption names exactly one of image or label")
        return self

    def covers(self, rule_id: str, image: str, labels: dict[str, str]) -> bool:
        if not any(id_matches(rule_id, pattern) for pattern in self.rules):
            return False
        if self.image is not None:
            return fnmatch.fnmatchcase(image, self.image)
        key, sep, value = (self.label or "").partition("=")
        return key in labels and (not sep or labels[key] == value)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deny: list[str] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)
    unknown_fields: Literal["deny", "log"] = "deny"
    max_body_kib: int = Field(1024, ge=1, le=64 * 1024)
    exemptions: list[Exemption] = Field(default_factory=list)

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kib * 1024

    def action(self, rule_id: str) -> Literal["deny", "log"] | None:
        """What a failure of `rule_id` does; deny wins when both lists match."""
        if any(id_matches(rule_id, p) for p in self.deny):
            return "deny"
        if any(id_matches(rule_id, p) for p in self.log):
            return "log"
        return None

    def exemption(self, rule_id: str, image: str, labels: dict[str, str]) -> Exemption | None:
        return next((e for e in self.exemptions if e.covers(rule_id, image, labels)), None)


def parse_policy(text: str, known_rules: list[str], origin: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AuthzError(f"policy {origin} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AuthzError(f"policy {origin} must be a mapping (deny:, log:, exemptions:)")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise AuthzError(f"policy {origin}: {where}: {first['msg']}") from None
    patterns = [*policy.deny, *policy.log, *(p for e in policy.exemptions for p in e.rules)]
    for pattern in patterns:
        if not any(id_matches(rule_id, pattern) for rule_id in known_rules):
            raise AuthzError(f"policy {origin}: {pattern!r} matches no rule the plugin judges")
    if not policy.deny:
        raise AuthzError(f"policy {origin} denies nothing (deny: is empty)")
    return policy


def load_policy(path: Path, known_rules: list[str]) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthzError(f"policy {path} cannot be read: {exc}") from None
    return parse_policy(text, known_rules, str(path))
