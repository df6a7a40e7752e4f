"""ssh:// engines as the docker CLI reaches them: the system ssh runs `docker system dial-stdio` on the remote host.

The docker SDK's own ssh transport needs paramiko even when told to use the ssh client; a private unix socket whose
every connection becomes the stdin and stdout of its own ssh process needs nothing but ssh.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

from portcullis.collect import CollectionError

# BatchMode: a prompt for a password or an unknown host key fails at once instead of waiting on a terminal.
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T")


class SSHRelay:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if not parsed.hostname:
            raise CollectionError(f"{url!r} names no host (expected ssh://[USER@]HOST[:PORT])")
        if shutil.which("ssh") is None:
            raise CollectionError(f"{url} needs the ssh client, which is not installed")
        self.argv = ["ssh", *SSH_OPTIONS]
        if parsed.username:
            self.argv += ["-l", parsed.username]
        if parsed.port:
            self.argv += ["-p", str(parsed.port)]
        self.argv += ["--", parsed.hostname, "docker system dial-stdio"]
        self.directory = Path(tempfile.mkdtemp(prefix="pc-ssh-"))
        self.socket_path = self.directory / "docker.sock"
        self.log_path = self.directory / "ssh.log"
        self.children: list[subprocess.Popen[bytes]] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.socket_path))
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._serve, name="ssh-relay", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn, self.log_path.open("ab") as log:
                # ssh gets its own copies of the descriptors; ours close when this block ends
                child = subprocess.Popen(
                    self.argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=log, start_new_session=True
                )
            self.children.append(child)

    def last_error(self) -> str:
        """What ssh last said on stderr (why the login or the remote docker failed), or ''."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above on Linux
        self.listener.close()
        self.thread.join(timeout=5)  # no new ssh after this
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
