"""`attribid score`: one Score call from a JSON journey file, printed as JSON.

The file holds either a list of touchpoints or an object with ``journey`` and
optional ``impression``, ``campaign_id``, ``product_category`` (see
examples/journey.json). Touchpoint timestamps are epoch seconds or ISO-8601;
``--now`` shifts the journey so its last touch is ``--age`` seconds old.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import grpc
import orjson

from attribid.client import Client, _epoch_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journey", required=True, type=Path, help="JSON file (see examples/journey.json)")
    parser.add_argument("--address", default="127.0.0.1:50051", help="server host:port")
    parser.add_argument("--timeout", type=float, default=1.0, help="deadline in seconds")
    parser.add_argument("--now", action="store_true",
                        help="move the journey's times so it ends --age seconds before now")
    parser.add_argument("--age", type=float, default=600.0, help="with --now: age of the last touch (s)")


def run(args: argparse.Namespace) -> int:
    try:
        data = orjson.loads(args.journey.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"attribid score: {args.journey}: {exc}", file=sys.stderr)
        return 2
    body = {"journey": data} if isinstance(data, list) else dict(data)
    journey = [dict(t) for t in body.pop("journey", [])]
    if args.now and journey:
        shift = time.time() - args.age - _epoch_ms(journey[-1]["timestamp"]) / 1000.0
        for t in journey:
            t["timestamp"] = _epoch_ms(t["timestamp"]) / 1000.0 + shift
    with Client(args.address, timeout=args.timeout) as client:
        try:
            result = client.score(journey, **body)
        except grpc.RpcError as exc:
            print(f"attribid score: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    sys.stdout.write(orjson.dumps(dataclasses.asdict(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
