"""Settings: defaults, env parsing that names the bad variable, redaction of secrets."""

from __future__ import annotations

import pytest

from settings import Settings, SettingsError, get_settings, markdown_table, redact_url


def fresh(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CELERY_BROKER_URL", "AUDIOBOOK_STORAGE_URL", "SCALER_MAX_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    s = fresh(monkeypatch)
    assert s.broker_url.get_secret_value() == "redis://localhost:6379/0"
    assert s.backend_url == "redis://localhost:6379/0"
    assert s.storage_uri.startswith("file:///") and s.storage_uri.endswith("/var/audio")
    assert s.scaler_max_workers == 50 and s.scaler_idle_s == 600 and s.scaler_provider == "local"


@pytest.mark.parametrize("env,names", [
    ({"SCALER_MAX_WORKERS": "lots"}, "SCALER_MAX_WORKERS"),
    ({"AUDIOBOOK_DEVICE": "tpu"}, "AUDIOBOOK_DEVICE"),
    ({"AUDIOBOOK_MAX_CHAPTER_CHARS": "-1"}, "AUDIOBOOK_MAX_CHAPTER_CHARS"),
    ({"AUDIOBOOK_VISIBILITY_TIMEOUT_S": "600", "AUDIOBOOK_CHAPTER_TIME_LIMIT_S": "3600"},
     "AUDIOBOOK_VISIBILITY_TIMEOUT_S must exceed"),
])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict, names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        fresh(monkeypatch, **env)


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    s = fresh(monkeypatch, CELERY_BROKER_URL="redis://:hunter2@db:6379/0", RUNPOD_API_KEY="rp_secret")
    assert "hunter2" not in repr(s) and "rp_secret" not in repr(s) and "rp_secret" not in str(s.model_dump())
    assert redact_url("redis://user:hunter2@db:6379/0") == "redis://user:***@db:6379/0"
    assert redact_url("redis://db:6379/0") == "redis://db:6379/0"


def test_readme_documents_every_variable() -> None:
    from tests.support.processes import ROOT

    readme = (ROOT / "README.md").read_text()
    missing = [line.split("`")[1] for line in markdown_table().splitlines()[2:] if line.split("`")[1] not in readme]
    assert missing == []
