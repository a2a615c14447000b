"""docker-compose.yml holds together without a Docker engine: it parses, every service is
wired to services, volumes and files that exist, and every command parses with the real
``kis-async`` parser or names flags the example scripts accept."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from kis_async.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gateway"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def exec_form(dockerfile: Path, instruction: str) -> list[str]:
    """The JSON (exec) form of ENTRYPOINT or CMD in a Dockerfile."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith(instruction + " "):
            return list(yaml.safe_load(line[len(instruction) + 1 :]))
    return []


def test_the_servers_are_redis_7_and_postgresql_15(compose: dict[str, Any]) -> None:
    """Redis 7 and PostgreSQL 15, as the issue and the platform ask."""
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:15")


def test_every_build_and_copied_file_exists(compose: dict[str, Any]) -> None:
    """Each service builds from a Dockerfile in the repo whose COPY sources exist."""
    built = [s for s in compose["services"].values() if "build" in s]
    assert len(built) >= 4
    for service in built:
        dockerfile = dockerfile_of(service)
        assert dockerfile.is_file(), dockerfile
        context = ROOT / (
            service["build"]
            if isinstance(service["build"], str)
            else service["build"].get("context", ".")
        )
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (context / source).exists(), f"{dockerfile}: {source}"


def test_dependencies_volumes_and_urls_name_what_is_defined(compose: dict[str, Any]) -> None:
    """depends_on, volumes, the Redis URL and the journal DSN refer to defined things."""
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume}"
        env = service.get("environment", {})
        if "KIS_GATEWAY_REDIS" in env:
            assert urlsplit(env["KIS_GATEWAY_REDIS"]).hostname in services
            assert "redis" in service["depends_on"]
        if "KIS_JOURNAL_DSN" in env:
            dsn = urlsplit(env["KIS_JOURNAL_DSN"])
            pg = services[dsn.hostname or ""]["environment"]
            assert (dsn.username, dsn.password, dsn.path.lstrip("/")) == (
                pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]
            )  # fmt: skip
            assert "postgres" in service["depends_on"]


def test_the_simulator_writes_the_credentials_the_others_read(compose: dict[str, Any]) -> None:
    """The simulator runs the image's `kis-async sim --host 0.0.0.0` with arguments the real
    parser accepts, and writes the env file the entry script waits for on the same volume."""
    sim = compose["services"]["sim"]
    entry = exec_form(dockerfile_of(sim), "ENTRYPOINT")
    assert entry[:2] == ["kis-async", "sim"]
    args = build_parser().parse_args([*entry[1:], *sim["command"]])
    assert args.host == "0.0.0.0"  # noqa: S104 (inside the container, on the compose network)
    env_file = Path(args.sim_env_file)
    volume = next(v for v in sim["volumes"] if v.endswith(":" + str(env_file.parent)))
    entry_script = (EXAMPLE / "docker-entry.sh").read_text()
    assert str(env_file) in entry_script
    for name in ("gateway", "strategy", "recorder"):
        assert volume.split(":")[0] + ":" + str(env_file.parent) in "".join(
            compose["services"][name]["volumes"]
        )


def test_gateways_and_workers_run_commands_that_exist(compose: dict[str, Any]) -> None:
    """Two gateways (different ids) and two example workers, each command valid."""
    services = compose["services"]
    gateways = [
        s for s in services.values() if s.get("command", [])[:2] == ["kis-async", "gateway"]
    ]
    assert len(gateways) == 2
    ids = set()
    for service in gateways:
        args = build_parser().parse_args(service["command"][1:])
        ids.add(args.id)
    assert len(ids) == 2
    workers = [s for s in services.values() if s.get("command", [""])[0] == "python"]
    assert len(workers) == 2
    shared = (EXAMPLE / "_worker.py").read_text()
    for service in workers:
        script = service["command"][1]
        local = EXAMPLE / Path(script).relative_to("/app")
        assert local.is_file(), script
        source = local.read_text() + shared
        for flag in (a for a in service["command"][2:] if a.startswith("--")):
            assert f'"{flag}"' in source, f"{local.name} takes no {flag}"
    image = dockerfile_of(gateways[0])
    entry = exec_form(image, "ENTRYPOINT")
    assert entry == ["/app/docker-entry.sh"]
    assert "COPY examples/gateway /app" in image.read_text()


def test_the_entry_script_is_executable_shell() -> None:
    """docker-entry.sh is executable, valid sh, and execs its command."""
    script = EXAMPLE / "docker-entry.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["sh", "-n", str(script)], check=True)  # noqa: S603, S607
    assert re.search(r'^exec "\$@"$', script.read_text(), re.MULTILINE)
    assert shlex.split(script.read_text().splitlines()[0]) == ["#!/bin/sh"]
