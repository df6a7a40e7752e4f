"""Trust policies: which cosign keys are trusted for which repositories, and the signature lookups they lead to.

A policy file is YAML:

    repositories:
      - pattern: "registry.example.com/team/*"   # fnmatch over HOST/REPO (Docker Hub: docker.io/library/NAME)
        keys: [keys/team.pub]                      # PEM public keys, relative to the policy file
        signatures: registry.example.com/sigs      # optional: where cosign stored them (COSIGN_REPOSITORY)

A repository's trusted keys are those of every entry whose pattern matches it; `--verify-key` keys are trusted for
every repository. A repository no pattern matches has no trusted key, so its images cannot pass. Signatures are
looked up beside the image unless the first matching entry that names `signatures` says where.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portcullis.checks.signatures import BadKey, load_public_key
from portcullis.model.facts import Facts, ImageFacts
from portcullis.model.signatures import ImageSignatures, SignatureLookup, TrustedKey
from portcullis.pipelines.errors import UsageError
from portcullis.pipelines.files import read_bounded_text

MAX_POLICY_BYTES = 1024 * 1024
MAX_KEY_BYTES = 64 * 1024  # a PEM public key is under 1 KB (RSA-4096: 800 bytes)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1)
    keys: list[str] = Field(min_length=1)
    signatures: str | None = Field(None, min_length=1)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repositories: list[_Entry] = Field(min_length=1)


@dataclass(frozen=True)
class TrustPolicy:
    source: str  # how reports name it: the policy file, or the --verify-key files
    entries: tuple[tuple[str, tuple[TrustedKey, ...]], ...]  # (fnmatch pattern over HOST/REPO, its keys)
    stores: tuple[tuple[str, str], ...] = ()  # (pattern, HOST/REPO where signatures of matching images are stored)

    def store_for(self, repository: str) -> str:
        """Where the signatures of `repository`'s images are: '' for beside them, as cosign stores them by default."""
        return next((store for pattern, store in self.stores if fnmatchcase(repository, pattern)), "")

    def keys_for(self, repository: str) -> list[TrustedKey]:
        found: dict[str, TrustedKey] = {}
        for pattern, keys in self.entries:
            if fnmatchcase(repository, pattern):
                for key in keys:
                    found.setdefault(key.pem, key)
        return list(found.values())


def _key(path: Path, name: str) -> TrustedKey:
    pem = read_bounded_text(path, MAX_KEY_BYTES, "key")
    try:
        load_public_key(pem, name)
    except BadKey as exc:
        raise UsageError(str(exc)) from None
    return TrustedKey(name=name, pem=pem)


def load_trust_policy(policy_file: Path | None, key_files: Sequence[Path] = ()) -> TrustPolicy | None:
    """The policy the options name (None without --trust-policy and --verify-key); a file that cannot be used raises
    UsageError with one line."""
    if policy_file is None and not key_files:
        return None
    entries: list[tuple[str, tuple[TrustedKey, ...]]] = []
    stores: list[tuple[str, str]] = []
    sources: list[str] = []
    if policy_file is not None:
        text = read_bounded_text(policy_file, MAX_POLICY_BYTES, "trust policy")
        try:
            parsed = _PolicyFile.model_validate(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise UsageError(f"trust policy {policy_file} is not YAML: {str(exc).splitlines()[0]}") from None
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "the document"
            raise UsageError(f"trust policy {policy_file}: {where}: {problem['msg']}") from None
        base = policy_file.parent
        for entry in parsed.repositories:
            entries.append((entry.pattern, tuple(_key(base / name, name) for name in entry.keys)))
            if entry.signatures is not None:
                stores.append((entry.pattern, _store(entry.signatures, policy_file)))
        sources.append(str(policy_file))
    if key_files:
        entries.append(("*", tuple(_key(path, str(path)) for path in key_files)))
        sources.append("--verify-key " + ", ".join(str(path) for path in key_files))
    return TrustPolicy(source="; ".join(sources), entries=tuple(entries), stores=tuple(stores))


def _store(text: str, policy_file: Path) -> str:
    """A `signatures:` value as HOST/REPO; a tag or digest has no place there."""
    from portcullis.collect.image.errors import ImageError
    from portcullis.collect.image.registry import ImageReference

    try:
        store = ImageReference.parse(text)
    except ImageError as exc:
        raise UsageError(f"trust policy {policy_file}: signatures: {exc}") from None
    if text.endswith(f":{store.tag}") or store.digest:
        raise UsageError(f"trust policy {policy_file}: signatures: {text!r} names a repository, HOST/REPO, no tag")
    return store.name


def attach_signatures(
    image: ImageFacts,
    policy: TrustPolicy,
    insecure_hosts: Sequence[str] = (),
    credentials: tuple[str, str] | None = None,
    containers: Iterable[str] = (),
) -> None:
    """Look up the signatures of each of the image's repo digests in its registry and record them on the image."""
    from portcullis.collect.image import Credentials
    from portcullis.collect.image.errors import ImageError
    from portcullis.collect.image.registry import ImageReference
    from portcullis.collect.image.signatures import lookup_signatures

    login = Credentials(*credentials) if credentials else None
    lookups: list[SignatureLookup] = []
    for repo_digest in dict.fromkeys(image.repo_digests):
        name, _, digest = repo_digest.rpartition("@")
        try:
            repository = ImageReference.parse(name).name
            keys, store = policy.keys_for(repository), policy.store_for(repository)
            lookups.append(lookup_signatures(repository, digest, keys, insecure_hosts, login, stored_in=store))
        except ImageError as exc:  # a repo digest the engine recorded but we cannot parse: undecided
            lookups.append(SignatureLookup(repository=name, digest=digest, signature_tag="", error=str(exc)))
    image.signatures = ImageSignatures(policy=policy.source, lookups=lookups, containers=list(containers))


def engine_insecure_hosts(facts: Facts, hosts: Iterable[str]) -> list[str]:
    """Of `hosts` (registry HOST[:PORT]), those the engine itself reaches over plain HTTP: named insecure in its
    configuration or in its insecure CIDRs (127.0.0.0/8 by default), so the audit reads signatures as it pulls."""
    config = facts.engine.info.registry_config
    networks = []
    for cidr in config.insecure_registry_cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    insecure = []
    for host in hosts:
        index = config.index_configs.get(host)
        if isinstance(index, dict) and index.get("Secure") is False:
            insecure.append(host)
            continue
        address = host.rsplit(":", 1)[0].strip("[]") if host.count(":") == 1 or host.startswith("[") else host
        try:  # dockerd resolves names against the CIDRs; localhost is the one name resolved here (no DNS lookups)
            ip = ipaddress.ip_address("127.0.0.1" if address == "localhost" else address)
        except ValueError:
            continue
        if any(ip in network for network in networks):
            insecure.append(host)
    return insecure


def attach_running_signatures(facts: Facts, policy: TrustPolicy) -> int:
    """Under a policy, look up the signatures of every image a running container uses; returns how many images."""
    from portcullis.collect.image.errors import ImageError
    from portcullis.collect.image.registry import ImageReference

    running: dict[str, list[str]] = {}
    for container in facts.containers:
        if container.state.running:
            running.setdefault(container.image_id, []).append(container.short_name)
    images = [image for image in facts.images if image.id in running]
    hosts = set()
    for image in images:
        for repo_digest in image.repo_digests:
            try:
                repository = ImageReference.parse(repo_digest.rpartition("@")[0])
            except ImageError:
                continue
            hosts.add(repository.host)
            if store := policy.store_for(repository.name):
                hosts.add(ImageReference.parse(store).host)
    insecure = engine_insecure_hosts(facts, hosts)
    for image in images:
        attach_signatures(image, policy, insecure, containers=sorted(running[image.id]))
    return len(images)
