"""Record the facts and inside signals of the scenario containers for the unit tests (run by hand, as root).

    PYTHONPATH=src:tests python tests/paths/record_paths_facts.py

Only the scenario's containers are kept (other people's share the engine), and the images are left out.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import docker

from paths.scenario import start_scenario
from portcullis.collect.audit import collect_facts, save_facts
from portcullis.collect.engine import connect
from portcullis.pipelines.paths import read_inside_signals
from support.containers import labelled_containers

DATA = Path(__file__).parent / "data"
PREFIX = "pcpaths"
# What capability reachability reads; the mount table and /dev listing would only make the file large.
KEPT_SIGNALS = ("version", "mode", "uid", "uid_map", "caps", "no_new_privs", "privilege_files", "sockets")


def main() -> None:
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as fake, labelled_containers(client, PREFIX) as factory:
        start_scenario(factory, Path(fake))
        conn = connect(None)
        try:
            facts = collect_facts(conn)
        finally:
            conn.close()
        mine = set(factory.names.values())
        facts.containers = [c for c in facts.containers if c.short_name in mine]
        facts.images = []
        # the fake socket's directory is a fresh temporary one each time: name it stably
        facts = facts.model_validate_json(facts.model_dump_json(by_alias=True).replace(fake, "/tmp/pcpaths-fake"))
        signals, _ = read_inside_signals(facts)
        signals = {name: {key: seen[key] for key in KEPT_SIGNALS} for name, seen in signals.items()}
        save_facts(facts, str(DATA / "facts.json"))
        (DATA / "inside.json").write_text(json.dumps(signals, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
