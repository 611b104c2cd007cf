"""deploy/: the compose recipe parses, and every command it runs exists in the CLI with the options it uses
(Docker is not available here, so this is what can be checked without running it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from offerloop.cli.main import app
from offerloop.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def _options(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker", "proxy"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert services["api"]["deploy"]["replicas"] == "${API_REPLICAS:-2}"
    assert services["worker"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"


def test_every_command_exists_in_the_cli_with_its_options(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["offerloop", "migrate"]
    _help("migrate")
    for name, sub in (("api", "serve"), ("worker", "worker")):
        argv = services[name]["command"]
        assert argv[:2] == ["offerloop", sub]
        text = _help(sub)
        for option in _options(argv):
            assert re.search(rf"{option}\b", text), f"{sub} has no {option}"
    # the API listens on every interface, at the port the proxy forwards to
    assert services["api"]["command"][2:6] == ["--host", "0.0.0.0", "--port", "8000"]
    assert "server api:8000" in (DEPLOY / "nginx.conf").read_text()


def test_healthchecks_use_readyz_and_healthz(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "location = /healthz" in (DEPLOY / "nginx.conf").read_text()


def test_the_env_example_names_only_real_settings() -> None:
    keys = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "offerloop.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    fields = {f"OFFERLOOP_{name.upper()}" for name in Settings.model_fields}
    unknown = [k for k in keys if k.startswith("OFFERLOOP_") and k not in fields]
    assert unknown == []
    assert {"OFFERLOOP_SECRET", "POSTGRES_PASSWORD", "API_REPLICAS", "WORKER_REPLICAS"} <= set(keys)
    compose_text = (DEPLOY / "compose.yaml").read_text()
    # API replicas run no background threads (job threads and consumer threads are both settings).
    for name in ("OFFERLOOP_WORKER_THREADS", "OFFERLOOP_PIPELINE_WORKERS"):
        assert name in fields and f'{name}: "0"' in compose_text
    assert set(re.findall(r"\bOFFERLOOP_[A-Z0-9_]+", compose_text)) <= fields


def test_the_image_installs_the_package_and_fetches_nothing_at_run_time() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile
    assert compose_images() == {"postgres:16", "nginx:1.27-alpine", "offerloop:local"}


def compose_images() -> set[str]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return {s["image"] for s in data["services"].values()}
