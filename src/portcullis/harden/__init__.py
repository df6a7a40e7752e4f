"""Hardening generators: from audit findings to proposed fixes, each verified on a real engine before it is shown.

`daemon_json` proposes a daemon.json, `trial_daemon` runs it on a private second dockerd, `run_flags` and
`container_trial` derive and verify `docker run` flags for one container, `compose_override` writes them as a
compose override. `daemon`, `container` and `profiles` (seccomp, AppArmor) are the flows the CLI calls.
Nothing here changes the host unless the caller asks to apply.
"""

from __future__ import annotations


class HardenError(Exception):
    """A proposal could not be made or verified; the message is one line meant for the user."""
