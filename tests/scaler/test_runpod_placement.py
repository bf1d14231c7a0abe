"""What a real RunPod account needs, through the unmodified SDK and the fake: template, CUDA versions, data
centers, a network volume for weights, and interruptible (spot) pods whose bid the caps count."""

from __future__ import annotations

import pytest

from scaler.errors import CapacityError, InvalidProviderInput, ProviderUnavailable
from scaler.providers import build_provider
from scaler.providers.runpod import RunPodProvider
from settings import WORKER_PRICE_ENV, Settings
from tests.fakes.runpod_api import parse_input
from tests.scaler.conftest import A4000, RTX3090


def _inputs(fake, mutation: str) -> list[dict]:
    return [parse_input(q, mutation) for q in fake.queries if f"{mutation}(" in q]


def test_template_cuda_data_center_and_volume_reach_the_api(fake_runpod, make_runpod) -> None:
    fake_runpod.add_template("tpl-private-ghcr")
    fake_runpod.add_network_volume("vol7weights", "US-KS-2")
    provider = make_runpod(template_id="tpl-private-ghcr", allowed_cuda_versions=["12.4", "12.8"],
                           data_centers=["US-KS-2"], network_volume_id="vol7weights", volume_mount_path="/weights")
    instance = provider.create("test-gpu-0001", A4000)
    pod = fake_runpod.pods[instance.id]
    assert pod.data_center == "US-KS-2"
    assert pod.extra["templateId"] == "tpl-private-ghcr" and pod.extra["networkVolumeId"] == "vol7weights"
    assert pod.extra["allowedCudaVersions"] == ["12.4", "12.8"] and pod.extra["volumeMountPath"] == "/weights"
    assert pod.extra["dataCenterId"] == "US-KS-2" and pod.image_name == provider.image


def test_a_network_volume_alone_places_the_pod_in_its_data_center(fake_runpod, make_runpod) -> None:
    fake_runpod.add_network_volume("vol7weights", "EU-RO-1")
    instance = make_runpod(network_volume_id="vol7weights").create("test-gpu-0002", A4000)
    assert fake_runpod.pods[instance.id].data_center == "EU-RO-1"  # the SDK looked the volume up


def test_data_centers_are_tried_in_order_while_they_have_no_capacity(fake_runpod, make_runpod) -> None:
    fake_runpod.set_capacity(A4000, 0, data_center="EU-RO-1")
    provider = make_runpod(data_centers=["EU-RO-1", "US-KS-2"])
    instance = provider.create("test-gpu-0003", A4000)
    assert fake_runpod.pods[instance.id].data_center == "US-KS-2"
    assert [i["dataCenterId"] for i in _inputs(fake_runpod, "podFindAndDeployOnDemand")] == ["EU-RO-1", "US-KS-2"]

    fake_runpod.set_capacity(A4000, 0, data_center="US-KS-2")
    with pytest.raises(CapacityError):
        provider.create("test-gpu-0004", A4000)
    assert len(fake_runpod.live_pods()) == 1


def test_a_lost_answer_is_never_retried_in_another_data_center(fake_runpod, make_runpod) -> None:
    fake_runpod.inject("after500", operation="create")
    with pytest.raises(ProviderUnavailable):
        make_runpod(data_centers=["EU-RO-1", "US-KS-2"]).create("test-gpu-0005", A4000)
    assert fake_runpod.calls["create"] == 1 and len(fake_runpod.live_pods()) == 1


@pytest.mark.parametrize(("versions", "center"), [(["12.2"], "CA-MTL-1"), (["12.4", "12.5"], "US-KS-2"),
                                                  (["11.8"], None)])
def test_allowed_cuda_versions_choose_the_hosts(fake_runpod, make_runpod, versions, center) -> None:
    provider = make_runpod(allowed_cuda_versions=versions)
    if center is None:
        with pytest.raises(CapacityError):
            provider.create("test-gpu-0006", A4000)
        return
    assert fake_runpod.pods[provider.create("test-gpu-0006", A4000).id].data_center == center


def test_interruptible_pods_bid_the_spot_price_and_send_the_on_demand_input(fake_runpod, make_runpod) -> None:
    fake_runpod.add_template("tpl-1")
    options = dict(cloud_type="COMMUNITY", template_id="tpl-1", allowed_cuda_versions=["12.4"])
    spot = make_runpod(interruptible=True, **options)
    assert spot.price(RTX3090) == 0.11  # communitySpotPrice, not the on-demand 0.22
    instance = spot.create("test-gpu-0007", RTX3090)
    assert instance.usd_per_hour == 0.11 and fake_runpod.calls["rent"] == 1 and fake_runpod.calls["create"] == 0
    pod = fake_runpod.pods[instance.id]
    assert pod.interruptible and pod.cost_per_hr == 0.11
    [listed] = spot.list_instances()
    assert listed.usd_per_hour == 0.11

    make_runpod(**options).create("test-gpu-0007", RTX3090)  # the same pod, on demand
    [rented] = _inputs(fake_runpod, "podRentInterruptable")
    [on_demand] = _inputs(fake_runpod, "podFindAndDeployOnDemand")
    assert rented.pop("bidPerGpu") == 0.11
    prices = [{e["key"]: e["value"] for e in spec.pop("env")}[WORKER_PRICE_ENV] for spec in (rented, on_demand)]
    assert prices == ["0.11", "0.22"]  # each pod's chapters bill at what its caps counted: the bid for spot
    assert rented == on_demand


def test_a_configured_bid_is_what_the_caps_count(fake_runpod, make_runpod) -> None:
    spot = make_runpod(interruptible=True, bid_usd_per_hour=0.3, cloud_type="SECURE")
    assert spot.price(A4000) == 0.3
    pod = fake_runpod.pods[spot.create("test-gpu-0009", A4000).id]
    assert pod.cost_per_hr == 0.3 and pod.extra["bidPerGpu"] == 0.3


def test_a_bid_under_the_minimum_is_no_capacity_and_sends_nothing(fake_runpod, make_runpod) -> None:
    spot = make_runpod(interruptible=True, bid_usd_per_hour=0.01)
    with pytest.raises(CapacityError, match="under the minimum bid"):
        spot.create("test-gpu-0010", A4000)
    assert fake_runpod.calls["rent"] == 0 and fake_runpod.live_pods() == []


def test_an_outbid_pod_is_listed_as_exited(fake_runpod, make_runpod) -> None:
    spot = make_runpod(interruptible=True)
    instance = spot.create("test-gpu-0011", A4000)
    fake_runpod.preempt(instance.id)
    assert [(i.id, i.status) for i in spot.list_instances()] == [(instance.id, "exited")]


def test_the_usd_cap_counts_spot_bids(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    # SECURE spot prices: A4000 0.17, 3090 0.215. At a cap of 0.40 two A4000 fit; on demand (0.34) only one would.
    scaler = make_scaler(make_runpod(interruptible=True), max_usd_per_hour=0.40, max_step=10)
    enqueue(30)
    record = scaler.tick()
    assert [c.gpu_type for c in record.executed.created] == [A4000, A4000]
    assert record.decision.bound_by == "max_usd_per_hour"
    assert all(p.interruptible for p in fake_runpod.live_pods())
    assert sum(p.cost_per_hr for p in fake_runpod.live_pods()) == pytest.approx(0.34)


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"template_id": 'tpl" } ) { id'}, "template id"),
    ({"allowed_cuda_versions": ["12"]}, "CUDA version"),
    ({"data_centers": ["eu-ro-1"]}, "data center"),
    ({"volume_mount_path": "relative/path"}, "volume mount path"),
    ({"network_volume_id": "vol1", "data_centers": ["EU-RO-1", "US-KS-2"]}, "one data center"),
    ({"bid_usd_per_hour": 0.0}, "bid"),
])
def test_new_values_are_checked_before_anything_is_sent(fake_runpod, make_runpod, kwargs, what) -> None:
    with pytest.raises(InvalidProviderInput, match=what):
        make_runpod(**kwargs)
    assert sum(fake_runpod.calls.values()) == 0


def test_settings_reach_the_provider(fake_runpod, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SCALER_PROVIDER": "runpod", "RUNPOD_API_KEY": fake_runpod.api_key, "RUNPOD_TEMPLATE_ID": "tpl-9",
           "RUNPOD_ALLOWED_CUDA_VERSIONS": "12.4, 12.6", "RUNPOD_DATA_CENTERS": "EU-RO-1",
           "RUNPOD_NETWORK_VOLUME_ID": "vol9", "RUNPOD_VOLUME_MOUNT_PATH": "/weights",
           "RUNPOD_INTERRUPTIBLE": "true", "RUNPOD_BID_USD_PER_HOUR": "0.25"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    provider = build_provider(Settings())
    assert isinstance(provider, RunPodProvider)
    assert (provider.template_id, provider.allowed_cuda_versions, provider.data_centers) == (
        "tpl-9", ["12.4", "12.6"], ["EU-RO-1"])
    assert (provider.network_volume_id, provider.volume_mount_path) == ("vol9", "/weights")
    assert provider.interruptible and provider.bid_usd_per_hour == 0.25
