"""The benchmark scripts' arithmetic (their numbers go into docs/benchmarks.md, so it must be right)."""

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from bench.client import numbered
from bench.machine import table
from bench.service import Sample, summarise


def sample(label: str, seconds: float, folder: str | None = "upscaled", status: int = 200) -> Sample:
    return Sample(label, status, seconds, folder, megapixels=0.5, finished=0.0)


def test_summary_counts_only_answered_uploads_and_splits_by_kind() -> None:
    samples = [sample("small", s / 100) for s in range(1, 101)] + [sample("4k", 2.0, "good_quality")]
    samples.append(sample("small", 9.0, None, status=503))
    result = summarise(samples, seconds=10.0)
    assert result["uploads"] == 101 and result["errors"] == 1
    assert result["uploads_per_s"] == pytest.approx(10.1)
    assert result["upscaled_mp_per_s"] == pytest.approx(100 * 0.5 / 10)  # 4K uploads are not upscaled
    small = result["by_kind"]["small"]
    assert small["p50_s"] == pytest.approx(0.505) and small["p99_s"] == pytest.approx(0.9901)
    assert result["by_kind"]["4k"]["uploads"] == 1


def test_table_aligns_columns_and_leaves_missing_cells_empty() -> None:
    text = table([{"a": 1.23456, "b": "x"}, {"a": 1234.5}], ["a", "b"])
    assert text.splitlines() == ["   a  b", "1.23  x", "1234   "]


def test_a_sustained_rate_counts_every_call_in_the_window_after_one_warm_up() -> None:
    import time

    import torch

    from bench.engine import sustained

    calls: list[float] = []

    def work() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.01)

    made, elapsed = sustained(work, 0.1, torch.device("cpu"))
    assert made == len(calls) - 1  # the warm-up call is not counted
    assert elapsed >= 0.1 and 1 <= made <= 11  # at most one 10-ms call per 10 ms; a loaded machine makes fewer


def test_cpu_is_read_per_process_role_and_turned_into_cores() -> None:
    from bench.service import cores_used, cpu_seconds

    before = cpu_seconds()
    sum(i * i for i in range(2_000_000))  # burn some CPU in this process
    after = cpu_seconds()
    assert after["load generator (this process)"] > before["load generator (this process)"]
    used = cores_used({"a": 1.0, "b": 5.0}, {"a": 3.0, "b": 6.0, "c": 0.5}, seconds=2.0)
    assert used == {"a": 1.0, "b": 0.5, "c": 0.25} and list(used) == ["a", "b", "c"]


def test_an_ab_variant_overrides_only_what_it_names_and_stays_a_valid_serve_config() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from bench.pipeline import variant

    assert variant([], []) is None  # nothing overridden: the shipped config itself
    path = variant(["tile_size=512", "max_batch_pixels=262144"], ["MALLOC_ARENA_MAX=0"])
    assert path is not None
    (app,) = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text())).applications
    upscaler = next(d for d in app.deployments if d.name == "Upscaler")
    assert upscaler.user_config is not None
    assert upscaler.user_config["tile_size"] == 512 and upscaler.user_config["max_batch_pixels"] == 262144
    assert upscaler.user_config["tile_layout"] == "balanced"  # untouched
    assert app.runtime_env["env_vars"] == {"MALLOC_ARENA_MAX": "0"}


def test_a_floor_variant_names_its_environment_and_refuses_an_empty_one() -> None:
    import argparse

    from bench.floor import parse_variant

    assert parse_variant("inline:RAY_a=1,RAY_b=x=y") == ("inline", {"RAY_a": "1", "RAY_b": "x=y"})
    for bad in ("inline", "inline:", ":RAY_a=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_variant(bad)


def test_the_engine_ratios_take_each_precisions_best_batch_per_tile_against_fp32() -> None:
    from bench.engine import by_tile

    rows = [
        {"model": "m", "dtype": d, "tile": t, "mp_per_s": v}
        for d, t, v in [("fp32", 256, 0.1), ("fp32", 256, 0.2), ("int8", 256, 0.8), ("int8", 512, 0.6),
                        ("fp32", 512, 0.3), ("bf16", 256, 0.4)]
    ] + [{"model": "other", "dtype": "fp32", "tile": 256, "mp_per_s": 9.0}]  # fmt: skip
    ratios = by_tile(rows, "m")
    assert ratios[256] == {"fp32": 0.2, "int8": 0.8, "bf16": 0.4, "fp32_over_fp32": 1.0, "int8_over_fp32": 4.0,
                           "bf16_over_fp32": 2.0}  # fmt: skip
    assert ratios[512]["int8_over_fp32"] == pytest.approx(2.0)


def test_the_int8_peak_network_is_a_chain_of_int8_convolutions() -> None:
    from bench.int8_peak import DEPTH, quantized_convs

    ops = [op.get_type_name() for op in quantized_convs(1, 8, 16).get_ordered_ops()]
    assert ops.count("Convolution") == DEPTH and ops.count("FakeQuantize") == 2 * DEPTH


def test_numbered_uploads_are_new_files_with_the_same_pixels() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    files = [numbered(jpeg, n) for n in range(3)]
    assert len({hashlib.sha256(f).digest() for f in files}) == 3
    for data in files:
        with Image.open(io.BytesIO(data)) as image:
            assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(jpeg))))
