"""The committed Pub/Sub stubs are what ``scripts/gen_pubsub_stubs.py`` generates from the
proto (a changed proto or grpcio-tools without regenerating fails here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_committed_pubsub_stubs_are_fresh() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_pubsub_stubs", ROOT / "scripts" / "gen_pubsub_stubs.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = generator.generate()
    assert set(expected) >= {"pubsub_api_pb2.py", "pubsub_api_pb2_grpc.py", "pubsub_api.proto"}
    for target in generator.TARGETS:
        for name, text in expected.items():
            committed = target / name
            assert committed.exists(), f"{committed} is missing: run scripts/gen_pubsub_stubs.py"
            assert committed.read_text() == text, (
                f"{committed} is stale: run scripts/gen_pubsub_stubs.py"
            )
