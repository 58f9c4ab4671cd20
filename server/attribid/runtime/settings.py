"""Every server setting in one frozen dataclass, read once at start.

Flags and environment variables are derived from the fields: field
``max_batch`` is flag ``--max-batch`` and variable ``ATTRIBID_MAX_BATCH``.
Precedence: flag, then environment, then the default below.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

ENV_PREFIX = "ATTRIBID_"


@dataclass(frozen=True)
class Settings:
    #: host:port to serve on; port 0 picks a free port (logged at start)
    address: str = "127.0.0.1:50051"
    #: PEM certificate chain to serve TLS with (needs tls_key); "" = plaintext, which only a
    #: loopback address may serve without --insecure
    tls_cert: str = ""
    #: PEM private key of tls_cert
    tls_key: str = ""
    #: PEM certificates of the CAs that sign client certificates: mutual TLS, a caller
    #: without such a certificate is refused (needs tls_cert); "" = none asked for
    tls_client_ca: str = ""
    #: bearer token file, one "TOKEN TENANT ROLE" a line ('#' comments; roles bidder, admin,
    #: ops), re-read when it changes and on SIGHUP; "" = no tokens: every caller is the one
    #: tenant "default", and only a loopback address is served without --insecure
    auth_tokens: str = ""
    #: serve a non-loopback address without TLS or without tokens (a trusted network or a
    #: proxy that does both); tokens then cross the network in plaintext
    insecure: bool = False
    #: Prometheus metrics HTTP port on the same host; 0 = a free port, -1 = off
    metrics_port: int = 9464
    #: ONNX model file; "" = the shipped model
    model_path: str = ""
    #: serve float32 even where an int8 variant passed its parity gate: without it, a
    #: model_path naming a folder, or "" (the shipped model), serves the folder's
    #: attribid.int8.onnx when it passed and was quantized from the attribid.onnx beside it
    #: (its model_version ends "-int8"); a model_path naming a file is served as given
    model_float32: bool = False
    #: onnxruntime intra-op threads for one inference
    intra_op_threads: int = 1
    #: touchpoints accepted per journey; longer journeys are refused
    max_touchpoints: int = 512
    #: touchpoints scored per journey (capped by the model's max_len): the most recent are kept
    max_journey: int = 64
    #: largest request or response in bytes; larger gets RESOURCE_EXHAUSTED
    max_message_bytes: int = 1 << 20
    #: most journeys in one onnxruntime run (onnxruntime's throughput per journey on this
    #: network stops improving beyond about batch 4 on a CPU: floor A in docs/performance.md)
    max_batch: int = 6
    #: longest a call waits for others to join its batch, in microseconds; 0 = batch only
    #: what queued up while the previous batch ran (adds no latency at low load)
    max_wait_us: int = 0
    #: keep this process's cores awake between calls: an idle-priority thread per core spins
    #: whenever the core has nothing else to run (lower latency at low load on virtual
    #: machines whose idle cores sleep; the cores read 100 % busy)
    spin_idle: bool = False
    #: how much lower the campaign-writes thread's scheduling priority is than the server's
    #: (nice steps, 0-19): it credits conversions with the network, and Score's threads
    #: should get a busy core first
    writer_niceness: int = 10
    #: calls waiting for inference beyond which new calls are shed
    max_queue: int = 512
    #: calls gRPC may hold before the server takes them up; past this it refuses a growing
    #: share of new calls, and all of them past 4x (the caller sees CANCELLED): without a
    #: bound, past saturation every call waits there until its deadline is nearly gone.
    #: 32 is what 32 callers in flight (saturation and then some) never reach; a larger
    #: bound serves bigger bursts and loses calls to deadlines at twice saturation;
    #: 0 = gRPC's own limits (1000 and 3000)
    max_pending: int = 32
    #: how shed calls are answered: "fallback" (flagged heuristic) or "reject" (RESOURCE_EXHAUSTED)
    shed_with: str = "fallback"
    #: a call whose remaining deadline is below the expected inference time plus this
    #: margin gets the fallback instead of waiting for the network
    deadline_margin_ms: float = 0.5
    #: timestamps this far past the reference time are refused as "in the future"
    future_tolerance_s: float = 300.0
    #: seconds in-flight calls get to finish after SIGTERM/SIGINT
    grace_s: float = 5.0
    #: server processes sharing the port (SO_REUSEPORT); each gets metrics_port + i
    workers: int = 1
    #: start beside a server or group already listening on the address, sharing the port
    #: (SO_REUSEPORT) until the old one is stopped: a rolling restart; without it a group
    #: finds the address in use and exits 1
    take_over: bool = False
    #: where campaign state lives (configurations, outcomes, idempotency keys, spend, the
    #: published allocations): sqlite:///PATH (the default: a file in the working directory;
    #: sqlite:////abs/path for an absolute one), redis://HOST:PORT/DB (shared by servers on
    #: several machines), or memory:// (this process only, lost when it exits)
    state: str = "sqlite:///attribid-state.sqlite"
    #: seconds the re-solve lease in the state store lasts unless renewed: the longest a
    #: dead leader's campaigns wait for another process to re-solve them
    state_lease_s: float = 10.0
    #: seconds between background re-solves of campaign allocations
    resolve_period_s: float = 5.0
    #: campaigns a tenant may have, its default campaign included; a new one past this gets
    #: RESOURCE_EXHAUSTED naming campaign_id
    max_campaigns: int = 1000
    #: longest campaign_id, batch_id and request_id in UTF-8 bytes; longer gets
    #: INVALID_ARGUMENT naming the field
    max_id_bytes: int = 128
    #: idempotency keys (batch ids) a tenant's campaigns keep in all, the oldest dropped
    #: first; a retry of a dropped batch counts again
    max_batch_ids: int = 1_000_000
    #: how long an idempotency key is kept, in seconds (7 days); a retry after that counts again
    batch_id_retention_s: float = 604800.0
    #: outcome rows in one ReportOutcomes; more gets INVALID_ARGUMENT naming outcomes
    max_report_rows: int = 5000
    #: conversions in one ReportConversions; more gets INVALID_ARGUMENT naming conversions
    max_report_conversions: int = 5000
    #: journeys of each kind (converting, not converting) a campaign keeps for the markov
    #: and shapley attributions: their fit's population, newest first
    attribution_window: int = 20000
    #: refused calls logged per second and method; the rest are counted in
    #: attribid_refusals_total and summarised in one "refusals suppressed" line a second
    refusal_log_per_s: int = 20
    #: log level: debug, info, warning, error
    log_level: str = "info"
    #: log one line per successful call (off by default: errors are always logged)
    log_calls: bool = False

    def __post_init__(self) -> None:
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"address: expected host:port, got {self.address!r}")
        positive = ("intra_op_threads", "max_touchpoints", "max_journey", "max_message_bytes",
                    "max_batch", "max_queue", "workers", "max_campaigns", "max_id_bytes",
                    "max_batch_ids", "max_report_rows", "max_report_conversions",
                    "attribution_window")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_wait_us", "deadline_margin_ms", "future_tolerance_s", "grace_s",
                     "resolve_period_s", "max_pending", "batch_id_retention_s",
                     "refusal_log_per_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.writer_niceness <= 19:
            raise ValueError(f"writer_niceness: must be 0 to 19, got {self.writer_niceness}")
        if self.shed_with not in ("fallback", "reject"):
            raise ValueError(f"shed_with: 'fallback' or 'reject', got {self.shed_with!r}")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log_level: debug|info|warning|error, got {self.log_level!r}")
        if self.metrics_port < -1 or self.metrics_port > 65535:
            raise ValueError(f"metrics_port: -1..65535, got {self.metrics_port}")
        if not self.state_lease_s > 0:
            raise ValueError(f"state_lease_s: must be > 0, got {self.state_lease_s}")
        if self.workers > 1 and self.state.startswith("memory:"):
            raise ValueError("state: memory:// is one process's own: --workers > 1 needs a "
                             "shared store, sqlite:///PATH or redis://HOST:PORT/DB")
        if self.workers > 1 and self.address.endswith(":0"):
            raise ValueError("address: --workers > 1 needs a fixed port to share")

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per Settings field, with the field's comment as its help."""
    doc = _field_docs()
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{doc.get(f.name, '')} (env {ENV_PREFIX}{f.name.upper()}, default {f.default!r})"
        # argparse %-formats help: a literal % (as in "100 % busy") must be doubled
        help_text = help_text.replace("%", "%%")
        if f.type == "bool" or isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, type=type(f.default), help=help_text)


def from_sources(args: argparse.Namespace | None = None,
                 environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from flags (when given), then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
            continue
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is None:
            continue
        kind: Any = type(f.default)
        try:
            values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: {exc}") from None
    return Settings(**values)


def _field_docs() -> dict[str, str]:
    """The ``#:`` comment above each field, so help text is written once."""
    import inspect

    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
        elif ":" in stripped and pending and not stripped.startswith(("def", "@", "#")):
            docs[stripped.split(":", 1)[0]] = " ".join(pending)
            pending = []
        else:
            pending = []
    return docs
