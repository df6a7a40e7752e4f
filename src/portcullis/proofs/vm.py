"""Boot the overhead workload agent in a QEMU virtual machine: `boot(conn, image, accel)` → the agent's address.

The guest is made of parts this host already trusts, nothing downloaded from elsewhere:
- kernel: Debian's own kernel package (the one `linux-image-amd64` points at), unpacked with `dpkg-deb -x` into a
  cache directory (from apt's archive cache, else `apt-get download`) and indexed there with `depmod -b`, so the
  host's /boot, /lib/modules and boot loader are never touched; its virtio and ext4 modules come from the same
  package;
- root: the python image, `docker export`ed from a labelled, never-started container and written as an initramfs
  (so the guest's root, the "layer" disk, lives in the guest's RAM), plus a static busybox, the modules and an init
  that brings up the network, mounts the volume and starts the agent;
- volume: a raw ext4 image on this host's disk, attached with virtio-blk and mounted at /vol;
- network: QEMU's user-mode stack (slirp) forwarding 127.0.0.1:<port> on the host to the agent. That is the only
  path in: a user-mode NIC has no address the host can reach and the guest cannot share the host's network.

KVM is used only when `/dev/kvm` can boot a stock kernel; TCG (software emulation) is a separate, explicitly named
runtime. The QEMU process and every temporary file are removed when the block ends, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import docker.errors

from portcullis.collect.engine import EngineConnection
from portcullis.collect.sandbox import sandbox
from portcullis.proofs.overhead import Agent, OverheadError, free_port, probe_source
from portcullis.proofs.overhead_results import PythonInfo

QEMU = "qemu-system-x86_64"
KERNEL_META_PACKAGE = "linux-image-amd64"
APT_ARCHIVES = Path("/var/cache/apt/archives")
GUEST_PORT = 7000
GUEST_MEMORY_MIB = 1024  # the root (about 170 MiB for the python image) lives in it, next to the workloads
VOLUME_MIB = 512  # room for the standard plan's 128 MiB disk workload
BOOT_TIMEOUT = 300.0  # TCG on a loaded 2-CPU host: the kernel alone takes 8 s, unpacking the root much longer
# Loaded in this order (each after what it needs); modules.dep adds whatever else this kernel build requires.
GUEST_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "crc32c_generic", "ext4")
CONSOLE_TAIL_LINES = 15
BUSYBOX = "/bin/busybox"
COMMAND_STARTED = b"portcullis: starting /portcullis/run"  # INIT prints it just before it starts the command
INIT = """#!/portcullis/busybox sh
B=/portcullis/busybox
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for module in /portcullis/modules/*.ko; do
    $B insmod "$module" || echo "portcullis: insmod $module failed"
done
$B ip link set lo up
$B ip link set eth0 up || { echo "portcullis: no network device"; exit 1; }
$B ip addr add 10.0.2.15/24 dev eth0
$B ip route add default via 10.0.2.2
$B mkdir -p /vol
# Without its volume the guest's disk numbers would be RAM numbers: stop (the kernel panics, QEMU exits).
$B mount -t ext4 /dev/vda /vol || { echo "portcullis: the volume did not mount"; exit 1; }
echo "portcullis: starting /portcullis/run"
# Not exec: as PID 1 the shell's wait also reaps the orphans the command leaves (a fork storm leaves thousands).
# When the command ends, so does init: the kernel panics and QEMU (-no-reboot) exits.
$B sh /portcullis/run &
wait $!
"""


class Accel(StrEnum):
    kvm = "kvm"
    tcg = "tcg"


class VmUnavailable(Exception):
    """The VM cannot boot here; the message says why (and shows the end of the console when it got that far)."""


@dataclass(frozen=True)
class GuestKernel:
    version: str
    vmlinuz: Path
    modules: Path  # lib/modules/<version> of the unpacked package


@dataclass
class Guest:
    agent: Agent  # through QEMU's port forward on 127.0.0.1
    python: PythonInfo
    kernel: GuestKernel
    qemu_version: str
    memory_mib: int = GUEST_MEMORY_MIB


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "portcullis" / "vm"


def _run(command: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VmUnavailable(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise VmUnavailable(f"{what} failed: {last}")
    return result.stdout


def kernel_package() -> str:
    """The versioned kernel package Debian's meta package depends on, e.g. linux-image-6.1.0-57-amd64."""
    depends = _run(["apt-cache", "depends", KERNEL_META_PACKAGE], f"apt-cache depends {KERNEL_META_PACKAGE}")
    for line in depends.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-"):
            return name
    raise VmUnavailable(f"{KERNEL_META_PACKAGE} names no kernel package here")


def guest_kernel(progress: Callable[[str], None]) -> GuestKernel:
    """Debian's kernel, unpacked once into the cache directory (never installed on the host)."""
    package = kernel_package()
    version = package.removeprefix("linux-image-")
    root = cache_dir() / package
    kernel = GuestKernel(version, root / "boot" / f"vmlinuz-{version}", root / "lib" / "modules" / version)
    if kernel.vmlinuz.is_file() and (kernel.modules / "modules.dep").is_file():
        return kernel
    progress(f"unpacking the guest kernel {package} into {root}…")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=root.parent) as work:
        cached = sorted(APT_ARCHIVES.glob(f"{package}_*_amd64.deb"))
        if not cached:
            _run(["apt-get", "download", package], f"apt-get download {package}", cwd=Path(work))
            cached = sorted(Path(work).glob(f"{package}_*.deb"))
        if not cached:
            raise VmUnavailable(f"apt-get download {package} left no package file")
        unpacked = Path(work) / "root"
        _run(["dpkg-deb", "-x", str(cached[-1]), str(unpacked)], f"dpkg-deb -x {cached[-1].name}")
        # The package ships no modules.dep (its postinst runs depmod on the host): write it for the unpacked tree.
        _run(["depmod", "-b", str(unpacked), version], f"depmod for {package}")
        shutil.rmtree(root, ignore_errors=True)
        unpacked.rename(root)  # whole or not at all: a half-unpacked kernel is never found as cached
    if not kernel.vmlinuz.is_file():
        raise VmUnavailable(f"{package} has no boot/vmlinuz-{version}")
    return kernel


def module_files(kernel: GuestKernel) -> list[Path]:
    """The .ko files of GUEST_MODULES and everything they depend on, dependencies first; built-in ones need none."""
    depends: dict[str, list[str]] = {}
    for line in (kernel.modules / "modules.dep").read_text(encoding="utf-8").splitlines():
        module, _, needs = line.partition(":")
        depends[module] = needs.split()
    by_name = {Path(path).name.removesuffix(".ko").replace("-", "_"): path for path in depends}
    ordered: list[str] = []

    def visit(path: str) -> None:
        # modules.dep lists every indirect dependency too, deepest last: load them in reverse, then the module.
        for needed in reversed(depends[path]):
            if needed not in ordered:
                visit(needed)
        if path not in ordered:
            ordered.append(path)

    for name in GUEST_MODULES:
        if name in by_name:
            visit(by_name[name])
    return [kernel.modules / path for path in ordered]


class Cpio:
    """A "newc" cpio archive, the format the kernel unpacks as its initramfs."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.inode = 0

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        self.inode += 1
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self.out.write(header + encoded + b"\0" * (-(len(header) + len(encoded)) % 4))
        self.out.write(data + b"\0" * (-len(data) % 4))

    def add_tar(self, archive: tarfile.TarFile) -> None:
        for member in archive:
            name = member.name.removeprefix("./").strip("/")
            if not name:
                continue
            permissions = member.mode & 0o7777
            if member.isdir():
                self.add(name, stat.S_IFDIR | permissions)
            elif member.issym():
                self.add(name, stat.S_IFLNK | 0o777, member.linkname.encode())
            elif member.isfile() or member.islnk():  # a hard link becomes a copy: the RAM root has room
                source = archive.extractfile(member)
                self.add(name, stat.S_IFREG | permissions, source.read() if source else b"")
            elif member.ischr() or member.isblk():
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                self.add(name, kind | permissions, rdev=(member.devmajor, member.devminor))

    def close(self) -> None:
        self.add("TRAILER!!!", 0)


def write_root(conn: EngineConnection, image: str, kernel: GuestKernel, work: Path) -> Path:
    """The image's file system plus busybox, the modules and /init, as an uncompressed initramfs. What the guest
    runs is not in it: `instance_initramfs` appends that, so one root serves every instance of the image."""
    exported = work / "root.tar"
    with sandbox(conn, "vm") as box:
        container = box.create(image, ["true"])  # never started: only its file system is read
        try:
            with exported.open("wb") as out:
                for chunk in conn.api.export(container):
                    out.write(chunk)
        except docker.errors.APIError as exc:
            raise OverheadError(f"the engine did not export {image}: {exc.explanation or exc}") from None
    target = work / f"root-{len(list(work.glob('root-*.cpio')))}.cpio"  # one per image
    with target.open("wb") as out, tarfile.open(exported) as archive:
        cpio = Cpio(out)
        cpio.add_tar(archive)
        cpio.add("dev", stat.S_IFDIR | 0o755)
        cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))  # init's output before devtmpfs is mounted
        cpio.add("portcullis", stat.S_IFDIR | 0o755)
        cpio.add("portcullis/busybox", stat.S_IFREG | 0o755, Path(BUSYBOX).read_bytes())
        cpio.add("portcullis/modules", stat.S_IFDIR | 0o755)
        for index, module in enumerate(module_files(kernel)):
            cpio.add(f"portcullis/modules/{index:02d}-{module.name}", stat.S_IFREG | 0o644, module.read_bytes())
        cpio.add("init", stat.S_IFREG | 0o755, INIT.encode())
        cpio.close()
    exported.unlink()
    return target


def instance_initramfs(root: Path, command: Sequence[str], files: Mapping[str, bytes], target: Path) -> Path:
    """`root` followed by a second archive holding /portcullis/run (the command) and `files` under /portcullis:
    the kernel unpacks concatenated archives in turn."""
    shutil.copyfile(root, target)
    with target.open("ab") as out:
        cpio = Cpio(out)
        for name, data in files.items():
            cpio.add(f"portcullis/{name}", stat.S_IFREG | 0o644, data)
        cpio.add("portcullis/run", stat.S_IFREG | 0o755, f"exec {shlex.join(command)}\n".encode())
        cpio.close()
    return target


def write_volume(work: Path) -> Path:
    volume = work / "volume.img"
    with volume.open("wb") as out:
        out.truncate(VOLUME_MIB << 20)
    _run(["mkfs.ext4", "-q", "-F", "-L", "portcullis-vol", str(volume)], "mkfs.ext4 on the volume image")
    return volume


def console_tail(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no console output)"
    tail = [line.strip() for line in lines if line.strip()][-CONSOLE_TAIL_LINES:]
    return " | ".join(tail) or "(no console output)"


def qemu_command(
    accel: Accel, kernel: GuestKernel, initramfs: Path, volume: Path, log: Path, forwards: Mapping[int, int],
    memory_mib: int, disk_cache: str,
) -> list[str]:  # fmt: skip
    hostfwd = "".join(f",hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in forwards.items())
    return [
        QEMU, "-accel", accel.value, "-cpu", "host" if accel is Accel.kvm else "max",
        "-m", str(memory_mib), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initramfs),
        "-append", "console=ttyS0 panic=-1 rdinit=/init",
        "-serial", f"file:{log}",
        "-netdev", f"user,id=net0{hostfwd}", "-device", "virtio-net-pci,netdev=net0",
        "-drive", f"file={volume},format=raw,if=virtio,cache={disk_cache}",
    ]  # fmt: skip


def wait_for_agent(agent: Agent, qemu: subprocess.Popen[bytes], work: Path, timeout: float) -> PythonInfo:
    """The agent's info once it answers. QEMU accepts a forwarded connection before the guest listens and holds it
    until the guest answers or refuses, so each try is short (the deadline holds) and no answer means "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        if qemu.poll() is not None:
            errors = console_tail(work / "qemu.err")
            raise VmUnavailable(
                f"the VM stopped (QEMU exit {qemu.returncode}: {errors}); console: {console_tail(work / 'console.log')}"
            )
        try:
            return PythonInfo.model_validate(
                agent.call("info", timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            )
        except (OSError, OverheadError):
            if time.monotonic() > deadline:
                console = console_tail(work / "console.log")
                waited = f"{timeout:.0f} s"
                raise VmUnavailable(f"the agent in the VM did not answer within {waited}; console: {console}") from None
            time.sleep(0.5)


@dataclass
class RunningVm:
    qemu: subprocess.Popen[bytes]
    work: Path  # its console log, QEMU's stderr, its initramfs and volume
    forwards: dict[int, int]  # guest port -> host port on 127.0.0.1

    def alive(self) -> bool:
        return self.qemu.poll() is None


@contextmanager
def run_vm(
    root: Path,
    kernel: GuestKernel,
    accel: Accel,
    command: Sequence[str],
    *,
    files: Mapping[str, bytes] | None = None,
    guest_ports: Sequence[int] = (),
    memory_mib: int = GUEST_MEMORY_MIB,
    cpuset: str | None = None,
    disk_cache: str = "writeback",
) -> Iterator[RunningVm]:
    """A VM booted from `root` running `command` (its init's child; the VM stops when it ends), with a fresh volume
    at /vol and each of `guest_ports` forwarded from 127.0.0.1; `cpuset` pins every QEMU thread, as --cpuset-cpus
    pins a container. `disk_cache="none"` makes the guest's O_DIRECT writes direct on the host too. QEMU and every
    file of the instance are gone when the block ends, on Ctrl-C and SIGTERM too."""
    work = Path(tempfile.mkdtemp(prefix="portcullis-vm-"))
    qemu: subprocess.Popen[bytes] | None = None
    try:
        initramfs = instance_initramfs(root, command, files or {}, work / "initramfs.cpio")
        volume, log = write_volume(work), work / "console.log"
        forwards = {guest: free_port() for guest in guest_ports}
        command = qemu_command(accel, kernel, initramfs, volume, log, forwards, memory_mib, disk_cache)
        if cpuset:
            command = ["taskset", "-c", cpuset, *command]
        with (work / "qemu.err").open("wb") as errors:
            qemu = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                start_new_session=True,  # Ctrl-C reaches Portcullis, which then stops QEMU itself
            )  # fmt: skip
        yield RunningVm(qemu, work, forwards)
    finally:
        if qemu is not None:
            qemu.kill()
            qemu.wait(timeout=30)
        _kill_qemu_of(work)
        shutil.rmtree(work, ignore_errors=True)


def qemu_version() -> str:
    version = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (version.stdout.splitlines() or ["QEMU"])[0]


@dataclass
class GuestRoots:
    """The guest kernel, and the root of each image, written once and shared by every VM of that image."""

    conn: EngineConnection
    kernel: GuestKernel
    work: Path
    progress: Callable[[str], None]
    roots: dict[str, Path] = field(default_factory=dict)

    def root(self, image: str) -> Path:
        if image not in self.roots:
            self.progress(f"writing {image} as a VM's initramfs…")
            self.roots[image] = write_root(self.conn, image, self.kernel, self.work)
        return self.roots[image]


@contextmanager
def guest_roots(conn: EngineConnection, progress: Callable[[str], None]) -> Iterator[GuestRoots]:
    """Guest roots written on demand; removed when the block ends."""
    if shutil.which(QEMU) is None:
        raise VmUnavailable(f"{QEMU} is not installed (Debian package qemu-system-x86)")
    kernel = guest_kernel(progress)
    work = Path(tempfile.mkdtemp(prefix="portcullis-vm-roots-"))
    try:
        yield GuestRoots(conn, kernel, work, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def boot(
    conn: EngineConnection,
    image: str,
    accel: Accel,
    progress: Callable[[str], None] = lambda message: None,
    boot_timeout: float = BOOT_TIMEOUT,
) -> Iterator[Guest]:
    """A VM running the overhead agent from `image`, reachable on 127.0.0.1; stopped and its files removed at the
    end."""
    with guest_roots(conn, progress) as roots:
        root, kernel = roots.root(image), roots.kernel
        progress(f"booting the VM ({accel.value}, kernel {kernel.version})…")
        agent_command = ["python3", "/portcullis/agent.py", str(GUEST_PORT), "0.0.0.0"]
        files = {"agent.py": probe_source().encode()}
        with run_vm(root, kernel, accel, agent_command, files=files, guest_ports=[GUEST_PORT]) as vm:
            agent = Agent(f"VM ({accel.value}) through its port forward", "127.0.0.1", vm.forwards[GUEST_PORT])
            python = wait_for_agent(agent, vm.qemu, vm.work, boot_timeout)
            yield Guest(agent, python, kernel, qemu_version())


def _kill_qemu_of(work: Path) -> None:
    """A signal that lands inside Popen, after the fork, leaves a QEMU nobody holds: find it by its files."""
    marker = str(work).encode() + b"/"
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:  # gone already, or not ours to read
            continue
