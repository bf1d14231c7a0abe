"""The RunPod provider through the unmodified SDK against the loopback fake."""

from __future__ import annotations

import time

import pytest

from scaler.errors import CapacityError, InvalidProviderInput, ProviderAuthError, ProviderUnavailable
from scaler.providers.base import MARKER_ENV
from settings import WORKER_PRICE_ENV
from tests.fakes.runpod_api import CAPACITY_MESSAGE
from tests.scaler.conftest import A4000, BROKER_SECRET, DEPLOYMENT, POD_ENV, RTX3090


def test_create_list_terminate(fake_runpod, make_runpod) -> None:
    provider = make_runpod()
    assert provider.price(A4000) == 0.34  # SECURE price
    instance = provider.create("test-gpu-0001", A4000)
    assert instance.status == "starting" and instance.usd_per_hour == 0.34
    [listed] = provider.list_instances()
    assert (listed.id, listed.name, listed.status, listed.usd_per_hour) == (instance.id, "test-gpu-0001", "starting",
                                                                           0.34)
    time.sleep(fake_runpod.boot_s + 0.1)
    assert provider.list_instances()[0].status == "running"

    pod = fake_runpod.pods[instance.id]
    assert pod.docker_args == ("celery -A tasks worker -Q gpu-long -c 1 -n gpu-test-gpu-0001@%h "
                               "--without-mingle --without-gossip --loglevel INFO")
    # the pod is told its own price, so its chapters bill at it
    assert pod.env == POD_ENV | {MARKER_ENV: f"test-gpu/{DEPLOYMENT}", WORKER_PRICE_ENV: "0.34"}
    assert listed.deployment == DEPLOYMENT
    assert pod.extra["cloudType"] == "SECURE" and pod.extra["gpuCount"] == 1
    assert "startSsh" not in pod.extra and pod.extra["supportPublicIp"] is False
    provider.terminate(instance.id)
    assert provider.list_instances() == [] and fake_runpod.pods == {}


def test_a_pod_created_before_any_price_was_read_still_gets_its_price(fake_runpod, make_runpod) -> None:
    instance = make_runpod(cloud_type="COMMUNITY").create("test-gpu-0002", RTX3090)
    assert fake_runpod.pods[instance.id].env[WORKER_PRICE_ENV] == "0.22"


def test_pods_with_the_prefix_are_listed_with_the_deployment_their_marker_names(fake_runpod, make_runpod) -> None:
    provider = make_runpod()
    fake_runpod.add_pod("test-gpu-orphan", {MARKER_ENV: f"test-gpu/{DEPLOYMENT}"})
    fake_runpod.add_pod("test-gpu-other", {MARKER_ENV: "test-gpu/another-deployment"})
    fake_runpod.add_pod("test-gpu-oldstyle", {MARKER_ENV: "test-gpu"})  # a marker without a deployment
    fake_runpod.add_pod("test-gpu-nomarker", {"OTHER": "1"})  # a name alike, but not ours
    fake_runpod.add_pod("jupyter-notebook", {MARKER_ENV: f"test-gpu/{DEPLOYMENT}"})  # marker copied, other name
    fake_runpod.add_pod("test-gpu-otherpool", {MARKER_ENV: "other-pool/x"})
    listed = {i.name: i.deployment for i in provider.list_instances()}
    assert listed == {"test-gpu-orphan": DEPLOYMENT, "test-gpu-other": "another-deployment",
                      "test-gpu-oldstyle": None, "test-gpu-nomarker": None, "test-gpu-otherpool": None}
    fake_runpod.echo_env = False  # the listing leaves the env out: the marker cannot be read
    assert {i.deployment for i in provider.list_instances()} == {None}


def test_a_pod_is_looked_up_by_id_and_gone_is_none(fake_runpod, make_runpod) -> None:
    provider = make_runpod()
    instance = provider.create("test-gpu-0009", A4000)
    fake_runpod.hide(instance.id)
    assert provider.list_instances() == []  # the listing lies
    found = provider.get_instance(instance.id)
    assert found is not None and (found.id, found.name, found.deployment) == (instance.id, "test-gpu-0009", DEPLOYMENT)
    provider.terminate(instance.id)
    assert provider.get_instance(instance.id) is None
    fake_runpod.inject("http500", operation="pod")
    with pytest.raises(ProviderUnavailable):  # a failed lookup is not "gone"
        provider.get_instance("abc123")


def test_price_for_cloud_type_all_is_the_dearer_one(make_runpod) -> None:
    assert make_runpod(cloud_type="ALL").price(RTX3090) == 0.43
    assert make_runpod(cloud_type="COMMUNITY").price(RTX3090) == 0.22


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"env": {"BROKER": 'x", key: "INJECTED", value: "1'}}, "env value of BROKER"),
    ({"env": {"A": "back\\slash"}}, "env value of A"),
    ({"env": {"A": "new\nline"}}, "env value of A"),
    ({"env": {"bad key": "v"}}, "env key"),
    ({"image": 'img" } ) { id } mutation { x'}, "image"),
    ({"gpu_types": ['A4000"']}, "GPU type"),
    ({"name_prefix": "Bad_Prefix"}, "worker name"),
    ({"network_volume_id": "vol\"x"}, "network volume id"),
])
def test_values_are_checked_before_anything_is_sent(fake_runpod, make_runpod, kwargs, what) -> None:
    with pytest.raises(InvalidProviderInput, match=what) as err:
        make_runpod(**kwargs)
    assert "INJECTED" not in str(err.value)  # an env value may be a secret: never echoed
    assert sum(fake_runpod.calls.values()) == 0


def test_bad_names_are_refused_before_the_create(fake_runpod, make_runpod) -> None:
    provider = make_runpod()
    for name in ('test-gpu-1"', "test-gpu 1", "TEST", "x" * 80, ""):
        with pytest.raises(InvalidProviderInput):
            provider.create(name, A4000)
    with pytest.raises(InvalidProviderInput):
        provider.terminate('abc") { id } #')
    assert fake_runpod.calls["create"] == 0 and fake_runpod.calls["terminate"] == 0


def test_capacity_error_is_recognised(fake_runpod, make_runpod) -> None:
    fake_runpod.set_capacity(A4000, 0)
    provider = make_runpod()
    with pytest.raises(CapacityError, match="no longer any instances"):
        provider.create("test-gpu-0002", A4000)
    provider.create("test-gpu-0003", RTX3090)
    assert [p.gpu.id for p in fake_runpod.live_pods()] == [RTX3090]
    assert CAPACITY_MESSAGE in str(CapacityError(CAPACITY_MESSAGE))


def test_wrong_key_is_an_auth_error(fake_runpod, make_runpod) -> None:
    with pytest.raises(ProviderAuthError):
        make_runpod(api_key="wrong").list_instances()
    fake_runpod.inject("unauthorized")
    with pytest.raises(ProviderAuthError):
        make_runpod().list_instances()


@pytest.mark.parametrize("kind", ["http500", "http503"])
def test_server_errors_are_unknown_outcomes(fake_runpod, make_runpod, kind: str) -> None:
    fake_runpod.inject(kind, operation="pods")
    with pytest.raises(ProviderUnavailable) as err:
        make_runpod().list_instances()
    assert not err.value.definite


def test_lost_answer_of_a_create_is_unknown_but_the_pod_exists(fake_runpod, make_runpod) -> None:
    fake_runpod.inject("after500", operation="create")
    provider = make_runpod()
    with pytest.raises(ProviderUnavailable):
        provider.create("test-gpu-0004", A4000)
    assert [i.name for i in provider.list_instances()] == ["test-gpu-0004"]


def test_a_hung_call_returns_at_the_deadline(fake_runpod, make_runpod) -> None:
    fake_runpod.inject("hang", operation="pods", delay_s=5.0)
    provider = make_runpod(timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="no answer within 0.5s"):
        provider.list_instances()
    assert time.monotonic() - started < 1.5


def test_secrets_never_appear_in_errors(fake_runpod, make_runpod) -> None:
    provider = make_runpod()
    fake_runpod.inject("http503", operation="create")
    with pytest.raises(ProviderUnavailable) as err:
        provider.create("test-gpu-0005", A4000)
    message = str(err.value)
    assert BROKER_SECRET not in message and fake_runpod.api_key not in message
    assert "aws-secret" not in message
