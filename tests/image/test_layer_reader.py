"""The layer reader on images built in test code: squashing, attribution, compression, digests, platforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from image_builders import Image, M, OciLayout, docker_archive, layer_tar, sha256

from portcullis.collect.image import ImageError, ImageOptions, Platform, analyse_image
from portcullis.collect.image.secrets import classify

KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEfake\n-----END RSA PRIVATE KEY-----\n"


def read(tmp_path: Path, image: Image, **options: object) -> object:
    return analyse_image(f"docker-archive:{docker_archive(tmp_path / 'img.tar', image)}", ImageOptions(**options))  # type: ignore[arg-type]


def paths(evidence: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(e.path, e.layer.index) for e in evidence]


def test_secret_added_then_deleted_reports_both_layers(tmp_path: Path) -> None:
    image = Image(
        layers=[
            layer_tar(M("root", kind="dir", mode=0o700), M("root/id_rsa", KEY, 0o600)),
            layer_tar(M("root/.wh.id_rsa")),
        ],
        created_by=["COPY id_rsa /root/", "RUN rm /root/id_rsa"],
    )
    facts = read(tmp_path, image)
    [secret] = facts.content.secrets  # type: ignore[attr-defined]
    assert (secret.path, secret.detail) == ("/root/id_rsa", "private-key")
    assert secret.layer.index == 0 and secret.layer.created_by == "COPY id_rsa /root/"
    assert secret.layer.diff_id == sha256(image.layers[0])
    assert secret.removed_in.index == 1 and secret.removed_in.created_by == "RUN rm /root/id_rsa"
    assert facts.content.file_count == 1  # type: ignore[attr-defined]  # only /root remains


def test_opaque_directory_hides_lower_content_only(tmp_path: Path) -> None:
    image = Image(
        layers=[
            layer_tar(M("etc", kind="dir", mode=0o755), M("etc/old.conf"), M("etc/.env", b"A=1")),
            layer_tar(M("etc", kind="dir", mode=0o755), M("etc/.wh..wh..opq"), M("etc/new.conf")),
        ]
    )
    content = read(tmp_path, image).content  # type: ignore[attr-defined]
    assert content.file_count == 2  # etc, etc/new.conf
    [env] = content.secrets
    assert (env.path, env.detail, env.layer.index, env.removed_in.index) == ("/etc/.env", "dotenv-file", 0, 1)


def test_setuid_world_writable_sshd_sudo_caches_attributed(tmp_path: Path) -> None:
    image = Image(
        layers=[
            layer_tar(M("usr/bin/sudo", b"\x7fELF", 0o4755), M("tmp", kind="dir", mode=0o1777)),
            layer_tar(M("srv/drop", kind="dir", mode=0o777), M("usr/sbin/sshd", b"\x7fELF", 0o755)),
            layer_tar(
                M("var/lib/apt/lists/deb_Packages", b"x" * 10),
                M("var/lib/apt/lists/lock"),
                M("var/cache/apt/archives/a.deb", b"y" * 5),
            ),
        ]
    )
    content = read(tmp_path, image).content  # type: ignore[attr-defined]
    assert paths(content.setuid_files) == [("/usr/bin/sudo", 0)]
    assert content.setuid_files[0].mode == 0o4755 and content.setuid_files[0].detail == "setuid"
    assert paths(content.world_writable_dirs) == [("/srv/drop", 1)]
    assert paths(content.notable_binaries) == [("/usr/bin/sudo", 0), ("/usr/sbin/sshd", 1)]
    assert [(e.path, e.detail) for e in content.package_caches] == [
        ("/var/cache/apt/archives", "1 files, 5 bytes"),
        ("/var/lib/apt/lists", "1 files, 10 bytes"),
    ]


def test_symlinked_parent_resolves_inside_the_image(tmp_path: Path) -> None:
    # bin -> usr/bin (merged /usr); a later layer writing bin/sudo lands in /usr/bin/sudo.
    # A symlink to an absolute host-looking path is resolved against the image root, not the host.
    image = Image(
        layers=[
            layer_tar(
                M("usr/bin", kind="dir", mode=0o755),
                M("bin", kind="symlink", link="usr/bin"),
                M("cfg", kind="symlink", link="/../../etc"),
            ),
            layer_tar(M("bin/sudo", b"x", 0o4755), M("cfg/.netrc", b"machine x login y password z")),
        ]
    )
    content = read(tmp_path, image).content  # type: ignore[attr-defined]
    assert paths(content.setuid_files) == [("/usr/bin/sudo", 1)]
    assert [(s.path, s.detail) for s in content.secrets] == [("/etc/.netrc", "netrc")]


def test_hardlink_to_a_setuid_file_is_a_setuid_file(tmp_path: Path) -> None:
    image = Image(
        layers=[layer_tar(M("bin/su", b"x", 0o4755), M("bin/su2", kind="hardlink", link="bin/su", mode=0o4755))]
    )
    content = read(tmp_path, image).content  # type: ignore[attr-defined]
    assert paths(content.setuid_files) == [("/bin/su", 0), ("/bin/su2", 0)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_oci_layers_by_magic_bytes_and_verified(tmp_path: Path, compression: str) -> None:
    image = Image(layers=[layer_tar(M("app/.aws/credentials", b"[default]\n")), layer_tar(M("app/run", b"ok", 0o2755))])
    layout = OciLayout()
    layout.add(image, compression)
    facts = analyse_image(f"oci:{layout.write_dir(tmp_path / 'layout')}")
    assert facts.content is not None and facts.content.source == "oci"
    assert [layer.diff_id for layer in facts.content.layers] == [sha256(t) for t in image.layers]
    assert [(s.path, s.detail) for s in facts.content.secrets] == [("/app/.aws/credentials", "aws-credentials-file")]
    assert paths(facts.content.setuid_files) == [("/app/run", 1)]
    assert facts.content.setuid_files[0].detail == "setgid"


def test_multi_platform_index_and_platform_selection(tmp_path: Path) -> None:
    amd = Image(layers=[layer_tar(M("amd64-only"))], architecture="amd64")
    arm = Image(layers=[layer_tar(M("arm64-only")), layer_tar(M("more"))], architecture="arm64")
    layout = OciLayout()
    layout.add_multiplatform([amd, arm])
    archive = layout.write_tar(tmp_path / "multi.tar")
    chosen = analyse_image(f"oci-archive:{archive}", ImageOptions(platform=Platform.parse("linux/arm64")))
    assert chosen.content is not None and len(chosen.content.layers) == 2
    default = analyse_image(f"oci-archive:{archive}", ImageOptions(platform=Platform("linux", "amd64")))
    assert default.content is not None and len(default.content.layers) == 1
    with pytest.raises(ImageError, match=r"no image for platform linux/s390x \(it has: linux/amd64, linux/arm64\)"):
        analyse_image(f"oci-archive:{archive}", ImageOptions(platform=Platform.parse("linux/s390x")))


def test_auto_detection_of_paths(tmp_path: Path) -> None:
    image = Image(layers=[layer_tar(M("a"))])
    layout = OciLayout()
    layout.add(image)
    assert analyse_image(str(docker_archive(tmp_path / "save.tar", image))).content.source == "docker-archive"  # type: ignore[union-attr]
    assert analyse_image(str(layout.write_dir(tmp_path / "lay"))).content.source == "oci"  # type: ignore[union-attr]
    assert analyse_image(str(layout.write_tar(tmp_path / "lay.tar"))).content.source == "oci-archive"  # type: ignore[union-attr]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    assert analyse_image(str(root)).content.source == "dir"  # type: ignore[union-attr]


def test_history_newest_first_and_config(tmp_path: Path) -> None:
    image = Image(
        layers=[layer_tar(M("a"))],
        created_by=["ADD rootfs /"],
        config={"User": "1000", "ExposedPorts": {"443/tcp": {}}, "Labels": {"k": "v"}},
    )
    facts = read(tmp_path, image)
    assert facts.config.user == "1000" and facts.config.exposed_ports == {"443/tcp": {}}  # type: ignore[attr-defined]
    assert [h.created_by for h in facts.history] == ["ADD rootfs /"]  # type: ignore[attr-defined]
    assert facts.history[0].created == 1714557600  # type: ignore[attr-defined]
    assert facts.repo_tags == ["test/image:1"]  # type: ignore[attr-defined]
    assert facts.id == sha256(image.config_json())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "head", "kind"),
    [
        ("/k", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc", "private-key"),
        ("/x.py", b"key = 'AKIAZ7QRSTUVWXYZ2345'", "aws-access-key-id"),
        ("/x.py", b"key = 'AKIAIOSFODNN7EXAMPLE'", None),  # the AWS documentation's example key
        ("/t", b"token=ghp_" + b"a1" * 18, "github-token"),
        ("/s", b"SLACK=xoxb-123456789012-abcdef", "slack-token"),
        ("/sa.json", json.dumps({"type": "service_account", "private_key": "x"}).encode(), "gcp-service-account-key"),
        ("/root/.docker/config.json", b'{"auths": {"r.io": {"auth": "dTpw"}}}', "docker-registry-credentials"),
        ("/root/.docker/config.json", b'{"auths": {"r.io": {}}, "credsStore": "pass"}', None),
        ("/app/.env.example", b"A=", None),
        ("/bin/x", b"\x7fELF\x00\x00 -----BEGIN RSA PRIVATE KEY-----", None),
        ("/doc.txt", b"PRIVATE KEY is a phrase, not a key", None),
    ],
)
def test_secret_classification(path: str, head: bytes, kind: str | None) -> None:
    assert classify(path, head) == kind
