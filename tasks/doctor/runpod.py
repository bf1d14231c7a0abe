"""RunPod: the API key, GPU types priced under the caps, the network volume, the preview endpoint's health.

Everything goes through the unmodified `runpod` SDK (RUNPOD_API_BASE_URL / RUNPOD_ENDPOINT_BASE_URL point
it elsewhere, as the tests do with the loopback fakes).
"""

from __future__ import annotations

from typing import Any

from tasks.doctor import CheckResult, Context, failed, passed, skipped

_KEY_FIX = "create a key in the RunPod console (Settings > API Keys) and set RUNPOD_API_KEY to it"


def _uses_runpod(context: Context) -> bool:
    return context.on_runpod or bool(context.settings.runpod_preview_endpoint_id)


def _sdk(context: Context) -> Any:
    from scaler.providers.runpod import import_runpod

    runpod = import_runpod()
    key = context.settings.runpod_api_key
    runpod.api_key = key.get_secret_value() if key else None  # the SDK never reads RUNPOD_API_KEY itself
    return runpod


def check_key(context: Context) -> CheckResult:
    if not _uses_runpod(context):
        return skipped("runpod key", "no RunPod use configured (SCALER_PROVIDER=local, no preview endpoint)")
    if not context.settings.runpod_api_key:
        return failed("runpod key", "RUNPOD_API_KEY is not set", _KEY_FIX)
    runpod = _sdk(context)
    try:
        user = runpod.get_user()
    except runpod.error.AuthenticationError as exc:
        return failed("runpod key", f"refused: {exc}", _KEY_FIX)
    except Exception as exc:  # noqa: BLE001 - HTTP, JSON and GraphQL errors alike
        return failed("runpod key", f"{type(exc).__name__}: {exc}",
                      "RunPod's API does not answer from here: check the VM's outbound HTTPS")
    return passed("runpod key", f"valid (account {user.get('id')})")


def check_gpu_types(context: Context) -> CheckResult:
    """Each RUNPOD_GPU_TYPES priced as the scaler prices it (cloud type, spot bid), and one under the cap."""
    from scaler.errors import ProviderError
    from scaler.providers import build_provider

    s = context.settings
    if not context.on_runpod:
        return skipped("gpu types", "SCALER_PROVIDER is local")
    if not s.runpod_api_key:
        return failed("gpu types", "cannot price without RUNPOD_API_KEY", _KEY_FIX)
    provider = build_provider(s)
    prices: dict[str, float] = {}
    problems: list[str] = []
    fixes: list[str] = []
    for gpu_type in provider.gpu_types():
        try:
            prices[gpu_type] = provider.price(gpu_type)
        except ProviderError as exc:
            problems.append(f"{gpu_type}: {exc}")
            fixes.append(_price_fix(exc, s.runpod_interruptible))
    kind = "spot bid" if s.runpod_interruptible else "on demand"
    shown = ", ".join(f"{t} {p:.3f}" for t, p in prices.items())
    if problems:
        return failed("gpu types", "; ".join(problems) + (f" (priced: {shown})" if shown else ""),
                      "; ".join(dict.fromkeys(fixes)))
    cheapest = min(prices.values(), default=None)
    if cheapest is None or cheapest > s.scaler_max_usd_per_hour:
        return failed("gpu types", f"{shown} USD/h ({s.runpod_cloud_type}, {kind}): none fits SCALER_MAX_USD_PER_HOUR "
                                   f"{s.scaler_max_usd_per_hour:g}",
                      "raise SCALER_MAX_USD_PER_HOUR or add a cheaper type to RUNPOD_GPU_TYPES")
    return passed("gpu types", f"{shown} USD/h ({s.runpod_cloud_type}, {kind}); cap "
                               f"{s.scaler_max_usd_per_hour:g} USD/h")


def _price_fix(error: Exception, interruptible: bool) -> str:
    from scaler.errors import CapacityError, ProviderAuthError

    if isinstance(error, ProviderAuthError):
        return _KEY_FIX
    if isinstance(error, CapacityError) and interruptible:
        return "bid at least the type's minimum bid (RUNPOD_BID_USD_PER_HOUR), or leave it empty to bid the spot price"
    if "No GPU found" in str(error) or " price for " in str(error):
        return "use GPU type ids as runpod.get_gpus() lists them, e.g. 'NVIDIA RTX A4000', in RUNPOD_GPU_TYPES"
    return "RunPod's API does not answer from here: check the VM's outbound HTTPS"


def check_network_volume(context: Context) -> CheckResult:
    s = context.settings
    if not context.on_runpod or not s.runpod_network_volume_id:
        return skipped("network volume", "RUNPOD_NETWORK_VOLUME_ID not set: the image carries the weights")
    if not s.runpod_api_key:
        return failed("network volume", "cannot look it up without RUNPOD_API_KEY", _KEY_FIX)
    try:
        volumes = _sdk(context).get_user().get("networkVolumes") or []
    except Exception as exc:  # noqa: BLE001
        return failed("network volume", f"{type(exc).__name__}: {exc}", _KEY_FIX)
    volume = next((v for v in volumes if v.get("id") == s.runpod_network_volume_id), None)
    if volume is None:
        return failed("network volume", f"{s.runpod_network_volume_id} is not a volume of this account",
                      "create one in the RunPod console (Storage) and set RUNPOD_NETWORK_VOLUME_ID to its id")
    center = volume.get("dataCenterId")
    if s.data_centers and center not in s.data_centers:
        return failed("network volume", f"{volume['id']} is in {center}, not in RUNPOD_DATA_CENTERS "
                                        f"{','.join(s.data_centers)}",
                      f"set RUNPOD_DATA_CENTERS={center}: pods can mount a volume only in its data center")
    return passed("network volume", f"{volume['id']} ({volume.get('name')}, {volume.get('size')} GB) in {center}, "
                                    f"mounted at {s.runpod_volume_mount_path}")


def check_endpoint(context: Context) -> CheckResult:
    """The preview endpoint answers /health with this key; its scaling settings are shown."""
    s = context.settings
    endpoint_id = s.runpod_preview_endpoint_id
    if not endpoint_id:
        return skipped("preview endpoint", "RUNPOD_PREVIEW_ENDPOINT_ID not set: previews run on the control worker")
    if not s.runpod_api_key:
        return failed("preview endpoint", "RUNPOD_API_KEY is not set", _KEY_FIX)
    runpod = _sdk(context)
    try:
        health = runpod.Endpoint(endpoint_id, api_key=s.runpod_api_key.get_secret_value()).health(timeout=10)
    except Exception as exc:  # noqa: BLE001 - RuntimeError on 401, requests errors otherwise
        text = f"{type(exc).__name__}: {exc}"
        return failed("preview endpoint", f"{endpoint_id}: {text}", _endpoint_fix(text))
    workers, jobs = health.get("workers") or {}, health.get("jobs") or {}
    detail = (f"{endpoint_id}: {workers.get('idle', 0)} idle and {workers.get('running', 0)} running workers, "
              f"{jobs.get('inQueue', 0)} queued")
    try:
        listed = next((e for e in runpod.get_endpoints() if e.get("id") == endpoint_id), None)
    except Exception:  # noqa: BLE001 - the settings are shown when readable; health decided the check
        listed = None
    if listed:
        detail += f"; max workers {listed.get('workersMax')}, idle timeout {listed.get('idleTimeout')} s"
    return passed("preview endpoint", detail)


def _endpoint_fix(error: str) -> str:
    if "401" in error or "Unauthorized" in error:
        return _KEY_FIX
    if "404" in error:
        return ("create the endpoint from the preview image (docs/deploy.md, step 5) and set "
                "RUNPOD_PREVIEW_ENDPOINT_ID to its id")
    return "RunPod's serverless API does not answer from here: check the VM's outbound HTTPS"
