"""Encode and decode rates of the two record framings, in process, without Kafka or HTTP.

`own` is Hookstream's `b"H"` framing (`schemas.codec`); `registry` is the Confluent wire format
(`schemas.serializer` writing with confluent-kafka's `AvroSerializer`, `schemas.decoder`
reading), against a real registry. The schema id is had before timing starts, as a ready
producer worker and a warmed-up consumer member have it, so this is the per-record cost that
issue 15's 5 % budget is about. Rates are records per CPU second of this process (not wall
time): the machine is shared, and CPU time is what other processes disturb least. The two
framings alternate within each round and the best round counts, so both see the same noise.

    python -m bench.codec_bench [--registry-url URL] [--records N] [--rounds R]

Without `--registry-url` a local Apicurio Registry is started for the run (`hookstream_dev`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

from hookstream.settings import Settings
from producer.samples import fastio_event
from schemas import codec
from schemas.decoder import build_decoder
from schemas.serializer import build_serializer

T = TypeVar("T")


@dataclass(frozen=True)
class FramingRate:
    framing: str  # "own" or "registry"
    encode_per_s: float
    decode_per_s: float
    value_bytes: int


@dataclass(frozen=True)
class CodecBench:
    records: int
    rounds: int
    own: FramingRate
    registry: FramingRate

    @property
    def encode_ratio(self) -> float:
        """Registry framing's encode rate over the own framing's (the target: at least 0.95)."""
        return round(self.registry.encode_per_s / self.own.encode_per_s, 3)

    @property
    def decode_ratio(self) -> float:
        return round(self.registry.decode_per_s / self.own.decode_per_s, 3)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "encode_ratio": self.encode_ratio, "decode_ratio": self.decode_ratio}


def _envelopes(count: int) -> list[codec.Envelope]:
    """Realistic Fast.io deliveries (about 700 bytes of JSON each)."""
    found = []
    for n in range(count):
        event = fastio_event()
        found.append(
            codec.Envelope(
                event_id=f"{event['event_id']}-{n}",
                provider="fastio",
                event_type=event["event"],
                workspace_id=event["workspace_id"],
                payload=json.dumps(event).encode(),
                received_at=codec.utc_now(),
                object_id=event.get("object_id"),
                signature_scheme="sha256",
            )
        )
    return found


def _cpu_rate(step: Callable[[T], object], items: list[T]) -> float:
    """`step` over every item, in records per CPU second."""
    started = time.process_time()
    for item in items:
        step(item)
    return len(items) / max(time.process_time() - started, 1e-9)


def measure(registry_url: str, records: int = 20_000, rounds: int = 5) -> CodecBench:
    settings = replace(Settings(), schema_registry_url=registry_url, topic=f"codec-bench-{time.time_ns()}")
    envelopes = _envelopes(records)
    writers = {
        "own": build_serializer(replace(settings, schema_registry_url=None)),
        "registry": build_serializer(settings),
    }
    ready, why = writers["registry"].ready()
    if not ready:
        raise RuntimeError(f"the registry is not usable: {why}")
    reader = build_decoder(settings)  # one decoder reads both, as a consumer member does
    values = {name: [w.encode(e) for e in envelopes] for name, w in writers.items()}
    reader.decode(values["registry"][0])  # the writer schema fetched once, before timing
    best: dict[str, tuple[float, float]] = {"own": (0.0, 0.0), "registry": (0.0, 0.0)}
    for _ in range(rounds):
        for name, writer in writers.items():
            encode = _cpu_rate(writer.encode, envelopes)
            decode = _cpu_rate(reader.decode, values[name])
            best[name] = (max(best[name][0], encode), max(best[name][1], decode))
    own, registry = (
        FramingRate(name, round(best[name][0]), round(best[name][1]), len(values[name][0]))
        for name in ("own", "registry")
    )
    return CodecBench(records, rounds, own, registry)


@contextmanager
def local_registry() -> Iterator[str]:
    """A throwaway Apicurio Registry on free ports for the run."""
    from hookstream_dev.process import free_port_block
    from hookstream_dev.registry import LocalRegistry

    with tempfile.TemporaryDirectory(prefix="codec-bench-") as home:
        registry = LocalRegistry(Path(home), port=free_port_block(2))
        registry.start()
        try:
            yield registry.url
        finally:
            registry.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--registry-url", default=None, help="a running registry (default: start one)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.registry_url:
        result = measure(args.registry_url, args.records, args.rounds)
    else:
        with local_registry() as url:
            result = measure(url, args.records, args.rounds)
    print(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
