"""rpm, Go, Java, Ruby and Rust inventory parsers.

Real samples are produced here where the machine can make them (`make programs` installs the Debian
packages): rpms built with rpmbuild and recorded in a sqlite rpmdb by rpm itself, the same header blobs in a Berkeley
DB hash file written by Berkeley DB's own db5.3_load (Debian's rpm cannot write its old BDB backend), Go binaries
built by Debian's Go toolchain and the third-party Go binaries on this machine, the jars of libcommons-lang3-java
and every installed gemspec. cargo-auditable binaries cannot be made here (no Rust toolchain): those tests write
an ELF file with a `.dep-v0` section in the exact on-disk format. No ndb (SUSE) sample can be made: not read.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from portcullis.collect.inventory.go import parse_go_binary, parse_modinfo, read_build_info
from portcullis.collect.inventory.java import MAX_DEPTH, parse_jar
from portcullis.collect.inventory.rpm import bdb_hash_values, parse_header, parse_rpmdb_bdb, parse_rpmdb_sqlite
from portcullis.collect.inventory.ruby import is_gemspec_path, parse_gemspec
from portcullis.collect.inventory.rust import elf_section, parse_rust_binary
from portcullis.model.vuln import Ecosystem, OsRelease

COMMONS_LANG3 = Path("/usr/share/java/commons-lang3-3.12.0.jar")
CDI_API = Path("/usr/share/java/cdi-api-1.2.jar")  # pom <licenses> and an OSGi Bundle-License URL
ERROR_PRONE = Path("/usr/share/java/error-prone-annotations-2.18.0.jar")  # pom <licenses> named "Apache 2.0"
RACK_GEMSPEC = Path("/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec")
ROCKY = OsRelease(id="rocky", version_id="9.3")
SAMPLES = "`make programs`"


def _need(tool_or_path: str) -> None:
    present = Path(tool_or_path).exists() if tool_or_path.startswith("/") else shutil.which(tool_or_path)
    if not present:
        pytest.skip(f"{tool_or_path} is absent; run {SAMPLES} (as root) to install the real samples")


# --- rpm ----------------------------------------------------------------------------------------------------


def _build_rpmdb(tmp: Path, packages: list[tuple[str, str, str, str | None]]) -> bytes:
    """Build each (name, version, release, epoch) with rpmbuild and record it in a fresh sqlite rpmdb with rpm."""
    _need("rpmbuild")
    dbpath = tmp / "db"
    dbpath.mkdir()
    rpm = ["rpm", "--dbpath", str(dbpath), "--define", "_db_backend sqlite"]
    subprocess.run([*rpm, "--initdb"], check=True, capture_output=True)
    for name, version, release, epoch in packages:
        spec = tmp / f"{name}.spec"
        spec.write_text(
            f"Name: {name}\nVersion: {version}\nRelease: {release}\n"
            + (f"Epoch: {epoch}\n" if epoch else "")
            + "Summary: sample\nLicense: MIT\nBuildArch: noarch\n%description\nsample\n%files\n"
        )
        top = tmp / "top"
        subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)], check=True, capture_output=True)
        [built] = (top / "RPMS" / "noarch").glob(f"{name}-*.rpm")
        subprocess.run([*rpm, "-i", "--nodeps", "--justdb", str(built)], check=True, capture_output=True)
    return (dbpath / "rpmdb.sqlite").read_bytes()


def test_rpmdb_sqlite_written_by_rpm(tmp_path: Path) -> None:
    data = _build_rpmdb(tmp_path, [("portcullis-a", "1.2.3", "4.el9", "2"), ("portcullis-b", "0.9", "1.el9", None)])
    inventory = parse_rpmdb_sqlite(data, release=ROCKY)
    assert inventory.skipped == []
    by_name = {p.name: p for p in inventory.packages}
    assert set(by_name) == {"portcullis-a", "portcullis-b"}
    a, b = by_name["portcullis-a"], by_name["portcullis-b"]
    assert (a.ecosystem, a.version, a.arch) == (Ecosystem.RPM, "2:1.2.3-4.el9", "noarch")
    assert a.purl == (
        "pkg:rpm/rocky/portcullis-a@1.2.3-4.el9?arch=noarch&distro=rocky-9.3&epoch=2"
        "&upstream=portcullis-a-1.2.3-4.el9.src.rpm"
    )
    assert b.version == "0.9-1.el9" and "epoch" not in b.purl
    assert a.location == "var/lib/rpm/rpmdb.sqlite"


def test_rpm_header_damage_is_reported_per_package(tmp_path: Path) -> None:
    data = _build_rpmdb(tmp_path, [("portcullis-a", "1.0", "1", None), ("portcullis-b", "2.0", "1", None)])
    work = tmp_path / "copy.sqlite"
    work.write_bytes(data)
    conn = sqlite3.connect(work)
    conn.execute("PRAGMA journal_mode=DELETE")
    [(hnum, blob)] = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum LIMIT 1").fetchall()
    conn.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (blob[:40], hnum))  # truncated header
    conn.commit()
    conn.close()
    inventory = parse_rpmdb_sqlite(work.read_bytes())
    assert [p.name for p in inventory.packages] == ["portcullis-b"]
    [problem] = inventory.skipped
    assert f"header {hnum}:" in problem and "claims" in problem


def test_rpmdb_that_is_not_sqlite() -> None:
    inventory = parse_rpmdb_sqlite(b"\x00\x06\x15\x61" + b"\x00" * 4000)  # a BerkeleyDB-like start
    assert inventory.packages == []
    assert "not a readable sqlite rpmdb" in inventory.skipped[0]


def _bdb_from(sqlite_rpmdb: bytes, tmp: Path, page_size: int) -> bytes:
    """The same headers in a Berkeley DB hash file written by Berkeley DB itself (db5.3_load), keyed like rpm's
    pre-4.16 `Packages`: 4-byte instance numbers, record 0 holding the next-instance counter."""
    _need("db5.3_load")
    source = tmp / "rpmdb.sqlite"
    source.write_bytes(sqlite_rpmdb)
    conn = sqlite3.connect(source)
    rows = conn.execute("SELECT hnum, blob FROM Packages").fetchall()
    conn.close()

    def escaped(data: bytes) -> str:  # db_load -T text: every byte as a backslash and two hex digits
        return "".join(f"\\{byte:02x}" for byte in data)

    lines = [escaped(struct.pack("<I", 0)), escaped(struct.pack("<I", len(rows) + 1))]
    for hnum, blob in rows:
        lines += [escaped(struct.pack("<I", hnum)), escaped(blob)]
    out = tmp / f"Packages-{page_size}"
    subprocess.run(
        ["db5.3_load", "-T", "-t", "hash", "-c", f"db_pagesize={page_size}", str(out)],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
    )
    return out.read_bytes()


def test_rpmdb_berkeley_db_written_by_berkeley_db(tmp_path: Path) -> None:
    wanted = [(f"portcullis-{n}", f"1.{n}", f"{n}.el8", str(n) if n % 2 else None) for n in range(6)]
    sqlite_db = _build_rpmdb(tmp_path, wanted)
    expected = sorted((p.name, p.version, p.purl) for p in parse_rpmdb_sqlite(sqlite_db, release=ROCKY).packages)
    assert len(expected) == 6
    for page_size in (4096, 512):  # 512: every header spans a chain of overflow pages
        data = _bdb_from(sqlite_db, tmp_path, page_size)
        inventory = parse_rpmdb_bdb(data, release=ROCKY)
        assert inventory.skipped == []
        assert sorted((p.name, p.version, p.purl) for p in inventory.packages) == expected
        assert {p.location for p in inventory.packages} == {"var/lib/rpm/Packages"}


def test_berkeley_db_damage(tmp_path: Path) -> None:
    sqlite_db = _build_rpmdb(tmp_path, [("portcullis-a", "1.0", "1", None), ("portcullis-b", "2.0", "1", None)])
    data = _bdb_from(sqlite_db, tmp_path, 512)
    assert "magic" in parse_rpmdb_bdb(b"\x00" * 4096).skipped[0]
    # break one header's overflow chain: point its first overflow page at a page number past the end of the file
    records, problems = bdb_hash_values(data)
    assert problems == [] and len(records) == 3
    page_size = 512
    chain_starts = [
        page
        for page in range(1, len(data) // page_size)
        if data[page * page_size + 25] == 7 and struct.unpack_from("<I", data, page * page_size + 12)[0] == 0
    ]
    assert len(chain_starts) == 2  # one chain per header (first pages have no previous page)
    victim = chain_starts[0] * page_size
    broken = data[: victim + 16] + struct.pack("<I", 10_000) + data[victim + 20 :]  # its next-page pointer
    inventory = parse_rpmdb_bdb(broken)
    assert len(inventory.packages) == 1  # the other package is still listed
    [problem] = inventory.skipped
    assert "overflow chain breaks at page 10000" in problem and problem.endswith("that package is not listed")


def test_rpm_header_format_by_hand() -> None:
    """The header layout itself: index entries pointing into the data store (string, int32, string array)."""
    store = b"bash\x00" + b"\x00\x00\x00" + struct.pack(">i", 1) + b"5.1.8\x00x86_64\x00noarch\x00"
    index = [(1000, 6, 0, 1), (1003, 4, 8, 1), (1001, 6, 12, 1), (1022, 8, 18, 2)]
    blob = struct.pack(">II", len(index), len(store)) + b"".join(struct.pack(">iIiI", *e) for e in index) + store
    assert parse_header(blob) == {1000: "bash", 1003: 1, 1001: "5.1.8", 1022: "x86_64"}


# --- Go -----------------------------------------------------------------------------------------------------


def _go_build(tmp: Path) -> Path:
    """A tiny program with one dependency replaced by a local directory, built offline by the real toolchain."""
    _need("go")
    (tmp / "dep").mkdir()
    (tmp / "dep" / "go.mod").write_text("module example.com/portcullis/dep\n\ngo 1.19\n")
    (tmp / "dep" / "dep.go").write_text('package dep\n\nfunc Word() string { return "portcullis" }\n')
    (tmp / "app").mkdir()
    (tmp / "app" / "go.mod").write_text(
        "module example.com/portcullis/app\n\ngo 1.19\n\n"
        "require example.com/portcullis/dep v1.4.2\n\n"
        "replace example.com/portcullis/dep v1.4.2 => ../dep\n"
    )
    (tmp / "app" / "main.go").write_text(
        'package main\n\nimport "example.com/portcullis/dep"\n\nfunc main() { println(dep.Word()) }\n'
    )
    env = {**os.environ, "GOCACHE": str(tmp / "cache"), "GOPATH": str(tmp / "gopath"), "GOPROXY": "off"}
    env["GOFLAGS"] = "-mod=mod"
    subprocess.run(["go", "build", "-o", str(tmp / "app.bin"), "."], cwd=tmp / "app", env=env, check=True)
    return tmp / "app.bin"


def test_go_binary_built_here(tmp_path: Path) -> None:
    binary = _go_build(tmp_path)
    version = subprocess.run(["go", "version", binary], capture_output=True, text=True, check=True).stdout
    go_release = version.split()[-1].removeprefix("go")  # "<path>: go1.19.8"
    inventory = parse_go_binary(binary.read_bytes(), "usr/local/bin/app")
    assert inventory.skipped == []
    found = {(p.name, p.version) for p in inventory.packages}
    stdlib = next(p for p in inventory.packages if p.name == "stdlib")
    assert stdlib.version == f"v{go_release}" and stdlib.purl == f"pkg:golang/stdlib@v{go_release}"
    assert ("example.com/portcullis/app", "(devel)") in found  # built from a work tree: the toolchain's own word
    # replaced by a local directory: the module name the program imports, at the directory's (devel) version
    assert ("example.com/portcullis/dep", "(devel)") in found
    assert all(p.ecosystem is Ecosystem.GO and p.location == "usr/local/bin/app" for p in inventory.packages)
    assert len(inventory.packages) == 3


def test_go_build_info_lines() -> None:
    text = (
        "path\texample.com/cmd/tool\n"
        "mod\texample.com/cmd\tv1.2.0\th1:abc=\n"
        "dep\tgolang.org/x/net\tv0.17.0\th1:def=\n"
        "dep\tgithub.com/old/name\tv1.0.0\n"
        "=>\tgithub.com/new/name\tv1.0.1\th1:ghi=\n"
        "build\tGOOS=linux\n"
    )
    info = parse_modinfo(text, "go1.21.3")
    assert info.path == "example.com/cmd/tool" and info.main is not None and info.main.version == "v1.2.0"
    assert [(d.path, d.version) for d in info.deps] == [
        ("golang.org/x/net", "v0.17.0"),
        ("github.com/new/name", "v1.0.1"),
    ]
    assert info.settings == {"GOOS": "linux"}


def test_not_a_go_binary_and_truncated_build_info() -> None:
    assert parse_go_binary(b"\x7fELF" + b"\x00" * 200, "bin/true").packages == []
    assert parse_go_binary(b"\x7fELF" + b"\x00" * 200, "bin/true").skipped == []
    header = b"\xff Go buildinf:" + bytes([8, 2]) + b"\x00" * 16
    truncated = header + bytes([0x7F]) + b"go1"  # claims a 127-byte version string
    inventory = parse_go_binary(truncated, "bin/broken")
    assert inventory.packages == [] and "runs past the end" in inventory.skipped[0]
    old = b"\xff Go buildinf:" + bytes([8, 0]) + b"\x00" * 16
    assert "before 1.18" in parse_go_binary(old, "bin/old").skipped[0]


def test_read_build_info_sees_the_real_section(tmp_path: Path) -> None:
    binary = _go_build(tmp_path).read_bytes()
    section = elf_section(binary, ".go.buildinfo")  # the ELF reader agrees with the magic search
    assert section is not None and section.startswith(b"\xff Go buildinf:")
    info = read_build_info(binary)
    assert info is not None and info.path == "example.com/portcullis/app"


def _go_listing(binary: str) -> tuple[str, list[tuple[str, str]]]:
    """The Go version and dependencies as the toolchain's own `go version -m` reports them, with replacements
    applied the way the parser documents (a local directory keeps the required module's name)."""
    lines = subprocess.run(["go", "version", "-m", binary], capture_output=True, text=True, check=True).stdout
    go_version = lines.splitlines()[0].rsplit(" ", 1)[1]
    deps: list[tuple[str, str]] = []
    for line in lines.splitlines()[1:]:
        fields = line.strip("\t").split("\t")
        if fields[0] == "dep":
            deps.append((fields[1], fields[2]))
        elif fields[0] == "=>":
            name = deps[-1][0] if fields[1].startswith((".", "/")) else fields[1]
            deps[-1] = (name, fields[2])
    return go_version, deps


def test_go_binaries_on_this_machine_agree_with_go_version_m() -> None:
    """Real third-party Go binaries (the Docker engine and containerd, each with dozens of dependencies and
    replacements) read exactly as the Go toolchain reads them."""
    _need("go")
    binaries = [b for b in ("/usr/sbin/dockerd", "/usr/bin/containerd") if Path(b).is_file()]
    if not binaries:
        pytest.skip("no Go binaries on this machine")
    for binary in binaries:
        go_version, deps = _go_listing(binary)
        inventory = parse_go_binary(Path(binary).read_bytes(), binary)
        assert inventory.skipped == [], binary
        found = [(p.name, p.version) for p in inventory.packages]
        assert found[0] == ("stdlib", "v" + go_version.removeprefix("go")), binary
        info = read_build_info(Path(binary).read_bytes())
        assert info is not None and [(d.path, d.version) for d in info.deps] == deps, binary


# --- Java ---------------------------------------------------------------------------------------------------


def test_real_debian_jar() -> None:
    _need(str(COMMONS_LANG3))
    inventory = parse_jar(COMMONS_LANG3.read_bytes(), "usr/share/java/commons-lang3-3.12.0.jar")
    assert inventory.skipped == []
    [package] = inventory.packages
    assert (package.ecosystem, package.name, package.version) == (
        Ecosystem.MAVEN,
        "org.apache.commons:commons-lang3",
        "3.12.0",
    )
    assert package.purl == "pkg:maven/org.apache.commons/commons-lang3@3.12.0"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_nested_jars_in_a_spring_boot_style_archive() -> None:
    _need(str(COMMONS_LANG3))
    real = COMMONS_LANG3.read_bytes()
    app = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nMain-Class: example.App\n",
            "META-INF/maven/com.example/app/pom.properties": b"#generated\ngroupId=com.example\n"
            b"artifactId=app\nversion=0.1.0\n",
            "BOOT-INF/lib/commons-lang3-3.12.0.jar": real,
            "BOOT-INF/lib/copy/commons-lang3-3.12.0.jar": real,  # the same artifact twice: listed once
        }
    )
    inventory = parse_jar(app, "app/app.jar")
    assert [(p.name, p.version, p.location) for p in inventory.packages] == [
        ("com.example:app", "0.1.0", "app/app.jar"),
        ("org.apache.commons:commons-lang3", "3.12.0", "app/app.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar"),
    ]
    assert inventory.skipped == []


def test_jar_nesting_is_bounded_and_damage_reported() -> None:
    inner = _zip({"META-INF/maven/g/deep/pom.properties": b"groupId=g\nartifactId=deep\nversion=1\n"})
    for level in range(MAX_DEPTH + 1):
        inner = _zip({f"lib/level{level}.jar": inner})
    inventory = parse_jar(inner, "deep.jar")
    assert inventory.packages == []
    assert any("nested deeper than" in s for s in inventory.skipped)
    assert "not a readable zip archive" in parse_jar(b"PK\x03\x04 broken", "bad.jar").skipped[0]


def test_every_debian_jar_on_this_machine() -> None:
    """Each real jar gives its coordinates or a reason; a jar with a pom.properties always gives its coordinates."""
    jars = [j for j in Path("/usr/share/java").glob("*.jar") if not j.is_symlink()]
    if not jars:
        pytest.skip(f"no jars in /usr/share/java; run {SAMPLES}")
    for jar in jars:
        data = jar.read_bytes()
        inventory = parse_jar(data, str(jar))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            poms = [n for n in archive.namelist() if n.startswith("META-INF/maven/") and n.endswith("pom.properties")]
        assert bool(inventory.packages) or inventory.skipped, jar
        assert len(inventory.packages) >= (1 if poms else 0), jar
        assert all(p.purl.startswith("pkg:maven/") and ":" in p.name for p in inventory.packages), jar


def test_manifest_only_jar() -> None:
    with_group = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Vendor-Id: org.example\n"
            b"Implementation-Title: widget\nImplementation-Version: 2.5\n"
        }
    )
    [package] = parse_jar(with_group, "widget.jar").packages
    assert (package.name, package.version) == ("org.example:widget", "2.5")
    no_group = _zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Title: Some Tool\n"})
    inventory = parse_jar(no_group, "tool.jar")
    assert inventory.packages == [] and "names no Maven group (Some Tool)" in inventory.skipped[0]


def test_real_jars_declare_their_licences() -> None:
    """A pom's <licenses> gives the licence; a pom inheriting it from a parent pom outside the jar declares none."""
    for jar, expected in ((CDI_API, "Apache-2.0"), (ERROR_PRONE, "Apache-2.0"), (COMMONS_LANG3, "unknown")):
        _need(str(jar))
        [package] = parse_jar(jar.read_bytes(), jar.name).packages
        assert package.license == expected, jar


def test_jar_licence_sources_and_their_limits() -> None:
    pom = (
        b'<project xmlns="http://maven.apache.org/POM/4.0.0"><licenses>'
        b"<license><name>Eclipse Public License 2.0</name></license>"
        b"<license><name>Some Custom Terms</name><url>https://www.apache.org/licenses/LICENSE-2.0.txt</url></license>"
        b"</licenses></project>"
    )
    coordinates = b"groupId=g\nartifactId=a\nversion=1\n"
    both = _zip({"META-INF/maven/g/a/pom.properties": coordinates, "META-INF/maven/g/a/pom.xml": pom})
    [package] = parse_jar(both, "a.jar").packages
    assert package.license == "EPL-2.0 AND Apache-2.0"  # Maven lists licences that all apply; a known URL wins
    bundle = (
        b'Manifest-Version: 1.0\nBundle-License: MIT;link="https://x/y", https://opensource.org/licenses/BSD-2-Clause\n'
    )
    only_manifest = _zip({"META-INF/MANIFEST.MF": bundle, "META-INF/maven/g/a/pom.properties": coordinates})
    assert parse_jar(only_manifest, "b.jar").packages[0].license == "MIT AND BSD-2-Clause"
    # the manifest speaks for the archive: with two artifacts inside it names neither
    shaded = _zip(
        {
            "META-INF/MANIFEST.MF": bundle,
            "META-INF/maven/g/a/pom.properties": coordinates,
            "META-INF/maven/g/b/pom.properties": b"groupId=g\nartifactId=b\nversion=2\n",
        }
    )
    assert [p.license for p in parse_jar(shaded, "c.jar").packages] == ["unknown", "unknown"]
    # an entity-laden pom is refused before parsing: the coordinates stay, the licence is unknown
    hostile = (
        b'<!DOCTYPE p [<!ENTITY x "MIT">]><project><licenses><license><name>&x;</name></license></licenses></project>'
    )
    evil = _zip({"META-INF/maven/g/a/pom.properties": coordinates, "META-INF/maven/g/a/pom.xml": hostile})
    [package] = parse_jar(evil, "d.jar").packages
    assert (package.name, package.license) == ("g:a", "unknown")


# --- Ruby ---------------------------------------------------------------------------------------------------


def test_real_debian_gemspec() -> None:
    _need(str(RACK_GEMSPEC))
    location = "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"
    assert is_gemspec_path(location) and not is_gemspec_path("src/rack/rack.gemspec")
    [package] = parse_gemspec(RACK_GEMSPEC.read_text(), location).packages
    assert (package.ecosystem, package.name, package.version, package.purl) == (
        Ecosystem.RUBYGEMS,
        "rack",
        "2.2.22",
        "pkg:gem/rack@2.2.22",
    )
    assert package.license == "MIT"


def test_gemspec_licences_are_alternatives() -> None:
    spec = 's.name = "g".freeze\ns.version = "1.0"\ns.licenses = ["MIT".freeze, "Ruby".freeze]\n'
    assert parse_gemspec(spec, "g-1.0.gemspec").packages[0].license == "MIT OR Ruby"
    single = "s.name = 'g'\ns.version = '1.0'\ns.license = 'Apache 2.0'\n"
    assert parse_gemspec(single, "g-1.0.gemspec").packages[0].license == "Apache-2.0"
    bare = "s.name = 'g'\ns.version = '1.0'\n"
    assert parse_gemspec(bare, "g-1.0.gemspec").packages[0].license == "unknown"


def test_every_installed_gemspec_on_this_machine() -> None:
    """Ruby's bundled default gems and Debian's ruby-* gems: RubyGems names each file <name>-<version>.gemspec."""
    specs = [
        *Path("/usr/lib/ruby/gems").glob("*/specifications/**/*.gemspec"),
        *Path("/usr/share/rubygems-integration").glob("*/specifications/*.gemspec"),
    ]
    if not specs:
        pytest.skip(f"no installed gems; run {SAMPLES}")
    for spec in specs:
        assert is_gemspec_path(str(spec)), spec
        [package] = parse_gemspec(spec.read_text(), str(spec)).packages
        assert spec.name == f"{package.name}-{package.version}.gemspec"


def test_gemspec_without_literals() -> None:
    inventory = parse_gemspec("Gem::Specification.new do |s|\n  s.name = compute_name\nend\n", "x.gemspec")
    assert inventory.packages == [] and "no literal name/version" in inventory.skipped[0]


# --- Rust (cargo-auditable): no sample can be built here; an ELF file in the exact format ----------------------


def _elf64_with_section(name: str, content: bytes) -> bytes:
    """A minimal little-endian ELF64 file: header, the section's bytes, the section-name table, three section
    headers (null, the named section, .shstrtab) — the layout `readelf -S` reads."""
    names = b"\x00" + name.encode() + b"\x00.shstrtab\x00"
    content_at = 64
    names_at = content_at + len(content)
    table_at = (names_at + len(names) + 7) // 8 * 8
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, table_at, 0, 64, 0, 0, 64, 3, 2)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, content_at, len(content), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 2 + len(name), 3, 0, 0, names_at, len(names), 0, 0, 1, 0),
    ]
    body = header + content + names
    return body + b"\x00" * (table_at - len(body)) + b"".join(sections)


AUDITABLE = {
    "packages": [
        {"name": "tool", "version": "0.1.0", "source": "local", "root": True, "dependencies": [1, 2]},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
        {"name": "patched", "version": "0.3.0", "source": "git"},
    ]
}


def test_cargo_auditable_section() -> None:
    binary = _elf64_with_section(".dep-v0", zlib.compress(json.dumps(AUDITABLE).encode()))
    inventory = parse_rust_binary(binary, "usr/bin/tool")
    [crate] = inventory.packages
    assert (crate.ecosystem, crate.name, crate.version, crate.purl) == (
        Ecosystem.CARGO,
        "smallvec",
        "1.6.0",
        "pkg:cargo/smallvec@1.6.0",
    )
    assert sorted(inventory.skipped) == [
        "usr/bin/tool: patched 0.3.0 comes from 'git', not crates.io",
        "usr/bin/tool: tool 0.1.0 comes from 'local', not crates.io",
    ]


def test_rust_section_damage_and_plain_binaries() -> None:
    assert parse_rust_binary(_elf64_with_section(".text", b"\x90" * 16), "usr/bin/plain").packages == []
    broken = parse_rust_binary(_elf64_with_section(".dep-v0", b"not zlib"), "usr/bin/tool")
    assert "not zlib-compressed JSON" in broken.skipped[0]
    torn = _elf64_with_section(".dep-v0", zlib.compress(b"{}"))[:100]  # section table cut off
    assert "ELF:" in parse_rust_binary(torn, "usr/bin/torn").skipped[0]
