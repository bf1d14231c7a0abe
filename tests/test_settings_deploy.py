"""Deployment settings: RunPod placement, spot bids and Sentinel are validated, naming the variable."""

from __future__ import annotations

import importlib

import pytest

from settings import SettingsError, get_settings


def fresh(monkeypatch: pytest.MonkeyPatch, **env: str):  # noqa: ANN201
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(("env", "message"), [
    ({"RUNPOD_ALLOWED_CUDA_VERSIONS": "12.4,twelve"}, "RUNPOD_ALLOWED_CUDA_VERSIONS"),
    ({"RUNPOD_DATA_CENTERS": "EU-RO-1,eu ro"}, "RUNPOD_DATA_CENTERS"),
    ({"RUNPOD_TEMPLATE_ID": 'tpl"x'}, "RUNPOD_TEMPLATE_ID"),
    ({"RUNPOD_VOLUME_MOUNT_PATH": "weights"}, "RUNPOD_VOLUME_MOUNT_PATH"),
    ({"RUNPOD_BID_USD_PER_HOUR": "0"}, "RUNPOD_BID_USD_PER_HOUR"),
    ({"RUNPOD_INTERRUPTIBLE": "maybe"}, "RUNPOD_INTERRUPTIBLE"),
    ({"RUNPOD_NETWORK_VOLUME_ID": "vol1", "RUNPOD_DATA_CENTERS": "EU-RO-1,US-KS-2"}, "RUNPOD_DATA_CENTERS"),
    ({"CELERY_BROKER_URL": "sentinel://127.0.0.1:26379"}, "AUDIOBOOK_REDIS_MASTER_NAME"),
    ({"CELERY_RESULT_BACKEND": "sentinel://h1:26379;sentinel://h2:26379"}, "AUDIOBOOK_REDIS_MASTER_NAME"),
    ({"AUDIOBOOK_REDIS_MASTER_NAME": "my master"}, "AUDIOBOOK_REDIS_MASTER_NAME"),
])
def test_bad_deployment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        fresh(monkeypatch, **env)


def test_lists_are_split_and_empty_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    s = fresh(monkeypatch, RUNPOD_ALLOWED_CUDA_VERSIONS=" 12.4, 12.8 ", RUNPOD_DATA_CENTERS="", RUNPOD_TEMPLATE_ID="",
              RUNPOD_BID_USD_PER_HOUR="")
    assert s.cuda_versions == ["12.4", "12.8"] and s.data_centers == []
    assert s.runpod_template_id is None and s.runpod_bid_usd_per_hour is None


def test_the_master_name_reaches_only_sentinel_transports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery's sentinel broker and backend read `master_name` from their own transport options."""
    import celeryconfig

    try:
        fresh(monkeypatch, CELERY_BROKER_URL="sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380",
              CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/1", AUDIOBOOK_REDIS_MASTER_NAME="books")
        config = importlib.reload(celeryconfig)
        assert config.broker_transport_options["master_name"] == "books"
        assert "master_name" not in config.result_backend_transport_options
        assert config.broker_transport_options["visibility_timeout"] > config.task_time_limit
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        importlib.reload(celeryconfig)
