"""send one Score call to a running server and print the response

``attribid score --journey FILE`` reads a JSON journey file and prints the reply as JSON.
The file holds either a list of touchpoints or an object with ``journey`` and
optional ``impression``, ``campaign_id``, ``product_category`` (see
examples/journey.json). Touchpoint timestamps are epoch seconds or ISO-8601;
``--now`` shifts the journey so its last touch is ``--age`` seconds old.
``--tls`` (or a certificate flag) connects over TLS; ``--token`` (or ``ATTRIBID_TOKEN``)
sends a bearer token.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import orjson

from attribid.cli import BAD_INPUT, FAILED, OK, CommandError, errors_as
from attribid.client import Client, ScoreResult, score_request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journey", required=True, type=Path, help="JSON file (see examples/journey.json)")
    parser.add_argument("--address", default="127.0.0.1:50051", help="server host:port")
    parser.add_argument("--timeout", type=float, default=1.0, help="deadline in seconds")
    parser.add_argument("--now", action="store_true",
                        help="move the journey's times so it ends --age seconds before now")
    parser.add_argument("--age", type=float, default=600.0, help="with --now: age of the last touch (s)")
    parser.add_argument("--tls", action="store_true",
                        help="connect over TLS (implied by the certificate flags)")
    parser.add_argument("--root-certificates", type=Path, default=None,
                        help="PEM file of the CAs to trust for the server (default: the system's)")
    parser.add_argument("--client-cert", type=Path, default=None,
                        help="PEM client certificate, for mutual TLS (with --client-key)")
    parser.add_argument("--client-key", type=Path, default=None,
                        help="PEM private key of --client-cert")
    parser.add_argument("--token", default=None,
                        help="bearer token to send (default: env ATTRIBID_TOKEN; the variable keeps "
                             "it out of the process list)")


def epoch_seconds(value: Any) -> float:
    """A journey file's timestamp (epoch seconds or ISO-8601, UTC unless it says) in seconds.

    >>> epoch_seconds("1970-01-01T00:01:00Z"), epoch_seconds(60)
    (60.0, 60.0)
    """
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    return float(value)


def read_request(path: Path, now: bool, age: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The journey and the other Score arguments in ``path``, shifted to end ``age`` s ago
    when ``now``."""
    with errors_as(BAD_INPUT, OSError, orjson.JSONDecodeError, prefix=f"{path}: "):
        data = orjson.loads(path.read_bytes())
    body = {"journey": data} if isinstance(data, list) else dict(data)
    journey = [dict(t) for t in body.pop("journey", [])]
    if now and journey:
        with errors_as(BAD_INPUT, KeyError, ValueError, TypeError, prefix=f"{path}: timestamp: "):
            stamps = [epoch_seconds(t["timestamp"]) for t in journey]
        shift = time.time() - age - stamps[-1]
        for t, stamp in zip(journey, stamps):
            t["timestamp"] = stamp + shift
    return journey, body


def run(args: argparse.Namespace) -> int:
    journey, body = read_request(args.journey, args.now, args.age)
    try:
        request = score_request(journey, **body)
    except KeyError as exc:
        raise CommandError(f"{args.journey}: a touchpoint lacks {exc}") from None
    except (TypeError, ValueError) as exc:
        raise CommandError(f"{args.journey}: {exc}") from None
    if (args.client_cert is None) != (args.client_key is None):
        raise CommandError("--client-cert and --client-key: mutual TLS needs both")
    pems = {}
    for flag in ("root_certificates", "client_cert", "client_key"):
        path = getattr(args, flag)
        if path is not None:
            with errors_as(BAD_INPUT, OSError, prefix=f"--{flag.replace('_', '-')}: {path}: "):
                pems[flag] = path.read_bytes()
    token = args.token if args.token is not None else os.environ.get("ATTRIBID_TOKEN") or None
    with Client(args.address, timeout=args.timeout, tls=args.tls, token=token, **pems) as client:
        try:
            reply = client.score_message(request)
        except grpc.RpcError as exc:
            # the server's refusal already names the field; the address names the server
            raise CommandError(f"{args.address}: {exc.code().name}: {exc.details()}", FAILED) from None
    result = dataclasses.asdict(ScoreResult.from_message(reply))
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return OK
