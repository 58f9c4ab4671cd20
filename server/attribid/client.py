"""A small client for platform teams: plain Python data in, typed results out.

    from attribid.client import Client

    with Client("127.0.0.1:50051", timeout=0.05) as client:
        result = client.score(
            [{"channel": "search", "timestamp": 1764300000, "interaction": "click"},
             {"channel": "email", "timestamp": 1764303600, "interaction": "impression"}],
            impression={"channel": "display", "floor_price": 0.1})
        print(result.conversion_probability, result.credit, result.bid)

TLS and tokens: ``Client(address, tls=True, root_certificates="ca.pem", token=TOKEN)``;
``client_cert=``/``client_key=`` add a client certificate for mutual TLS. Certificates
and keys are PEM, given as bytes or as a path; ``tls=True`` alone trusts the system's
roots. The token goes in every call's ``authorization`` metadata as ``Bearer TOKEN``.

Retries: only what is safe. Score is retried on UNAVAILABLE (nothing was
scored) and on a CANCELLED this client did not ask for (a gRPC server that
shuts down cancels the calls it had received but not yet handed to the
service: they never ran), within the same overall deadline; ReportOutcomes
also on DEADLINE_EXCEEDED, since its batch id makes a repeat harmless (ReportConversions too).
Nothing is retried on INVALID_ARGUMENT, RESOURCE_EXHAUSTED or other refusals.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc

_INTERACTIONS = {"impression": pb.INTERACTION_IMPRESSION, "click": pb.INTERACTION_CLICK}
_DEVICES = {"": pb.DEVICE_UNSPECIFIED, "unknown": pb.DEVICE_UNSPECIFIED, "desktop": pb.DEVICE_DESKTOP,
            "mobile": pb.DEVICE_MOBILE, "tablet": pb.DEVICE_TABLET}
# This client never cancels a call itself (a cancelled asyncio task raises CancelledError, not
# an RpcError), so a CANCELLED status comes from the server's side.
_SCORE_RETRY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
_REPORT_RETRY = _SCORE_RETRY | {grpc.StatusCode.DEADLINE_EXCEEDED}

#: PEM data as bytes, or the path of a PEM file
Pem = Union[bytes, str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ScoreResult:
    request_id: str
    conversion_probability: float
    credit: dict[str, float]
    bid: dict[str, float]
    impression_bid: float
    model_version: str
    fallback: bool
    fallback_reason: str
    truncated: bool
    touchpoints_used: int

    @classmethod
    def from_message(cls, msg: pb.ScoreResponse) -> "ScoreResult":
        return cls(msg.request_id, msg.conversion_probability, dict(msg.credit), dict(msg.bid),
                   msg.impression_bid, msg.model_version, msg.fallback, msg.fallback_reason,
                   msg.truncated, msg.touchpoints_used)


def _epoch_ms(value: Any) -> int:
    """Epoch seconds (int/float), a datetime, or an ISO-8601 string -> epoch milliseconds."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(round(dt.timestamp() * 1000))
    if isinstance(value, str):
        return _epoch_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return int(round(float(value) * 1000))


def touchpoint(data: Mapping[str, Any]) -> pb.Touchpoint:
    """One touchpoint from a dict: channel, timestamp (or timestamp_ms), interaction, cost, device."""
    ts = data["timestamp_ms"] if "timestamp_ms" in data else _epoch_ms(data["timestamp"])
    interaction = data.get("interaction", "impression")
    device = data.get("device", "")
    return pb.Touchpoint(
        channel=data["channel"], timestamp_ms=int(ts),
        interaction=_INTERACTIONS[interaction] if isinstance(interaction, str) else cast(pb.Interaction, int(interaction)),
        cost=float(data.get("cost", 0.0)),
        device=_DEVICES[device] if isinstance(device, str) else cast(pb.Device, int(device)),
    )


def score_request(journey: Iterable[Mapping[str, Any]], *, campaign_id: str = "",
                  impression: Mapping[str, Any] | None = None, product_category: str = "",
                  request_id: str | None = None) -> pb.ScoreRequest:
    """Build a ScoreRequest from plain data (see touchpoint() for the keys)."""
    imp = impression or {}
    imp_ts = imp.get("timestamp")
    return pb.ScoreRequest(
        request_id=request_id or uuid.uuid4().hex, campaign_id=campaign_id,
        journey=[touchpoint(t) for t in journey], product_category=product_category,
        impression=pb.ImpressionContext(
            channel=imp.get("channel", ""), floor_price=float(imp.get("floor_price", 0.0)),
            timestamp_ms=_epoch_ms(imp_ts) if imp_ts is not None else 0),
    )


def outcomes_request(campaign_id: str, batch_id: str,
                     outcomes: Mapping[str, Mapping[str, float]]) -> pb.ReportOutcomesRequest:
    """``outcomes``: channel -> {"spend", "conversions", "revenue", "impressions"}."""
    return pb.ReportOutcomesRequest(
        batch_id=batch_id, campaign_id=campaign_id,
        outcomes=[pb.ChannelOutcome(channel=ch, **{k: float(v) for k, v in row.items()})
                  for ch, row in outcomes.items()])


def conversions_request(campaign_id: str, batch_id: str,
                        conversions: Iterable[Mapping[str, Any]]) -> pb.ReportConversionsRequest:
    """``conversions``: each {"conversion_id", "timestamp" (or "timestamp_ms"), "value",
    "journey": [touchpoint dicts, see touchpoint()]}."""
    out = []
    for c in conversions:
        ts = c["timestamp_ms"] if "timestamp_ms" in c else _epoch_ms(c["timestamp"])
        out.append(pb.Conversion(conversion_id=str(c.get("conversion_id", "")),
                                 timestamp_ms=int(ts), value=float(c.get("value", 0.0)),
                                 journey=[touchpoint(t) for t in c["journey"]]))
    return pb.ReportConversionsRequest(batch_id=batch_id, campaign_id=campaign_id,
                                       conversions=out)


def _pem(value: Pem | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def channel_credentials(tls: bool = False, root_certificates: Pem | None = None,
                        client_cert: Pem | None = None,
                        client_key: Pem | None = None) -> grpc.ChannelCredentials | None:
    """TLS credentials for a channel, or None for plaintext (no TLS option given).

    Any certificate option implies ``tls``; ``client_cert`` and ``client_key`` go together.

    >>> channel_credentials() is None, channel_credentials(tls=True) is not None
    (True, True)
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key: mutual TLS needs both")
    if not tls and root_certificates is None and client_cert is None:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_pem(root_certificates),
                                        private_key=_pem(client_key),
                                        certificate_chain=_pem(client_cert))


def bearer(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The call metadata that carries ``token``; None without a token.

    >>> bearer("t0k3n"), bearer(None)
    ((('authorization', 'Bearer t0k3n'),), None)
    """
    return (("authorization", f"Bearer {token}"),) if token else None


class _RetryPolicy:
    """What both clients share: the deadline, the retry budget and when to retry."""

    def __init__(self, timeout: float, retries: int, backoff: float,
                 token: str | None = None) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        #: sent with every call: the bearer token, if any
        self.metadata = bearer(token)

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _pause(self, code: grpc.StatusCode, attempt: int, deadline: float,
               retry_on: frozenset) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based), or None to give up."""
        pause = self.backoff * 2 ** (attempt - 1)
        if code not in retry_on or attempt > self.retries or time.monotonic() + pause >= deadline:
            return None
        return pause


class Client(_RetryPolicy):
    """Blocking client. ``timeout`` is each call's overall deadline in seconds; TLS and
    ``token`` as the module docstring says."""

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: float = 0.1,
                 retries: int = 2, backoff: float = 0.002,
                 options: Sequence[tuple[str, Any]] = (), tls: bool = False,
                 root_certificates: Pem | None = None, client_cert: Pem | None = None,
                 client_key: Pem | None = None, token: str | None = None) -> None:
        super().__init__(timeout, retries, backoff, token)
        credentials = channel_credentials(tls, root_certificates, client_cert, client_key)
        self._channel = (grpc.insecure_channel(address, options=list(options)) if credentials is None
                         else grpc.secure_channel(address, credentials, options=list(options)))
        self._stub = pb_grpc.AttributionStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def _call(self, method: Any, request: Any, timeout: float | None, retry_on: frozenset) -> Any:
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            try:
                return method(request, timeout=max(deadline - time.monotonic(), 1e-4),
                              metadata=self.metadata)
            except grpc.RpcError as exc:
                attempt += 1
                pause = self._pause(exc.code(), attempt, deadline, retry_on)
                if pause is None:
                    raise
                time.sleep(pause)

    def score(self, journey: Iterable[Mapping[str, Any]], *, timeout: float | None = None,
              **fields: Any) -> ScoreResult:
        msg = self._call(self._stub.Score, score_request(journey, **fields), timeout, _SCORE_RETRY)
        return ScoreResult.from_message(msg)

    def score_message(self, request: pb.ScoreRequest, timeout: float | None = None) -> pb.ScoreResponse:
        return self._call(self._stub.Score, request, timeout, _SCORE_RETRY)

    def report_outcomes(self, campaign_id: str, batch_id: str,
                        outcomes: Mapping[str, Mapping[str, float]],
                        timeout: float | None = None) -> pb.ReportOutcomesResponse:
        return self._call(self._stub.ReportOutcomes, outcomes_request(campaign_id, batch_id, outcomes),
                          timeout, _REPORT_RETRY)

    def report_conversions(self, campaign_id: str, batch_id: str,
                           conversions: Iterable[Mapping[str, Any]],
                           timeout: float | None = None) -> pb.ReportConversionsResponse:
        return self._call(self._stub.ReportConversions,
                          conversions_request(campaign_id, batch_id, conversions), timeout,
                          _REPORT_RETRY)

    def get_allocation(self, campaign_id: str = "", timeout: float | None = None) -> pb.Allocation:
        return self._call(self._stub.GetAllocation, pb.GetAllocationRequest(campaign_id=campaign_id),
                          timeout, _SCORE_RETRY)

    def configure_campaign(self, request: pb.ConfigureCampaignRequest,
                           timeout: float | None = None) -> pb.Allocation:
        return self._call(self._stub.ConfigureCampaign, request, timeout, frozenset())

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server reports SERVING (TimeoutError after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0,
                                           metadata=self.metadata)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"server not SERVING after {timeout} s")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_RetryPolicy):
    """asyncio client with the same methods and options as Client, awaited."""

    def __init__(self, address: str = "127.0.0.1:50051", *, timeout: float = 0.1,
                 retries: int = 2, backoff: float = 0.002,
                 options: Sequence[tuple[str, Any]] = (), tls: bool = False,
                 root_certificates: Pem | None = None, client_cert: Pem | None = None,
                 client_key: Pem | None = None, token: str | None = None) -> None:
        super().__init__(timeout, retries, backoff, token)
        credentials = channel_credentials(tls, root_certificates, client_cert, client_key)
        self._channel = (
            grpc.aio.insecure_channel(address, options=list(options)) if credentials is None
            else grpc.aio.secure_channel(address, credentials, options=list(options)))
        self._stub = pb_grpc.AttributionStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def _call(self, method: Any, request: Any, timeout: float | None, retry_on: frozenset) -> Any:
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            try:
                return await method(request, timeout=max(deadline - time.monotonic(), 1e-4),
                                    metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                attempt += 1
                pause = self._pause(exc.code(), attempt, deadline, retry_on)
                if pause is None:
                    raise
                await asyncio.sleep(pause)

    async def score(self, journey: Iterable[Mapping[str, Any]], *, timeout: float | None = None,
                    **fields: Any) -> ScoreResult:
        msg = await self._call(self._stub.Score, score_request(journey, **fields), timeout, _SCORE_RETRY)
        return ScoreResult.from_message(msg)

    async def score_message(self, request: pb.ScoreRequest,
                            timeout: float | None = None) -> pb.ScoreResponse:
        return await self._call(self._stub.Score, request, timeout, _SCORE_RETRY)

    def score_stream(self, requests: Any, timeout: float | None = None) -> Any:
        """Bidirectional stream: ``async for reply in client.score_stream(iterable)``."""
        return self._stub.ScoreStream(requests, timeout=timeout, metadata=self.metadata)

    async def report_outcomes(self, campaign_id: str, batch_id: str,
                              outcomes: Mapping[str, Mapping[str, float]],
                              timeout: float | None = None) -> pb.ReportOutcomesResponse:
        return await self._call(self._stub.ReportOutcomes,
                                outcomes_request(campaign_id, batch_id, outcomes), timeout, _REPORT_RETRY)

    async def report_conversions(self, campaign_id: str, batch_id: str,
                                 conversions: Iterable[Mapping[str, Any]],
                                 timeout: float | None = None) -> pb.ReportConversionsResponse:
        return await self._call(self._stub.ReportConversions,
                                conversions_request(campaign_id, batch_id, conversions), timeout,
                                _REPORT_RETRY)

    async def get_allocation(self, campaign_id: str = "", timeout: float | None = None) -> pb.Allocation:
        return await self._call(self._stub.GetAllocation,
                                pb.GetAllocationRequest(campaign_id=campaign_id), timeout, _SCORE_RETRY)

    async def configure_campaign(self, request: pb.ConfigureCampaignRequest,
                                 timeout: float | None = None) -> pb.Allocation:
        return await self._call(self._stub.ConfigureCampaign, request, timeout, frozenset())

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0,
                                                 metadata=self.metadata)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.02)
        raise TimeoutError(f"server not SERVING after {timeout} s")

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
