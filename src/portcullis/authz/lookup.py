"""What a request leaves to the engine's defaults, read back from the engine: the user an exec without --user runs
as (the container's Config.User) and the user a create without User runs as (the image's Config.User).

The plugin asks the dockerd it guards, over its socket, from inside dockerd's call to the plugin. That cannot
deadlock: dockerd judges each API request in its own goroutine and holds no lock while a plugin answers, and the
plugin answers the lookup's own AuthZReq (a GET, which it lets pass) on another thread. What can go wrong is a
slow or refusing engine (another plugin in the chain may deny the GET): each lookup has a short timeout, and a
lookup that fails denies the request (AUTHZ-LOOKUP) rather than guessing.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote

from portcullis.collect.authz_plugins import UnixConnection

LOOKUP_TIMEOUT = 2.0
MAX_ANSWER = 4 << 20  # an inspect with many labels and env entries stays far below this


class EngineLookupError(Exception):
    """The engine did not tell the user: no answer in time, an error status, or an answer without Config."""


class EngineLookup:
    def __init__(self, socket_path: str, timeout: float = LOOKUP_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _config_user(self, path: str, what: str) -> str:
        connection = UnixConnection(self.socket_path, self.timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            raw = response.read(MAX_ANSWER)
        except (OSError, http.client.HTTPException) as exc:
            raise EngineLookupError(f"{what} could not be read from the engine ({type(exc).__name__})") from None
        finally:
            connection.close()
        if response.status != 200:
            raise EngineLookupError(f"{what} could not be read from the engine (HTTP {response.status})")
        try:
            answer: Any = json.loads(raw)
            user = answer["Config"]["User"]
        except (ValueError, KeyError, TypeError):
            raise EngineLookupError(f"{what}: the engine's answer has no Config.User") from None
        if not isinstance(user, str):
            raise EngineLookupError(f"{what}: the engine's Config.User is not a string")
        return user

    def container_user(self, container: str) -> str:
        return self._config_user(f"/containers/{quote(container, safe='')}/json", f"the user of container {container}")

    def image_user(self, image: str) -> str:
        return self._config_user(f"/images/{quote(image, safe='/:@')}/json", f"the default user of image {image}")
