"""Deployment: the Dockerfile, compose file, systemd units and .env.example checked against the code, and /healthz."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot import health
from bot.cli.entry import EXIT_USAGE, build_parser
from bot.service import ChatService
from bot.settings import SettingsError
from bot.store import Store
from bot.variables import VARIABLES
from tests.conftest import ROOT, SHIPPED_CORPUS
from tests.waiting import stop, wait_until_healthy

DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"


# -- Dockerfile --------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, joined = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        joined += raw.rstrip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
            continue
        lines.append(joined)
        joined = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


def ci_install_steps() -> list[str]:
    """.ci/run's install commands, from the venv to the CUDA check."""
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    start = next(i for i, s in enumerate(steps) if s.startswith("python3 -m venv"))
    end = next(i for i, s in enumerate(steps) if s.startswith("if pip list"))
    return [s for s in steps[start:end + 1] if s and not s.startswith("#")]


def test_dockerfile_installs_as_ci_does():
    runs = [args for op, args in dockerfile() if op == "RUN"]
    install = next(r for r in runs if "python3 -m venv" in r)
    docker_steps = [s.strip() for s in install.split(" && ")]
    ci = ci_install_steps()
    torch_pin = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text())[1]
    # the only differences: CPU torch from PyTorch's index first, and the apps' extras instead of [dev]
    expected = [s.replace('".[dev]"', '".[slack,discord]"') for s in ci[:-1]]
    expected.insert(expected.index(". .venv/bin/activate") + 1,
                    f'pip install --quiet {torch_pin} --index-url "$TORCH_INDEX_URL"')
    assert docker_steps[:-1] == expected
    assert docker_steps[-1].startswith(ci[-1]) and "nvidia-" in docker_steps[-1] and "exit 1" in docker_steps[-1]
    args = dict(a.split("=", 1) for op, a in dockerfile() if op == "ARG")
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert "https://download.pytorch.org/whl/cpu" in (ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_quick_start():
    """A step CI takes and the README does not (say, upgrading pip) would hide an install the README breaks."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    quick_start = [step.strip() for line in block.splitlines() if line.strip() for step in line.split(" && ")]
    commands = ("python3 -m venv", ". .venv/", "pip ", "python -m pip", "advisor ", "pytest")
    ci = [line.strip().replace(" --quiet", "") for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip().startswith(commands)]
    assert ci == quick_start


def test_dockerfile_bakes_the_index_and_runs_unprivileged():
    steps = dockerfile()
    ops = [op for op, _ in steps]
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11")
    env = " ".join(a for op, a in steps if op == "ENV")
    for setting in ("HF_HUB_OFFLINE=1", "ADVISOR_DATA_DIR=/data", "ADVISOR_CORPUS=/app/corpus",
                    "ADVISOR_LOG_FORMAT=json", "ADVISOR_HEALTH_PORT=8080"):
        assert setting in env.split()
    users = [a for op, a in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    user_at = ops.index("USER")
    index_at = next(i for i, (op, a) in enumerate(steps) if op == "RUN" and "advisor index" in a)
    install_at = next(i for i, (op, a) in enumerate(steps) if op == "RUN" and "pip install" in a)
    assert install_at < user_at < index_at  # code installed by root, index built by the user that serves
    assert ("VOLUME", '["/data"]') in steps
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["advisor"]
    command = json.loads(dict(steps)["CMD"])
    build_parser().parse_args(command)  # a real subcommand
    for op, a in steps:
        if op == "COPY":
            for source in shlex.split(a)[:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore and {"!bot/", "!retrieval/", "!corpus/", "!pyproject.toml", "!README.md"} <= set(ignore)


def _healthcheck_command() -> str:
    healthcheck = dict(dockerfile())["HEALTHCHECK"]
    assert "--start-period" in healthcheck
    return healthcheck.split(" CMD ", 1)[1]


async def test_the_image_healthcheck_command_passes_and_fails(fake_advisor, tmp_path):
    """The HEALTHCHECK's own command line, run by a shell against a real /healthz server."""
    store = Store(tmp_path / "advisor.sqlite3")
    service = ChatService(fake_advisor, store)
    runner, port = await health.start(service, "127.0.0.1", 0)
    env = {**os.environ, "ADVISOR_HEALTH_PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # `python` is this venv's

    async def check() -> int:
        proc = await asyncio.create_subprocess_shell(_healthcheck_command(), env=env, stderr=subprocess.DEVNULL)
        return await asyncio.wait_for(proc.wait(), 30)

    try:
        assert await check() == 0
        store.close()  # the store can no longer be written: 503, and the check fails
        assert await check() != 0
    finally:
        await runner.cleanup()


# -- compose ---------------------------------------------------------------------------------------------

def test_compose_runs_both_apps_on_one_volume():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = {name: s for name, s in compose["services"].items() if name != "postgres"}  # the apps
    assert set(services) == {"slack", "discord", "slack-http"}
    for name, service in services.items():
        assert service["env_file"] == ".env"
        assert service["volumes"] == ["advisor-data:/data"]
        assert service["restart"] == "unless-stopped" and service["init"] is True
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == \
            (DEPLOY / "Dockerfile").resolve()
        args = build_parser().parse_args(service["command"])
        assert args.command == "serve"
    assert services["slack"]["command"] == ["serve", "slack"] and "profiles" not in services["slack"]
    assert services["discord"]["command"] == ["serve", "discord"]
    http = services["slack-http"]
    assert http["profiles"] == ["http"]
    args = build_parser().parse_args(http["command"])
    assert args.http and args.host == "0.0.0.0" and f":{args.port}" in http["ports"][0]
    assert "advisor-data" in compose["volumes"]
    # the env file compose reads holds tokens: git must ignore it
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DEPLOY / ".env")], cwd=ROOT)
    assert ignored.returncode == 0


# -- .env.example -----------------------------------------------------------------------------------------

def env_example() -> dict[str, tuple[str, str]]:
    """NAME -> (value, the comment line above it), for set and commented-out lines alike."""
    entries, previous = {}, ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#? ?([A-Z][A-Z0-9_]+)=(.*)", line)
        if match:
            entries[match[1]] = (match[2], previous)
        previous = line
    return entries


def test_env_example_is_written_from_the_declared_variables():
    from bot.env_example import render

    assert ENV_EXAMPLE.read_text() == render(), "run: python -m bot.env_example > deploy/.env.example"
    entries = env_example()
    assert list(entries) == [v.name for v in VARIABLES]  # every declared variable, nothing else
    for variable in VARIABLES:
        example, comment = entries[variable.name]
        assert comment.startswith("# ") and not re.fullmatch(r"# ?[A-Z_]+=.*", comment), f"{variable.name}: a doc"
        assert not example.startswith(("'", '"')) and " " not in example, f"{variable.name}: plain KEY=value"
        if example:
            variable.parse(example)  # the value shown is one the variable accepts
        if variable.secret:
            assert example in ("", "postgresql://advisor:CHANGE-ME@db.internal:5432/advisor")  # nothing real
        if variable.default not in (None, ""):
            shown = {True: "1", False: "0"}.get(variable.default, f"{variable.default:g}" if isinstance(
                variable.default, float) else str(variable.default))
            assert re.search(rf"[Dd]efault {re.escape(shown)}\b|{re.escape(shown)} \(default\b", variable.doc), \
                f"{variable.name}: its doc should name the default {shown}"
    assert not (DEPLOY / "env.example").exists()


def test_no_reference_to_the_old_env_example():
    stale = []
    for path in ROOT.rglob("*"):
        if any(part in (".venv", ".git", "advisor.egg-info", "__pycache__", ".advisor") for part in path.parts):
            continue
        text_file = path.suffix in (".md", ".py", ".yaml", ".service", ".toml", "")
        if path.is_file() and text_file and path.stat().st_size < 10**6:
            with contextlib.suppress(UnicodeDecodeError):
                if re.search(r"deploy/env\.example", path.read_text()):
                    stale.append(str(path.relative_to(ROOT)))
    assert not stale


# -- systemd -------------------------------------------------------------------------------------------

def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_systemd_units(platform):
    """What the unit must agree on with the code and with itself (its syntax: test_systemd_analyze_verify)."""
    service = unit(f"advisor-{platform}.service")["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[1:] == ["serve", platform]
    build_parser().parse_args(command[1:])  # a command the CLI accepts
    assert command[0] == f"{service['WorkingDirectory']}/.venv/bin/advisor"
    assert service["RestartPreventExitStatus"] == str(EXIT_USAGE)  # a usage error is not retried forever
    text = (DEPLOY / "systemd" / f"advisor-{platform}.service").read_text()
    data_dir = f"/var/lib/{service['StateDirectory']}"  # the folder systemd creates and lets the service write
    assert f"ADVISOR_DATA_DIR={data_dir}" in text and service["ReadWritePaths"] == data_dir


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_systemd_analyze_verify(platform, tmp_path):
    """systemd's own parser: no unknown key or bad value (ExecStart pointed at this venv's advisor)."""
    text = (DEPLOY / "systemd" / f"advisor-{platform}.service").read_text()
    copy = tmp_path / f"advisor-{platform}.service"
    copy.write_text(text.replace("/opt/advisor/.venv/bin/advisor", str(Path(sys.executable).parent / "advisor")))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                            timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if copy.name in line]
    assert not complaints


# -- health --------------------------------------------------------------------------------------------

def test_store_healthy_only_when_writable(tmp_path):
    store = Store(tmp_path / "advisor.sqlite3")
    assert store.healthy()
    other = sqlite3.connect(tmp_path / "advisor.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    assert not store.healthy(timeout=0.05)
    other.execute("ROLLBACK")
    other.close()
    assert store.healthy()
    # a read-only file (e.g. a volume mounted read-only) opens, but cannot be written
    writable = store._db
    store._db = sqlite3.connect(f"{(tmp_path / 'advisor.sqlite3').as_uri()}?mode=ro", uri=True,
                                isolation_level=None, check_same_thread=False)
    assert not store.healthy()
    store._db.close()
    store._db = writable
    store.close()
    assert not store.healthy()


async def test_healthz_reports_which_check_failed(fake_advisor, tmp_path):
    from bot.slack.app import create_app
    from bot.slack.serve import start_http_server
    from bot.slack.settings import SlackTokens

    store = Store(tmp_path / "advisor.sqlite3")
    service = ChatService(fake_advisor, store)
    app = create_app(service, SlackTokens("xoxb-1-fake", signing_secret="0" * 32, api_url="http://127.0.0.1:9/"))
    runner, port = await start_http_server(app, service, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["status"] == "ok" and body["failed"] == []
                assert body["checks"]["index"] == {"ok": True, "documents": len(fake_advisor.engine.documents)}
            store.close()
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 503 and body["failed"] == ["store"] and body["checks"]["index"]["ok"]
            fake_advisor.engine.documents = []  # as before the index is loaded
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 503 and (await resp.json())["failed"] == ["index", "store"]
    finally:
        await runner.cleanup()


async def test_health_thread_for_discord_and_bad_ports(fake_advisor, monkeypatch):
    service = ChatService(fake_advisor)  # no store: reported, not failing
    thread = health.HealthThread(service, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"http://127.0.0.1:{thread.port}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and "memory" in body["checks"]["store"]["detail"]
        with pytest.raises(SettingsError, match="ADVISOR_HEALTH_PORT to a free port"):
            health.HealthThread(service, "127.0.0.1", thread.port).start()  # already taken
    finally:
        thread.stop()
    assert not thread._thread.is_alive()
    assert health.address_from_env() is None and health.start_in_thread_from_env(service) is None
    monkeypatch.setenv("ADVISOR_HEALTH_PORT", "80a")
    with pytest.raises(SettingsError, match="TCP port number"):
        health.address_from_env()
    monkeypatch.setenv("ADVISOR_HEALTH_PORT", "8080")
    monkeypatch.setenv("ADVISOR_HEALTH_HOST", "0.0.0.0")
    assert health.address_from_env() == ("0.0.0.0", 8080)


# -- Discord shards ------------------------------------------------------------------------------------

async def test_discord_shards_from_the_environment(fake_advisor, monkeypatch):
    from bot.discord.app import create_bot
    from bot.discord.settings import shard_from_env

    assert shard_from_env() is None
    monkeypatch.setenv("DISCORD_SHARD_ID", "1")
    with pytest.raises(SettingsError, match="go together"):
        shard_from_env()
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "1")
    with pytest.raises(SettingsError, match="from 0 to count-1"):
        shard_from_env()
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "2")
    assert shard_from_env() == (1, 2)

    synced = []
    for shard in [(0, 2), (1, 2)]:
        client = create_bot(ChatService(fake_advisor), shard=shard)
        assert (client.shard_id, client.shard_count) == shard

        async def sync(guild=None, _shard=shard):
            synced.append(_shard)
            return []

        client.advisor.tree.sync = sync
        await client.advisor.setup_hook()
    assert synced == [(0, 2)]  # shard 0 syncs the commands for all


# -- end to end: `advisor serve slack --http --host` with JSON logs and the health port ----------------

async def test_serve_slack_http_with_json_logs_and_health_port(tmp_path):
    from tests.mock_slack_api import MockSlackAPI, SlackSender
    from tests.mock_slack_api import BOT_TOKEN, SECRET
    from tests.support import ADVISOR, fake_model_env, fixture, free_port

    port, health_port = free_port(), free_port()
    with MockSlackAPI() as api:
        env = fake_model_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api.url,
                             ADVISOR_DATA_DIR=str(tmp_path / "data"), ADVISOR_CORPUS=str(SHIPPED_CORPUS),
                             ADVISOR_LOG_FORMAT="json", ADVISOR_HEALTH_PORT=str(health_port))
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*ADVISOR, "serve", "slack", "--http",
                                     "--host", "127.0.0.1", "--port", str(port)],
                                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                await wait_until_healthy(session, f"http://127.0.0.1:{health_port}/healthz", proc, log)
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200 and (await resp.json())["checks"]["store"]["ok"]
                sender = SlackSender(session, f"http://127.0.0.1:{port}/slack/events", SECRET)
                event = fixture("event_app_mention.json")
                assert (await sender.event(event))[0] == 200
                [post] = await api.wait_async("chat.postMessage", timeout=30)
                assert "[1]" in post.body["text"]
        finally:
            stop(proc)
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    [question] = [r for r in records if r.get("event") == "question"]
    assert question["platform"] == "slack" and question["status"] == "answered" and question["citations"]
    user = event["event"]["user"]
    assert user not in text and BOT_TOKEN not in text and SECRET not in text
    assert event["event"]["text"].split(">", 1)[1].strip()[:20] not in text  # the question's words
    assert proc.returncode == 0, text


def test_serve_slack_host_defaults_to_loopback():
    args = build_parser().parse_args(["serve", "slack", "--http"])
    assert args.host == "127.0.0.1" and args.port == 3000

