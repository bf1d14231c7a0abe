"""Providers of pool workers behind one interface (base.Provider): `local` processes and `runpod` pods."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from scaler.providers.base import Instance, Provider

if TYPE_CHECKING:
    from settings import Settings


def build_provider(settings: Settings, lease_key: str | None = None) -> Provider:
    """The provider named by SCALER_PROVIDER. The RunPod SDK is imported only when it is used.
    `lease_key`: the scaler's lease, which local workers watch so they stop with the control plane."""
    if settings.scaler_provider == "runpod":
        from scaler.providers.runpod import RunPodProvider, pod_env_from_settings

        key = settings.runpod_api_key.get_secret_value() if settings.runpod_api_key else ""
        return RunPodProvider(
            api_key=key, gpu_types=settings.gpu_types, image=settings.runpod_worker_image,
            name_prefix=settings.scaler_name_prefix, env=pod_env_from_settings(settings),
            deployment=settings.deployment_id,
            cloud_type=settings.runpod_cloud_type, container_disk_gb=settings.runpod_container_disk_gb,
            volume_gb=settings.runpod_volume_gb, network_volume_id=settings.runpod_network_volume_id,
            volume_mount_path=settings.runpod_volume_mount_path, template_id=settings.runpod_template_id,
            allowed_cuda_versions=settings.cuda_versions, data_centers=settings.data_centers,
            interruptible=settings.runpod_interruptible, bid_usd_per_hour=settings.runpod_bid_usd_per_hour,
            timeout_s=settings.scaler_provider_timeout_s)
    from scaler.providers.local import LocalProvider

    return LocalProvider(settings.scaler_local_dir, settings.scaler_name_prefix, env=os.environ,
                         deployment=settings.deployment_id, lease_key=lease_key)


__all__ = ["Instance", "Provider", "build_provider"]
