"""The deployment files: docker-compose.yml's shape, and a Dockerfile that installs this package.

No Docker engine is needed: the compose file is read as YAML, and the Dockerfile's COPY and
`pip install .` steps are replayed into a folder to prove the image gets a working `chatflow`.
"""

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

import providers
from chatflow.domain.config import Settings
from tests.chatflow.runtime.devstack import DEMO_CONFIG, ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text().splitlines()


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE if line.split(None, 1)[:1] == [keyword]]


def test_compose_runs_the_conventional_stack() -> None:
    assert set(SERVICES) == {"postgresql", "temporal", "temporal-ui", "redis", "web", "worker"}
    images = {name: service.get("image", "") for name, service in SERVICES.items()}
    assert images["postgresql"].startswith("postgres:")
    assert images["temporal"].startswith("temporalio/auto-setup:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["redis"].startswith("redis:")
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert SERVICES["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    for name, service in SERVICES.items():
        assert service["healthcheck"]["test"], name
    expected = {
        "temporal": {"postgresql"},
        "temporal-ui": {"temporal"},
        "web": {"temporal", "redis"},
        "worker": {"temporal", "redis"},
    }
    for name, needs in expected.items():
        depends_on = SERVICES[name]["depends_on"]
        assert set(depends_on) == needs, name
        assert all(d["condition"] == "service_healthy" for d in depends_on.values()), name
    assert "/readyz" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_redis_persists_with_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(v.endswith(":/data") and v.split(":")[0] in COMPOSE["volumes"] for v in redis["volumes"])


def test_web_and_worker_run_this_image_with_the_documented_settings() -> None:
    for name, role in (("web", "web"), ("worker", "worker")):
        service = SERVICES[name]
        assert service["build"] == "."
        assert service["command"][:2] == ["chatflow", role]
        env = service["environment"]
        assert env["CHATFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["CHATFLOW_REDIS_URL"].startswith("redis://redis:6379")
        channels = {name for spec in providers.CHANNELS for name in spec.environment}
        for setting in set(env) - {"CHATFLOW_CONFIG"}:  # each one is a setting chatflow or a channel reads
            assert Settings.from_env({setting: "x"}) != Settings() or setting in channels, setting


def test_the_dockerfile_installs_this_package_and_runs_chatflow() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert "pip install ." in instructions("RUN")
    assert shlex.split(instructions("CMD")[0].replace("[", "").replace("]", "").replace(",", ""))[:2] == [
        "chatflow",
        "web",
    ]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["chatflow"] == "chatflow.runtime.cli:main"


def test_what_the_dockerfile_copies_installs_a_working_chatflow(tmp_path: Path) -> None:
    """Replay COPY and `pip install .` (without dependencies, which the test environment has)."""
    context = tmp_path / "app"
    context.mkdir()
    for line in instructions("COPY"):
        *sources, _ = line.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, context / source)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), "."],
        cwd=context,
        check=True,
        capture_output=True,
        timeout=300,
    )
    entry_points = next(site.glob("chatflow-*.dist-info")).joinpath("entry_points.txt").read_text()
    assert "chatflow = chatflow.runtime.cli:main" in entry_points
    (tmp_path / "chatflow.toml").write_text(DEMO_CONFIG)
    done = subprocess.run(
        [sys.executable, "-c", "from chatflow.runtime.cli import main; main()", "flows"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout
