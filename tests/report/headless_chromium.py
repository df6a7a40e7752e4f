"""Drive headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe): stdlib only.

Chromium reads JSON commands from its fd 3 and writes replies and events to its fd 4, each message ended by a
NUL byte. One page target, attached in flat mode, is all the HTML tests need.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
    "--window-size=1280,900",
]
TIMEOUT = 30.0


class BrowserError(RuntimeError):
    pass


@dataclass
class Page:
    """One tab: commands go to its session; its console messages, exceptions and dialogs are kept."""

    browser: Browser
    target: str
    session: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def open(self, path: Path) -> None:
        self.browser.events.clear()
        self.send("Page.navigate", url=path.as_uri())
        self.browser.wait_for("Page.loadEventFired", self.session)

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        del self.browser.pages[self.session]

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person would make it."""
        box = self.evaluate(
            "(e => { e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            f" return [r.x + r.width / 2, r.y + r.height / 2, r.width]; }})({_element(selector)})"
        )
        x, y, width = box
        if not width:
            raise BrowserError(f"{selector} is not displayed")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Replace the field's text by typing: the page sees the same input event as from a keyboard."""
        self.evaluate(f"(e => {{ e.focus(); e.select(); }})({_element(selector)})")
        self.send("Input.insertText", text=text)


def _element(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)})"


def _pipe_on_3_and_4(commands: int, replies: int) -> None:
    os.dup2(commands, 3)
    os.dup2(replies, 4)
    # dup2 onto the same number keeps close-on-exec set.
    os.set_inheritable(3, True)
    os.set_inheritable(4, True)


class Browser:
    def __init__(self) -> None:
        if CHROMIUM is None:
            raise BrowserError("chromium is not installed")
        self._profile = tempfile.TemporaryDirectory(prefix="portcullis-chromium-")
        to_chromium, self._commands = os.pipe()
        self._replies, from_chromium = os.pipe()
        self._process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Chromium wants the pipe on fds 3 and 4 exactly; every other fd of ours is close-on-exec already.
            preexec_fn=lambda: _pipe_on_3_and_4(to_chromium, from_chromium),
            close_fds=False,
        )
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer = b""
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.pages: dict[str, Page] = {}

    def send(self, method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        reply = self._read_until(lambda: self._answers.pop(message["id"], None))
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        return self._read_until(
            lambda: next((e for e in self.events if e["method"] == method and e.get("sessionId") == session), None)
        )

    def _read_until(self, found: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        """Read messages until found() returns one; replies are kept by id, since reading may nest (dialogs)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    self._answers[message["id"]] = message
                else:
                    self._record(message)
            result = found()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed the pipe")
            self._buffer += chunk

    def _record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        page = self.pages.get(event.get("sessionId", ""))
        if page is None:
            return
        params = event["params"]
        match event["method"]:
            case "Log.entryAdded" if params["entry"]["level"] == "error":
                page.errors.append(params["entry"]["text"])
            case "Runtime.consoleAPICalled" if params["type"] in ("error", "assert"):
                page.errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            case "Runtime.exceptionThrown":
                page.errors.append(params["exceptionDetails"]["text"])
            case "Page.javascriptDialogOpening":
                page.dialogs.append(params["message"])
                # An open dialog would block the page; close it and keep the record.
                self.send("Page.handleJavaScriptDialog", {"accept": True}, event["sessionId"])

    def new_page(self, javascript: bool = True) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = self.pages[session] = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        if not javascript:
            page.send("Emulation.setScriptExecutionDisabled", value=True)
        return page

    def close(self) -> None:
        with contextlib.suppress(BrowserError):  # it may close the pipe before answering
            self.send("Browser.close", {})
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)
        self._profile.cleanup()
