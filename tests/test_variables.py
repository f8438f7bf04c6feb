"""The declared environment variables: one-line errors naming the variable, secrets kept out of them and of reprs."""

from __future__ import annotations

import re

import pytest

from bot import variables
from bot.settings import Settings
from bot.slack.settings import tokens_from_env
from bot.variables import BY_NAME, SECRETS, VARIABLES, SettingsError, value
from tests.commands import assert_one_line_error, run
from tests.conftest import ROOT

# one malformed value for every variable whose parser can refuse one (text and folders take anything)
MALFORMED = {
    "SLACK_BOT_TOKEN": "xapp-wrong-kind",
    "SLACK_APP_TOKEN": "xapp-1-has spaces",
    "SLACK_SIGNING_SECRET": "xoxb-not-the-signing-secret",
    "SLACK_API_URL": "slack.com/api",
    "ADVISOR_SLACK_THREAD_FOLLOW_UPS": "sometimes",
    "DISCORD_TOKEN": "no-dots-in-this-token",
    "DISCORD_GUILD_ID": "my server",
    "DISCORD_SHARD_ID": "first",
    "DISCORD_SHARD_COUNT": "0",
    "ADVISOR_DISCORD_THREAD_FOLLOW_UPS": "2",
    "ADVISOR_DATABASE_URL": "mysql://advisor:hunter2secret@db/advisor",
    "ADVISOR_INDEX_CHECK_SECONDS": "soon",
    "ADVISOR_TORCH_THREADS": "0",
    "ADVISOR_HASH_USER_IDS": "maybe",
    "ADVISOR_LLM_URL": "ftp://example.com/v1",
    "ADVISOR_LLM_TIMEOUT": "500",
    "ADVISOR_LOG_FORMAT": "xml",
    "ADVISOR_HEALTH_PORT": "99999",
}
# a well-formed value for every secret (Settings.from_env accepts them all together)
SECRET_VALUES = {
    "SLACK_BOT_TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    "SLACK_APP_TOKEN": "xapp-1-A0123456789-1234567890123-abcdef0123456789",
    "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
    "DISCORD_TOKEN": "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789",
    "ADVISOR_DATABASE_URL": "postgresql://advisor:pw-in-the-url-4321@db.internal:5432/advisor",
    "POSTGRES_PASSWORD": "compose-only-password-8765",
    "ADVISOR_USER_SALT": "salt-of-the-user-hashes-0246",
    "ADVISOR_LLM_API_KEY": "sk-local-0123456789abcdef",
}


def test_every_refusing_parser_has_a_malformed_case():
    takes_anything = {v.name for v in VARIABLES if v.parse in (variables.text, variables.folder)}
    assert set(MALFORMED) == set(BY_NAME) - takes_anything
    assert set(SECRET_VALUES) == set(SECRETS)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_value_is_one_line_naming_the_variable(monkeypatch, name):
    monkeypatch.setenv(name, MALFORMED[name])
    with pytest.raises(SettingsError) as caught:
        value(name)
    message = str(caught.value)
    assert message.startswith(f"{name} ") and "\n" not in message and message.endswith(".")
    if BY_NAME[name].secret:
        assert MALFORMED[name] not in message and "hunter2secret" not in message
    else:
        assert repr(MALFORMED[name]) in message  # says what was given


@pytest.mark.parametrize("name", sorted(n for n in MALFORMED if BY_NAME[n].scope == "advisor"))
def test_every_command_checks_the_shared_variables_at_start(capsys, monkeypatch, name):
    monkeypatch.setenv(name, MALFORMED[name])
    if name != "ADVISOR_LLM_URL":
        monkeypatch.setenv("ADVISOR_LLM_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("ADVISOR_LLM_MODEL", "m")
    assert_one_line_error(*run(capsys, "ask", "does a Series A startup hire ML PMs?"), f"advisor: {name} ")


def test_unset_and_empty_mean_the_default(monkeypatch):
    assert value("ADVISOR_TORCH_THREADS") == 1 and value("ADVISOR_HEALTH_PORT") is None
    monkeypatch.setenv("ADVISOR_TORCH_THREADS", "  ")
    monkeypatch.setenv("ADVISOR_LOG_FORMAT", " JSON ")
    assert value("ADVISOR_TORCH_THREADS") == 1 and value("ADVISOR_LOG_FORMAT") == "json"
    with pytest.raises(KeyError):
        value("ADVISOR_NOT_DECLARED")


def test_the_settings_repr_shows_no_secret(monkeypatch):
    for name, secret in SECRET_VALUES.items():
        monkeypatch.setenv(name, secret)
    monkeypatch.setenv("ADVISOR_LLM_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("ADVISOR_LLM_MODEL", "m")
    settings = Settings.from_env()
    assert settings.llm_api_key == SECRET_VALUES["ADVISOR_LLM_API_KEY"] and settings.database_url
    shown = repr(settings) + repr(tokens_from_env(http=False)) + repr(tokens_from_env(http=True))
    for secret in SECRET_VALUES.values():
        assert secret not in shown
    assert "pw-in-the-url-4321" not in shown


def test_only_bot_variables_reads_the_environment():
    readers = []
    for folder in ("bot", "retrieval"):
        for path in (ROOT / folder).rglob("*.py"):
            # retrieval/embedding.py sets the model libraries' own switches (os.environ.setdefault): a write
            source = re.sub(r"os\.environ\.setdefault", "", path.read_text())
            if re.search(r"\benviron\b|\bgetenv\b", source) and path != ROOT / "bot" / "variables.py":
                readers.append(str(path.relative_to(ROOT)))
    assert not readers, f"read these through bot/variables.py: {readers}"


def test_every_variable_the_code_names_is_declared():
    named = set()
    for folder in ("bot", "retrieval"):
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(re.findall(r"\b((?:SLACK|DISCORD|ADVISOR|POSTGRES)_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    assert {"SLACK_BOT_TOKEN", "DISCORD_TOKEN", "ADVISOR_DATA_DIR"} <= named  # the scan finds names
    assert not named - set(BY_NAME), f"declare these in bot/variables.py: {sorted(named - set(BY_NAME))}"
