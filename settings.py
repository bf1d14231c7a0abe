"""All configuration, read once from the environment. Every default lives here and only here.

Each field's alias is its environment variable; its description is the README's configuration table
(`python -m settings` prints that table). Secrets are `SecretStr` so they never reach a log line.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUE_GPU = "gpu-long"
QUEUE_PREVIEW = "preview"
QUEUE_CONTROL = "control"
#: Set by the scaler on every worker it creates (pod env or process env): that worker's price in USD/hour.
WORKER_PRICE_ENV = "AUDIOBOOK_WORKER_USD_PER_HOUR"
QUEUES = (QUEUE_GPU, QUEUE_PREVIEW, QUEUE_CONTROL)
#: Default of AUDIOBOOK_LEASE_S; readers of broker depth that are not handed the setting use it too.
DEFAULT_LEASE_S = 60.0
#: Default hold limit on RabbitMQ: under its default consumer_timeout of 30 min, with a batch to spare.
AMQP_DEFAULT_HOLD_S = 1500.0


_CUDA_VERSION = re.compile(r"^\d{1,2}\.\d{1,2}$")
_DATA_CENTER = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-\d{1,3}$")


class SettingsError(ValueError):
    """The environment holds a bad value; the message names the variable."""


def _env(name: str, description: str, default, **kwargs):  # noqa: ANN001, ANN202 - thin Field wrapper
    return Field(default, validation_alias=AliasChoices(name), description=description, **kwargs)


class Settings(BaseSettings):
    """The one settings object. Celery names are mapped from it in celeryconfig.py."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    # --- broker and Celery -------------------------------------------------------------------------
    broker_url: SecretStr = _env(
        "CELERY_BROKER_URL", "Broker URL (Redis or AMQP). May hold a password: never logged.",
        SecretStr("redis://localhost:6379/0"))
    result_backend: SecretStr | None = _env(
        "CELERY_RESULT_BACKEND", "Result backend URL; empty means the broker URL.", None)
    broker_keyprefix: str = _env(
        "AUDIOBOOK_BROKER_KEYPREFIX", "Redis `global_keyprefix` for every broker key (shared Redis).", "")
    visibility_timeout_s: int = _env(
        "AUDIOBOOK_VISIBILITY_TIMEOUT_S",
        "Redis visibility timeout; must exceed the chapter time limit or chapters run twice.", 4 * 3600, gt=0)
    chapter_time_limit_s: int = _env(
        "AUDIOBOOK_CHAPTER_TIME_LIMIT_S", "Hard time limit of one chapter task (soft limit is 5 min less).",
        3 * 3600, gt=300)
    result_expires_s: int = _env(
        "AUDIOBOOK_RESULT_EXPIRES_S", "How long task results are kept.", 7 * 24 * 3600, gt=0)
    redis_master_name: str | None = _env(
        "AUDIOBOOK_REDIS_MASTER_NAME", "Sentinel master name, needed by `sentinel://` broker and backend URLs "
        "(Celery's `master_name` transport option).", None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    lease_s: float = _env(
        "AUDIOBOOK_LEASE_S", "Redis broker: a worker renews a lease on every message it holds each third of this; "
        "a held message whose lease lapsed (its worker died) goes back to the head of its queue at the next "
        "reaper pass (every SCALER_INTERVAL_SECONDS).", DEFAULT_LEASE_S, ge=3)
    max_hold_s: float | None = _env(
        "AUDIOBOOK_MAX_HOLD_S", "Longest one delivery of a chapter is held before the chapter checkpoints and "
        "continues as a new message with the same task id (RabbitMQ closes a channel whose delivery stays "
        "unacked past its consumer_timeout). Empty: 1500 on RabbitMQ (its default consumer_timeout is 1800 s), "
        "none on Redis; 0: never.", None, ge=0)

    # --- synthesis -----------------------------------------------------------------------------------
    storage_url: str = _env(
        "AUDIOBOOK_STORAGE_URL",
        "Where audio goes: `file:///abs/path`, a plain path, or `s3://bucket/prefix` (standard `AWS_*` "
        "variables and `AWS_ENDPOINT_URL`).", "./var/audio")
    model: str = _env(
        "AUDIOBOOK_MODEL", "TTS model: a hub id, a local directory or `piper[:voice]`; README \"Models and "
        "licences\" says which may be sold (`facebook/mms-tts-eng` may not).", "kakao-enterprise/vits-ljs")
    device: Literal["auto", "cpu", "cuda"] = _env(
        "AUDIOBOOK_DEVICE", "`auto` picks CUDA when available; fp16 is used on CUDA.", "auto")
    max_chapter_chars: int = _env(
        "AUDIOBOOK_MAX_CHAPTER_CHARS", "Longest chapter text accepted, in characters.", 200_000, gt=0)
    max_chunk_chars: int = _env(
        "AUDIOBOOK_MAX_CHUNK_CHARS", "Longest text sent to the model in one row; longer sentences split "
        "at clause boundaries.", 300, ge=20)
    max_batch_chars: int = _env(
        "AUDIOBOOK_MAX_BATCH_CHARS", "Characters per forward pass (batches are sized by total characters).",
        2400, ge=20)
    max_batch_size: int | None = _env(
        "AUDIOBOOK_MAX_BATCH_SIZE", "Rows per forward pass at most; empty lets the engine choose (VITS: 32 on "
        "CUDA, not yet measured; 1 on CPU, where bench/batching.py measures even length-sorted batches as "
        "slower).", None, ge=1)
    unknown_chars: Literal["spell", "fail"] = _env(
        "AUDIOBOOK_UNKNOWN_CHARS", "Characters outside the model's vocabulary: `spell` them by their "
        "Unicode name, or `fail` the chapter. Never dropped.", "spell")
    checkpoint_seconds: float = _env(
        "AUDIOBOOK_CHECKPOINT_SECONDS", "A chapter's progress is saved to storage at most this often (seconds of "
        "work, at the first window boundary after it) and when synthesis ends: storage requests grow with "
        "time, not sentences; a killed chapter redoes at most about this much.", 30.0, ge=0)
    max_attempts: int = _env(
        "AUDIOBOOK_MAX_ATTEMPTS", "Deliveries of one chapter before it fails for good (a chapter that "
        "kills its worker would otherwise loop forever).", 3, ge=1)
    target_rms_db: float = _env("AUDIOBOOK_TARGET_RMS_DB", "Loudness target (ACX: -23..-18 dB RMS).", -20.0)
    peak_db: float = _env(
        "AUDIOBOOK_PEAK_DB", "Sample peak ceiling (ACX: -3 dB) of chapter files and of book files as decoded.",
        -3.0, le=0)
    sentence_pause_s: float = _env("AUDIOBOOK_SENTENCE_PAUSE_S", "Silence between sentences.", 0.4, ge=0)
    paragraph_pause_s: float = _env("AUDIOBOOK_PARAGRAPH_PAUSE_S", "Silence between paragraphs.", 0.9, ge=0)
    chapter_head_s: float = _env("AUDIOBOOK_CHAPTER_HEAD_S", "Silence before a chapter.", 0.75, ge=0)
    chapter_tail_s: float = _env("AUDIOBOOK_CHAPTER_TAIL_S", "Silence after a chapter.", 2.0, ge=0)

    worker_usd_per_hour: float | None = _env(
        WORKER_PRICE_ENV, "This GPU worker's price in USD/hour: the scaler sets it on each pod or process it "
        "creates, and each chapter's usage bills its compute time at it. Unset: chapters carry no USD.", None, ge=0)

    # --- book outputs --------------------------------------------------------------------------------
    book_lufs: float = _env(
        "AUDIOBOOK_BOOK_LUFS", "Integrated loudness (ITU-R BS.1770) every chapter of a book file is brought to, "
        "so chapters match; a limiter then holds peaks under AUDIOBOOK_PEAK_DB.", -20.0, ge=-40, le=-10)
    mp3_bitrate_kbps: int = _env(
        "AUDIOBOOK_MP3_BITRATE", "MP3 bitrate in kbit/s, constant (ACX asks for at least 192).", 192, ge=32, le=320)
    m4b_bitrate_kbps: int = _env(
        "AUDIOBOOK_M4B_BITRATE", "AAC bitrate of M4B books in kbit/s (mono speech).", 64, ge=16, le=320)
    book_sample_rate: int = _env(
        "AUDIOBOOK_BOOK_SAMPLE_RATE", "Sample rate MP3 and M4B books are resampled to (ACX: 44100); FLAC keeps "
        "the model's rate.", 44100, ge=8000, le=96000)

    downloads_dir: str = _env(
        "AUDIOBOOK_DOWNLOADS_DIR", "Where `audiobook preview` (`previews/`) and `audiobook fetch` (`books/`) "
        "write files when not given a path.", "./var/downloads")

    # --- scaler --------------------------------------------------------------------------------------
    scaler_provider: Literal["local", "runpod"] = _env(
        "SCALER_PROVIDER", "`local` worker processes on this machine, or `runpod` pods.", "local")
    scaler_policy: Literal["table", "backlog"] = _env(
        "SCALER_POLICY", "`table` (step table on pending messages) or `backlog` (seconds of work).", "table")
    scaler_interval_s: float = _env(
        "SCALER_INTERVAL_SECONDS", "How often beat runs `audiobook.autoscale`.", 30.0, gt=0)
    scaler_min_workers: int = _env("SCALER_MIN_WORKERS", "Workers kept warm (1 = no cold starts).", 0, ge=0)
    scaler_max_workers: int = _env(
        "SCALER_MAX_WORKERS", "Hard cap on workers the scaler owns, booting and draining included.", 50, ge=0)
    scaler_max_usd_per_hour: float = _env(
        "SCALER_MAX_USD_PER_HOUR", "Hard cap on the summed price of owned workers.", 25.0, ge=0)
    scaler_daily_budget_usd: float | None = _env(
        "SCALER_DAILY_BUDGET_USD", "Optional USD per UTC day; when spent, scale toward the minimum.", None)
    scaler_idle_s: float = _env(
        "SCALER_IDLE_SECONDS", "Scale down only after the queue has been empty this long.", 600.0, ge=0)
    scaler_max_step: int = _env("SCALER_MAX_STEP", "Most workers added in one tick.", 10, ge=1)
    scaler_boot_timeout_s: float = _env(
        "SCALER_BOOT_TIMEOUT_SECONDS", "A worker not up after this long is replaced.", 900.0, gt=0)
    scaler_boot_s: float = _env(
        "SCALER_BOOT_SECONDS", "Expected boot time of a worker (used by the backlog policy).", 180.0, ge=0)
    scaler_target_drain_s: float = _env(
        "SCALER_TARGET_DRAIN_SECONDS", "Backlog policy: drain the queue within this long.", 600.0, gt=0)
    scaler_seconds_per_char: float = _env(
        "SCALER_SECONDS_PER_CHAR", "GPU seconds per character, for the backlog policy and "
        "`audiobook inspect`'s estimates. The default is an estimate (18x real time), not a measurement: set "
        "the `seconds_per_char` bench/gpu_check.sh prints for the pool's GPU (README: Throughput and cost).",
        0.004, gt=0)
    scaler_dry_run: bool = _env("SCALER_DRY_RUN", "Decide and record, but create or terminate nothing.", False)
    scaler_orphans: Literal["adopt", "terminate"] = _env(
        "SCALER_ORPHANS", "What to do with marked workers the scaler does not know.", "adopt")
    scaler_name_prefix: str = _env(
        "SCALER_NAME_PREFIX", "Name prefix of the scaler's pods/processes.", "audiobook-gpu",
        pattern=r"^[a-z0-9-]{1,40}$")
    scaler_capacity_backoff_s: float = _env(
        "SCALER_CAPACITY_BACKOFF_SECONDS", "After 'no instances available', skip that GPU type this long.",
        300.0, ge=0)
    scaler_provider_timeout_s: float = _env(
        "SCALER_PROVIDER_TIMEOUT_SECONDS", "Longest wait for one provider call; past it the outcome counts as "
        "unknown (a create keeps its reservation until seen or SCALER_BOOT_TIMEOUT_SECONDS).", 20.0, gt=0)
    scaler_history: int = _env("SCALER_HISTORY", "Decision records kept in Redis.", 200, ge=1)
    scaler_local_dir: str = _env(
        "SCALER_LOCAL_DIR", "Local provider: where worker pid files and logs live.", "./var/workers")
    scaler_metrics_port: int | None = _env(
        "SCALER_METRICS_PORT", "Serve Prometheus metrics on this port from the control worker (they are read "
        "from Redis at each scrape: every process serves the same latest tick).", None)
    scaler_deployment_id: str | None = _env(
        "SCALER_DEPLOYMENT_ID", "Names this deployment in every worker's marker; pods of other deployments on the "
        "same account are never adopted, drained or terminated. Empty: derived from the state Redis's address "
        "(set it explicitly in production, so a moved Redis keeps its pods).", None, pattern=r"^[a-z0-9-]{1,40}$")
    scaler_crash_loop_workers: int = _env(
        "SCALER_CRASH_LOOP_WORKERS", "Crash-loop breaker: after this many workers in a row fail to become ready "
        "(no registration within the boot timeout, or a model that cannot load), stop creating beyond "
        "SCALER_MIN_WORKERS.", 3, ge=1)
    scaler_crash_loop_cooloff_s: float = _env(
        "SCALER_CRASH_LOOP_COOLOFF_SECONDS", "Crash-loop breaker: creating resumes after this long (or at "
        "`audiobook scaler resume`); one more failed worker stops it again.", 1800.0, ge=0)
    scaler_local_lease_s: float = _env(
        "SCALER_LOCAL_LEASE_SECONDS", "Local provider: a worker stops when no scaler tick has renewed its lease "
        "for this long (the control plane is gone).", 120.0, gt=0)

    # --- RunPod --------------------------------------------------------------------------------------
    runpod_api_key: SecretStr | None = _env("RUNPOD_API_KEY", "RunPod API key (assigned to `runpod.api_key`).", None)
    runpod_gpu_types: str = _env(
        "RUNPOD_GPU_TYPES", "GPU types to try, in order, comma-separated.",
        "NVIDIA RTX A4000,NVIDIA GeForce RTX 3090")
    runpod_worker_image: str = _env(
        "RUNPOD_WORKER_IMAGE", "Image of the persistent GPU worker.", "ghcr.io/example/audiobook-worker:latest")
    runpod_cloud_type: Literal["ALL", "SECURE", "COMMUNITY"] = _env(
        "RUNPOD_CLOUD_TYPE", "RunPod cloud type for pods.", "SECURE")
    runpod_container_disk_gb: int = _env("RUNPOD_CONTAINER_DISK_GB", "Container disk per pod.", 20, gt=0)
    runpod_volume_gb: int = _env("RUNPOD_VOLUME_GB", "Pod volume size (0 = none).", 0, ge=0)
    runpod_network_volume_id: str | None = _env(
        "RUNPOD_NETWORK_VOLUME_ID", "Network volume with model weights (it pins pods to its data center).", None)
    runpod_volume_mount_path: str = _env(
        "RUNPOD_VOLUME_MOUNT_PATH", "Where pods mount the network volume; point AUDIOBOOK_MODEL at a model "
        "directory under it.", "/runpod-volume", pattern=r"^/[A-Za-z0-9._/-]{1,200}$")
    runpod_template_id: str | None = _env(
        "RUNPOD_TEMPLATE_ID", "RunPod template for pods, e.g. one holding the registry credentials of a private "
        "image; image, env and start command still come from these settings.", None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$")
    runpod_allowed_cuda_versions: str = _env(
        "RUNPOD_ALLOWED_CUDA_VERSIONS", "Host CUDA versions pods may land on, comma-separated: none older than "
        "the worker image's CUDA build (docker/Dockerfile). Empty allows any.", "12.4,12.5,12.6,12.7,12.8")
    runpod_data_centers: str = _env(
        "RUNPOD_DATA_CENTERS", "Data centers for pods, comma-separated, tried in order when one has no capacity "
        "(e.g. `EU-RO-1,US-KS-2`); empty lets RunPod choose.", "")
    runpod_interruptible: bool = _env(
        "RUNPOD_INTERRUPTIBLE", "Rent interruptible (spot) pods at a bid instead of on-demand pods; an outbid pod "
        "stops and the scaler replaces it.", False)
    runpod_bid_usd_per_hour: float | None = _env(
        "RUNPOD_BID_USD_PER_HOUR", "Bid per GPU and hour for interruptible pods; empty bids the GPU type's current "
        "spot price. The caps count the bid.", None, gt=0)
    runpod_worker_broker_url: SecretStr | None = _env(
        "RUNPOD_WORKER_BROKER_URL", "Broker URL as pods reach it; empty means CELERY_BROKER_URL.", None)
    runpod_preview_endpoint_id: str | None = _env(
        "RUNPOD_PREVIEW_ENDPOINT_ID", "Serverless endpoint for previews; empty runs them locally.", None)

    # --- previews ------------------------------------------------------------------------------------
    preview_max_seconds: float = _env("PREVIEW_MAX_SECONDS", "Longest preview audio.", 30.0, gt=0)
    preview_seconds_per_char: float = _env(
        "PREVIEW_SECONDS_PER_CHAR", "Spoken seconds per character: cuts preview text, and estimates a book's "
        "audio length (`audiobook inspect`).", 0.07, gt=0)
    preview_timeout_s: float = _env(
        "PREVIEW_TIMEOUT_SECONDS", "How long one serverless attempt is waited for before it is cancelled.", 60.0, gt=0)
    preview_execution_timeout_s: float = _env(
        "PREVIEW_EXECUTION_TIMEOUT_SECONDS", "Execution timeout sent as every preview job's RunPod policy "
        "(RunPod's default is 600; it accepts more than 5 s, up to 7 days): the most one job can bill, so "
        "each attempt reserves this x PREVIEW_USD_PER_SECOND and a job whose bill stays unknown is charged it.",
        600.0, gt=5, le=7 * 24 * 3600)
    preview_rate_per_minute: int = _env(
        "PREVIEW_RATE_PER_MINUTE", "Previews one requester may ask for per minute.", 10, ge=1)
    preview_max_usd_per_hour: float = _env(
        "PREVIEW_MAX_USD_PER_HOUR", "Cap on serverless spend for previews.", 2.0, ge=0)
    preview_requester_share: float = _env(
        "PREVIEW_REQUESTER_SHARE", "Fraction (0-1] of PREVIEW_MAX_USD_PER_HOUR one requester may use in an hour, "
        "so one requester cannot lock the others out.", 0.25, gt=0, le=1)
    preview_usd_per_second: float = _env(
        "PREVIEW_USD_PER_SECOND", "Serverless price per execution second.", 0.00016, ge=0)
    preview_max_retries: int = _env("PREVIEW_MAX_RETRIES", "Retries of a failed serverless call.", 3, ge=0)

    # --- Flower --------------------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = _env(
        "FLOWER_BASIC_AUTH", "`user:password` for Flower; Flower refuses to start without it.", None)

    @field_validator("broker_url", "result_backend", "runpod_worker_broker_url", "runpod_api_key",
                     "flower_basic_auth", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("scaler_daily_budget_usd", "runpod_preview_endpoint_id", "runpod_network_volume_id",
                     "max_batch_size", "worker_usd_per_hour", "scaler_deployment_id", "redis_master_name",
                     "runpod_template_id", "runpod_bid_usd_per_hour", "max_hold_s",
                     "scaler_metrics_port", mode="before")
    @classmethod
    def _empty_optional(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("runpod_allowed_cuda_versions")
    @classmethod
    def _cuda_versions(cls, value: str) -> str:
        for version in _split(value):
            if not _CUDA_VERSION.match(version):
                raise ValueError(f"{version!r} is not a CUDA version like 12.4")
        return value

    @field_validator("runpod_data_centers")
    @classmethod
    def _data_centers(cls, value: str) -> str:
        for center in _split(value):
            if not _DATA_CENTER.match(center):
                raise ValueError(f"{center!r} is not a RunPod data center id like EU-RO-1")
        return value

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.visibility_timeout_s <= self.chapter_time_limit_s:
            raise ValueError(
                "AUDIOBOOK_VISIBILITY_TIMEOUT_S must exceed AUDIOBOOK_CHAPTER_TIME_LIMIT_S, "
                "or a running chapter is delivered twice")
        if self.scaler_min_workers > self.scaler_max_workers:
            raise ValueError("SCALER_MIN_WORKERS must not exceed SCALER_MAX_WORKERS")
        if self.scaler_local_lease_s <= self.scaler_interval_s:
            raise ValueError("SCALER_LOCAL_LEASE_SECONDS must exceed SCALER_INTERVAL_SECONDS, or local workers "
                             "stop between two ticks")
        if self.max_batch_chars < self.max_chunk_chars:
            raise ValueError("AUDIOBOOK_MAX_BATCH_CHARS must be at least AUDIOBOOK_MAX_CHUNK_CHARS")
        share_usd = self.preview_requester_share * self.preview_max_usd_per_hour
        worst_usd = self.preview_execution_timeout_s * self.preview_usd_per_second
        if self.runpod_preview_endpoint_id and worst_usd <= self.preview_max_usd_per_hour and share_usd < worst_usd:
            raise ValueError(
                f"PREVIEW_REQUESTER_SHARE x PREVIEW_MAX_USD_PER_HOUR (${share_usd:g} an hour) must hold one preview's "
                f"worst case, PREVIEW_EXECUTION_TIMEOUT_SECONDS x PREVIEW_USD_PER_SECOND (${worst_usd:g}), or no "
                f"requester could get a preview")
        urls = [url.get_secret_value() for url in (self.broker_url, self.result_backend, self.runpod_worker_broker_url)
                if url]
        if any(u.lower().startswith("sentinel://") for u in urls) and not self.redis_master_name:
            raise ValueError("a sentinel:// broker or backend URL needs AUDIOBOOK_REDIS_MASTER_NAME (the master's name "
                             "in the sentinels' configuration)")
        if self.runpod_network_volume_id and len(self.data_centers) > 1:
            raise ValueError("RUNPOD_NETWORK_VOLUME_ID pins pods to the volume's data center: set RUNPOD_DATA_CENTERS "
                             "to that one data center, or leave it empty")
        return self

    # --- derived values -------------------------------------------------------------------------------
    @property
    def backend_url(self) -> str:
        return (self.result_backend or self.broker_url).get_secret_value()

    @property
    def deployment_id(self) -> str:
        """SCALER_DEPLOYMENT_ID, or a stable id of the Redis that holds the scaler's state (no password)."""
        if self.scaler_deployment_id:
            return self.scaler_deployment_id
        broker = self.broker_url.get_secret_value()
        state_url = broker if broker.split("://", 1)[0] in ("redis", "rediss", "unix", "sentinel") \
            else self.backend_url
        address = re.sub(r"://[^@/;]*@", "://", state_url)
        return "d" + hashlib.sha256(f"{address}|{self.broker_keyprefix}".encode()).hexdigest()[:10]

    @property
    def gpu_types(self) -> list[str]:
        return _split(self.runpod_gpu_types)

    @property
    def cuda_versions(self) -> list[str]:
        return _split(self.runpod_allowed_cuda_versions)

    @property
    def data_centers(self) -> list[str]:
        return _split(self.runpod_data_centers)

    @property
    def storage_uri(self) -> str:
        """The storage URL with plain paths made absolute (`file:///...`)."""
        if "://" in self.storage_url:
            return self.storage_url
        return Path(self.storage_url).expanduser().resolve().as_uri()


def _split(value: str) -> list[str]:
    """A comma-separated setting as its non-empty, stripped items."""
    return [item.strip() for item in value.split(",") if item.strip()]


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; raises SettingsError naming the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"bad configuration: {problems}") from None


def markdown_table() -> str:
    """The README's configuration table, from the field descriptions."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        name = field.validation_alias.choices[0]  # type: ignore[union-attr]
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{name}` | {shown} | {field.description} |")
    return "\n".join(rows)


def update_readme(path: Path) -> None:
    """Replace the table under README's "## Configuration" heading with the current one."""
    text = path.read_text()
    start = text.index("\n| variable | default | meaning |", text.index("## Configuration"))
    end = text.index("\n## ", start + 1)
    path.write_text(text[:start] + "\n" + markdown_table() + "\n" + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-readme"]:
        update_readme(Path(__file__).with_name("README.md"))
    else:
        sys.stdout.write(markdown_table() + "\n")
