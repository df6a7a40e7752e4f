"""`portcullis image --verify-key` against cosign-format signatures in the real local registry (127.0.0.1:5000).

Each case copies the pushed busybox test image into a repository of its own and stores a `.sig` manifest made by
tests/support/cosign_format.py (cosign's layout, written from its specification: no cosign binary is available
here). The image is read from the registry and CIS-4.12 says whether its digest is signed by a trusted key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from portcullis.agent.rounds import RoundOptions, run_round
from portcullis.checks.signatures import Judgement, Verdict, judge_lookup
from portcullis.collect.image.signatures import (
    MAX_BUNDLE_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURES,
    lookup_signatures,
    signature_tag,
)
from portcullis.model.findings import Finding, Severity, Status
from portcullis.model.signatures import BUNDLE_TYPE, CosignSignature, SignatureLookup, TrustedKey
from portcullis.pipelines.image import ImageSource, image_report
from portcullis.pipelines.trust import load_trust_policy
from support.containers import labelled_containers
from support.cosign_format import SigningKey, TestRegistry, bundle, payload

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from clirun import run_cli

REGISTRY = "127.0.0.1:5000"
BUSYBOX_REPO = "portcullis-test/busybox"


def _registry_has_busybox() -> bool:
    try:
        return requests.get(f"http://{REGISTRY}/v2/{BUSYBOX_REPO}/tags/list", timeout=2).status_code == 200
    except requests.RequestException:
        return False


pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not _registry_has_busybox(), reason="run scripts/start-test-registry.sh first"),
]


@pytest.fixture(scope="module")
def registry() -> TestRegistry:
    return TestRegistry(REGISTRY)


@pytest.fixture(scope="module")
def trusted() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def key_file(trusted: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "cosign.pub"
    path.write_text(trusted.public_pem)
    return path


def fresh_image(registry: TestRegistry) -> tuple[str, str]:
    """A copy of busybox in a repository of its own: (HOST/REPO, digest)."""
    repository = f"portcullis-test/sig-{uuid.uuid4().hex[:10]}"
    digest = registry.copy_image(BUSYBOX_REPO, "1", repository)
    return f"{REGISTRY}/{repository}", digest


def verdict(name: str, key_file: Path) -> Finding:
    source = ImageSource(
        f"registry:{name}:1",
        insecure_registries=[REGISTRY],
        cache=False,
        trust=load_trust_policy(None, [key_file]),
    )
    report = image_report(source, select=["CIS-4.12"])
    (finding,) = report.findings
    return finding


def test_signed_image_passes(registry: TestRegistry, trusted: SigningKey, key_file: Path) -> None:
    name, digest = fresh_image(registry)
    body = payload(name, digest)
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, trusted.sign(body))])
    finding = verdict(name, key_file)
    assert finding.status is Status.PASS, finding.message
    assert finding.evidence["signature"] == {
        "repository": name,
        "digest": digest,
        "verdict": "signed",
        "reason": f"signed by {key_file}",
        "key": str(key_file),
    }


def test_tampered_payload_fails(registry: TestRegistry, trusted: SigningKey, key_file: Path) -> None:
    name, digest = fresh_image(registry)
    signed = payload(name, digest)
    tampered = signed.replace(b'"optional":null', b'"optional":{"by":"attacker"}')
    assert tampered != signed
    registry.push_signatures(name.split("/", 1)[1], digest, [(tampered, trusted.sign(signed))])
    finding = verdict(name, key_file)
    assert finding.status is Status.FAIL and finding.severity is Severity.HIGH
    assert finding.evidence["signature"]["verdict"] == "bad signature"
    assert "does not verify with the trusted keys" in finding.message


def test_signature_for_another_digest_fails(registry: TestRegistry, trusted: SigningKey, key_file: Path) -> None:
    name, digest = fresh_image(registry)
    _, _, other = registry.manifest("portcullis-test/debian", "bookworm")
    body = payload(name, other)
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, trusted.sign(body))])
    finding = verdict(name, key_file)
    assert finding.status is Status.FAIL
    assert finding.evidence["signature"]["verdict"] == "wrong digest"
    assert f"vouches for {other}, not this image's {digest}" in finding.message


def test_unknown_key_fails(registry: TestRegistry, key_file: Path) -> None:
    name, digest = fresh_image(registry)
    body = payload(name, digest)
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, SigningKey.generate().sign(body))])
    finding = verdict(name, key_file)
    assert finding.status is Status.FAIL
    assert finding.evidence["signature"]["verdict"] == "bad signature"
    assert "another key made it" in finding.message


def test_unsigned_image_fails(registry: TestRegistry, key_file: Path) -> None:
    name, digest = fresh_image(registry)
    finding = verdict(name, key_file)
    assert finding.status is Status.FAIL
    assert finding.evidence["signature"]["verdict"] == "unsigned"
    assert f"no {digest.replace(':', '-')}.sig nor a bundle for the digest in {name}" in finding.message


def test_one_good_signature_among_bad_ones_passes(registry: TestRegistry, trusted: SigningKey, key_file: Path) -> None:
    """cosign appends a layer per signer: the image passes when any signature is by a trusted key."""
    name, digest = fresh_image(registry)
    body = payload(name, digest)
    stranger = SigningKey.generate().sign(body)
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, stranger), (body, trusted.sign(body))])
    finding = verdict(name, key_file)
    assert finding.status is Status.PASS, finding.message
    assert json.loads(json.dumps(finding.evidence))["lookups"][0]["verdict"] == "signed"


@pytest.fixture
def pulled(registry: TestRegistry) -> Iterator[Callable[[], tuple[str, str]]]:
    """Images of their own id copied into fresh repositories and pulled into the engine; removed afterwards."""
    engine = docker.from_env(timeout=120)
    names: list[str] = []

    def pull() -> tuple[str, str]:
        repository = f"portcullis-test/sig-{uuid.uuid4().hex[:10]}"
        digest = registry.copy_image(BUSYBOX_REPO, "1", repository, label=repository)
        name = f"{REGISTRY}/{repository}"
        engine.images.pull(name, tag="1")
        names.append(f"{name}:1")
        return name, digest

    try:
        yield pull
    finally:
        for name in names:
            with contextlib.suppress(docker.errors.DockerException):
                engine.images.remove(name, force=False)
        engine.close()


def test_audit_judges_running_containers_by_the_policy(
    registry: TestRegistry, trusted: SigningKey, key_file: Path, pulled: Callable[[], tuple[str, str]], tmp_path: Path
) -> None:
    signed, signed_digest = pulled()
    unsigned, _ = pulled()
    body = payload(signed, signed_digest)
    registry.push_signatures(signed.split("/", 1)[1], signed_digest, [(body, trusted.sign(body))])
    policy = tmp_path / "trust.yaml"
    policy.write_text(f'repositories:\n  - pattern: "{REGISTRY}/portcullis-test/sig-*"\n    keys: [{key_file}]\n')
    engine = docker.from_env(timeout=120)
    try:
        with labelled_containers(engine, f"pc-sig-{uuid.uuid4().hex[:6]}") as factory:
            factory.run("signed", image=f"{signed}:1")
            factory.run("unsigned", image=f"{unsigned}:1")
            run = run_cli(
                "audit",
                "--trust-policy",
                str(policy),
                "--select",
                "CIS-4.12",
                "-f",
                "json",
                "--no-store",
                "--fail-on",
                "high",
            )
            names = factory.names
    finally:
        engine.close()
    assert run.code == 2, run.stderr  # the unsigned image's failure is high
    findings = {f["target"]["name"]: f for f in run.json()["findings"]}
    good, bad = findings[f"{signed}:1"], findings[f"{unsigned}:1"]
    assert (good["status"], good["evidence"]["containers"]) == ("pass", [names["signed"]])
    assert good["evidence"]["signature"]["digest"] == signed_digest
    assert (bad["status"], bad["severity"], bad["evidence"]["containers"]) == ("fail", "high", [names["unsigned"]])
    assert bad["evidence"]["signature"]["verdict"] == "unsigned"


# --- a registry that serves too much, or none at all: the lookup is undecided, never signed or unsigned -------


def trusted_keys(trusted: SigningKey) -> list[TrustedKey]:
    return [TrustedKey(name="cosign.pub", pem=trusted.public_pem)]


def test_too_many_signatures_are_not_read(registry: TestRegistry, trusted: SigningKey) -> None:
    name, digest = fresh_image(registry)
    body = payload(name, digest)
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, trusted.sign(body))] * (MAX_SIGNATURES + 1))
    lookup = lookup_signatures(name, digest, trusted_keys(trusted), [REGISTRY])
    assert lookup.error == f"{signature_tag(digest)} has {MAX_SIGNATURES + 1} layers, over the {MAX_SIGNATURES} read"
    assert judge_lookup(lookup).verdict is Verdict.UNDECIDED


def test_an_oversized_payload_is_not_read(registry: TestRegistry, trusted: SigningKey) -> None:
    name, digest = fresh_image(registry)
    body = payload(name, digest).replace(b'"optional":null', b'"optional":{"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}')
    registry.push_signatures(name.split("/", 1)[1], digest, [(body, trusted.sign(body))])
    lookup = lookup_signatures(name, digest, trusted_keys(trusted), [REGISTRY])
    assert lookup.error is not None and f"over the {MAX_PAYLOAD_BYTES}-byte limit" in lookup.error
    assert judge_lookup(lookup).verdict is Verdict.UNDECIDED


def test_an_unreachable_registry_is_undecided(trusted: SigningKey) -> None:
    with socket.socket() as placeholder:  # a port nobody listens on once closed
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    digest = "sha256:" + "c" * 64
    lookup = lookup_signatures(f"127.0.0.1:{port}/app", digest, trusted_keys(trusted), [f"127.0.0.1:{port}"])
    assert lookup.error is not None and lookup.error.startswith(f"cannot reach registry 127.0.0.1:{port}")
    judgement = judge_lookup(lookup)
    assert (judgement.verdict, judgement.reason.split(":")[0]) == (
        Verdict.UNDECIDED,
        "the signatures could not be read",
    )


def test_the_image_command_gates_on_signatures(
    registry: TestRegistry, trusted: SigningKey, key_file: Path, tmp_path: Path
) -> None:
    signed, digest = fresh_image(registry)
    body = payload(signed, digest)
    registry.push_signatures(signed.split("/", 1)[1], digest, [(body, trusted.sign(body))])
    unsigned, _ = fresh_image(registry)
    policy = tmp_path / "trust.yaml"
    policy.write_text(f'repositories:\n  - pattern: "{REGISTRY}/portcullis-test/sig-*"\n    keys: [{key_file}]\n')
    common = ("--insecure-registry", REGISTRY, "--select", "CIS-4.12", "--no-vulns", "--no-cache", "--no-store")
    gate = ("--fail-on", "high", "-f", "json")
    passed = run_cli("image", f"registry:{signed}:1", "--trust-policy", str(policy), *common, *gate)
    assert passed.code == 0, passed.stderr
    assert [f["status"] for f in passed.json()["findings"]] == ["pass"]
    refused = run_cli("image", f"registry:{unsigned}:1", "--verify-key", str(key_file), *common, *gate)
    assert refused.code == 2, refused.stderr
    assert [f["evidence"]["signature"]["verdict"] for f in refused.json()["findings"]] == ["unsigned"]
    missing = run_cli("image", f"registry:{signed}:1", "--verify-key", str(tmp_path / "nope.pub"), *common)
    assert missing.code == 1
    assert (
        missing.one_error_line()
        == f"portcullis: error: cannot read key {tmp_path / 'nope.pub'}: No such file or directory"
    )


def test_an_audit_whose_registry_is_down_fails_closed(key_file: Path, tmp_path: Path) -> None:
    """Replayed facts whose running container's image lives in a registry nobody answers: undecided is a failure."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    recorded = json.loads((Path(__file__).parents[1] / "rules" / "baseline.json").read_text())
    image_id = "sha256:" + "d" * 64
    recorded |= {
        "schema_version": "1",
        "containers": [{"Id": "c" * 64, "Name": "/web", "Image": image_id, "State": {"Running": True}}],
        "images": [
            {
                "Id": image_id,
                "RepoTags": [f"127.0.0.1:{port}/app:1"],
                "RepoDigests": [f"127.0.0.1:{port}/app@sha256:{'e' * 64}"],
            }
        ],
    }
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({k: v for k, v in recorded.items() if not k.startswith("_")}))
    run = run_cli(
        "audit", "--facts-in", str(facts), "--verify-key", str(key_file), "--select", "CIS-4.12", "-f", "json",
        "--no-store", "--fail-on", "high",
    )  # fmt: skip
    assert run.code == 2, run.stderr
    (finding,) = run.json()["findings"]
    assert (finding["status"], finding["evidence"]["signature"]["verdict"], finding["evidence"]["containers"]) == (
        "fail",
        "undecided",
        ["web"],
    )
    assert f"cannot reach registry 127.0.0.1:{port}" in finding["message"]


def test_the_agent_round_judges_running_images_by_the_policy(
    registry: TestRegistry, trusted: SigningKey, key_file: Path, pulled: Callable[[], tuple[str, str]]
) -> None:
    signed, digest = pulled()
    body = payload(signed, digest)
    registry.push_signatures(signed.split("/", 1)[1], digest, [(body, trusted.sign(body))])
    engine = docker.from_env(timeout=120)
    try:
        with labelled_containers(engine, f"pc-sig-{uuid.uuid4().hex[:6]}") as factory:
            factory.run("agent", image=f"{signed}:1")
            done = run_round(RoundOptions(agent="sig-test", images=False, trust=load_trust_policy(None, [key_file])))
    finally:
        engine.close()
    findings = [
        f
        for f in done.bodies[0]["report"]["findings"]
        if f["rule_id"] == "CIS-4.12" and f["target"]["name"] == f"{signed}:1"
    ]
    assert [(f["status"], f["evidence"]["signature"]["verdict"]) for f in findings] == [("pass", "signed")]


# --- a signature the cosign tool made (recorded by containers/image; see data/cosign-made-signature.json) -------

COSIGN_MADE = json.loads((Path(__file__).parent / "data" / "cosign-made-signature.json").read_text())


def test_a_signature_made_by_cosign_verifies_from_the_registry(registry: TestRegistry) -> None:
    """No cosign binary can be installed here: this is cosign's own output, stored as cosign stores it and judged."""
    signed_payload = base64.b64decode(COSIGN_MADE["payload_b64"])
    # What our test signer writes is byte for byte what cosign signed, so signatures we make are over cosign's bytes.
    assert payload(COSIGN_MADE["repository"], COSIGN_MADE["manifest_digest"]) == signed_payload
    repository = f"portcullis-test/sig-{uuid.uuid4().hex[:10]}"
    digest = COSIGN_MADE["manifest_digest"]
    registry.push_signatures(repository, digest, [(signed_payload, COSIGN_MADE["signature_b64"])])
    keys = [TrustedKey(name="cosign.pub", pem=COSIGN_MADE["public_key_pem"])]
    lookup = lookup_signatures(f"{REGISTRY}/{repository}", digest, keys, [REGISTRY])
    judgement = judge_lookup(lookup)
    assert (judgement.verdict, judgement.key) == (Verdict.SIGNED, "cosign.pub"), judgement.reason
    # The same signature under another digest's tag, and with one payload byte changed, is refused.
    other = "sha256:" + "0" * 64
    registry.push_signatures(repository, other, [(signed_payload, COSIGN_MADE["signature_b64"])])
    assert judge_lookup(lookup_signatures(f"{REGISTRY}/{repository}", other, keys, [REGISTRY])).verdict is (
        Verdict.WRONG_DIGEST
    )
    changed = signed_payload.replace(b"single", b"singlE")
    registry.push_signatures(repository, digest, [(changed, COSIGN_MADE["signature_b64"])])
    assert judge_lookup(lookup_signatures(f"{REGISTRY}/{repository}", digest, keys, [REGISTRY])).verdict is (
        Verdict.BAD_SIGNATURE
    )


def test_signatures_stored_in_another_repository(
    registry: TestRegistry, trusted: SigningKey, key_file: Path, tmp_path: Path
) -> None:
    """cosign's COSIGN_REPOSITORY: the policy's `signatures:` says where; without it they are looked for beside."""
    name, digest = fresh_image(registry)
    store = f"portcullis-test/sig-store-{uuid.uuid4().hex[:8]}"
    body = payload(name, digest)
    registry.push_signatures(store, digest, [(body, trusted.sign(body))])
    entry = f'  - pattern: "{name}"\n    keys: [{key_file}]\n'
    elsewhere, beside = tmp_path / "elsewhere.yaml", tmp_path / "beside.yaml"
    elsewhere.write_text(f"repositories:\n{entry}    signatures: {REGISTRY}/{store}\n")
    beside.write_text(f"repositories:\n{entry}")
    results = {}
    for policy in (elsewhere, beside):
        source = ImageSource(
            f"registry:{name}:1", insecure_registries=[REGISTRY], cache=False, trust=load_trust_policy(policy)
        )
        (finding,) = image_report(source, select=["CIS-4.12"]).findings
        results[policy.stem] = (finding.status, finding.evidence["signature"]["verdict"])
    assert results == {"elsewhere": (Status.PASS, "signed"), "beside": (Status.FAIL, "unsigned")}


# --- cosign 3's default: a Sigstore bundle attached as an OCI 1.1 referrer ------------------------------------------


def tampered(body: bytes) -> bytes:
    """The bundle with its statement changed after signing (a subject added), the signature kept."""
    document = json.loads(body)
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["subject"].append({"digest": {"sha256": "f" * 64}})
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(document).encode()


def test_bundles_attached_as_referrers(registry: TestRegistry, trusted: SigningKey, key_file: Path) -> None:
    _, _, other = registry.manifest("portcullis-test/debian", "bookworm")
    cases = {
        "signed": lambda digest: bundle(trusted, digest),
        "wrong digest": lambda digest: bundle(trusted, digest, statement_digest=other),
        "unknown key": lambda digest: bundle(SigningKey.generate(), digest),
        "tampered": lambda digest: tampered(bundle(trusted, digest)),
    }
    verdicts = {}
    for case, make in cases.items():
        name, digest = fresh_image(registry)
        registry.attach_bundle(name.split("/", 1)[1], digest, make(digest))
        finding = verdict(name, key_file)
        verdicts[case] = (finding.status, finding.evidence["signature"]["verdict"])
    assert verdicts == {
        "signed": (Status.PASS, "signed"),
        "wrong digest": (Status.FAIL, "wrong digest"),
        "unknown key": (Status.FAIL, "bad signature"),
        "tampered": (Status.FAIL, "bad signature"),
    }


def test_an_oversized_bundle_is_not_read(registry: TestRegistry, trusted: SigningKey) -> None:
    name, digest = fresh_image(registry)
    document = json.loads(bundle(trusted, digest))
    document["verificationMaterial"] = {"padding": "x" * MAX_BUNDLE_BYTES}
    registry.attach_bundle(name.split("/", 1)[1], digest, json.dumps(document).encode())
    lookup = lookup_signatures(name, digest, trusted_keys(trusted), [REGISTRY])
    assert lookup.error is not None and f"over the {MAX_BUNDLE_BYTES}-byte limit" in lookup.error
    assert judge_lookup(lookup).verdict is Verdict.UNDECIDED


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_dsse_envelope_made_by_sigstore_verifies() -> None:
    """The DSSE signature of a real sigstore bundle verifies over our pre-authentication encoding; its statement is an
    attestation, not a signature, so it vouches for nothing here (bad payload) - and one changed byte breaks it."""
    made = json.loads((Path(__file__).parent / "data" / "sigstore-made-dsse.json").read_text())

    def judged(document: dict[str, object]) -> Judgement:
        body = json.dumps(document).encode()
        signature = CosignSignature(
            media_type=BUNDLE_TYPE, payload_digest=digest_of(body), payload_b64=base64.b64encode(body).decode()
        )
        return judge_lookup(
            SignatureLookup(
                repository="127.0.0.1:60943/repo",
                digest=made["subject_digest"],
                signature_tag=signature_tag(made["subject_digest"]),
                trusted_keys=[TrustedKey(name="fulcio-cert.pub", pem=made["public_key_pem"])],
                found=True,
                signatures=[signature],
            )
        )

    verified = judged(made["bundle"])
    assert (verified.verdict, verified.reason) == (
        Verdict.BAD_PAYLOAD,
        "bundle 1 (by fulcio-cert.pub) is not a cosign image signature payload",
    )
    altered = json.loads(json.dumps(made["bundle"]))
    altered["dsseEnvelope"]["payloadType"] = "application/vnd.in-toto+jsoN"
    assert judged(altered).verdict is Verdict.BAD_SIGNATURE
