"""Files that are not what they claim: FIFOs where a file is expected, oversized, binary or future facts
snapshots. Each ends in one clear line and exit 1, within a timeout and a memory cap."""

from __future__ import annotations

import json
import os
from pathlib import Path

from image_builders import Image, M, OciLayout, layer_tar

from portcullis.collect.audit import MAX_FACTS_BYTES, MAX_FACTS_OBJECTS
from portcullis.model.facts import FACTS_SCHEMA_VERSION, EngineFacts, EngineInfo, EngineVersion, Facts
from support.bounded import run_bounded

# Opening a FIFO for reading waits for a writer, which never comes: without the fix each run hangs until this.
HANG = 60


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def _layout(root: Path) -> tuple[Path, OciLayout]:
    layout = OciLayout()
    layout.add(Image(layers=[layer_tar(M("etc/hostname", b"box"))]))
    return layout.write_dir(root), layout


def test_fifo_as_image_path_blob_or_index_is_refused(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "image.tar")
    for reference in (str(fifo), f"docker-archive:{fifo}", f"oci-archive:{fifo}"):
        assert f"{fifo} is not a regular file" in run_bounded("image", reference, timeout=HANG).one_error_line()

    root, _ = _layout(tmp_path / "layout")
    _fifo(root / "index.json")
    assert "index.json is not a regular file" in run_bounded("image", f"oci:{root}", timeout=HANG).one_error_line()

    root, layout = _layout(tmp_path / "blobs")
    for digest in layout.blobs:  # the config, the manifest and the layer: each one a FIFO in turn
        blob = root / "blobs" / "sha256" / digest.split(":")[1]
        _fifo(blob)
        # --no-cache: a blob kept in the layer cache from an earlier round would rightly never be opened
        refused = run_bounded("image", f"oci:{root}", "--no-cache", timeout=HANG)
        assert "is not a regular file" in refused.one_error_line()
        blob.unlink()
        blob.write_bytes(layout.blobs[digest])


def test_fifos_inside_a_root_directory_are_listed_not_opened(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    _fifo(root / "etc" / "passwd")
    _fifo(root / "id_rsa")
    result = run_bounded("image", f"dir:{root}", "--format", "json", timeout=HANG)
    assert result.code in (0, 2) and "error" not in result.stderr, result.stderr


def test_fifo_as_lint_input_or_env_file_is_refused(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx:1.27\n")
    env = _fifo(tmp_path / "vars.env")
    result = run_bounded("lint", str(compose), "--env-file", str(env), timeout=HANG)
    assert f"{env} is not a regular file" in result.one_error_line()


def _facts(tmp_path: Path, **changes: object) -> Path:
    facts = Facts(
        engine=EngineFacts(endpoint="unix:///x.sock", local=False, info=EngineInfo(), version=EngineVersion())
    )
    document = json.loads(facts.to_json())
    document.update(changes)
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}))
    return path


def test_facts_replay_checks_the_schema_version(tmp_path: Path) -> None:
    replay = run_bounded("audit", "--facts-in", str(_facts(tmp_path)), "--format", "json")
    assert replay.code == 0, replay.stderr
    future = run_bounded("audit", "--facts-in", str(_facts(tmp_path, schema_version="99")))
    assert f"schema_version '99'; this Portcullis reads version {FACTS_SCHEMA_VERSION}" in future.one_error_line()
    unversioned = run_bounded("audit", "--facts-in", str(_facts(tmp_path, schema_version=None)))
    assert "not a Portcullis facts snapshot (no schema_version)" in unversioned.one_error_line()


def test_facts_file_that_is_binary_huge_or_a_fifo_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 64)
    assert (
        "is not a Portcullis facts snapshot (Invalid JSON"
        in run_bounded("audit", "--facts-in", str(binary)).one_error_line()
    )

    # Valid JSON, just large: 200 MB once ended in "internal error: SystemError" after using ~20 GB.
    huge = tmp_path / "huge.json"
    with huge.open("w") as out:
        out.write('{"schema_version": "1", "engine": {}, "problems": [')
        out.write(",".join(['{"fact": "x", "reason": "y"}'] * (MAX_FACTS_BYTES // 28 + 1)))
        out.write("]}")
    line = run_bounded("audit", "--facts-in", str(huge)).one_error_line()
    assert f"is over the {MAX_FACTS_BYTES >> 20} MiB limit" in line

    # Under the size cap but made of tiny objects, each of which would become a full model.
    tiny = tmp_path / "tiny.json"
    items = ",".join(['{"Id": "x"}'] * (MAX_FACTS_OBJECTS + 1))
    tiny.write_text(f'{{"schema_version": "1", "engine": {{}}, "containers": [{items}]}}')
    assert (
        f"more than {MAX_FACTS_OBJECTS} JSON objects" in run_bounded("audit", "--facts-in", str(tiny)).one_error_line()
    )

    fifo = _fifo(tmp_path / "fifo.json")
    assert "is not a regular file" in run_bounded("audit", "--facts-in", str(fifo), timeout=HANG).one_error_line()
