"""The GPU step benchmark's Wan2.2 path (random weights, LoRA, flow-matching loss, AdamW) on the
tiny Wan transformer on CPU, and its per-model geometries."""

from __future__ import annotations

import copy
import json
import math

import torch

from src.models.wan_architecture import PUBLISHED_ARCHITECTURES, TINY_WAN_ARCHITECTURE, check_geometry

RANK = 64
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def expected_lora_parameters(transformer_config: dict, rank: int = RANK) -> int:
    """rank * (in + out) for every Linear the LoRA targets, counted on a fresh transformer."""
    from diffusers import WanTransformer3DModel

    transformer = WanTransformer3DModel(**copy.deepcopy(transformer_config))
    total = 0
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in TARGETS):
            total += rank * (module.in_features + module.out_features)
    return total


def test_tiny_wan_lora_count_matches_the_architecture():
    cfg = TINY_WAN_ARCHITECTURE["transformer"]
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    # self- and cross-attention per block, q/k/v/out each dim -> dim (text is projected to dim first)
    assert expected_lora_parameters(cfg) == cfg["num_layers"] * 2 * len(TARGETS) * RANK * 2 * dim


def test_gpu_step_benchmark_runs_on_the_tiny_wan_model(tmp_path):
    from tests.conftest import run_module

    out = tmp_path / "gpu_step"
    result = run_module(
        "src.benchmarks.gpu_step", "--arch", "tiny_wan", "--device", "cpu", "--steps", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(out.with_suffix(".json").read_text())
    rows = record["results"]
    assert record["device"] == "cpu"
    assert [r["gradient_checkpointing"] for r in rows] == [True, False]
    expected = expected_lora_parameters(TINY_WAN_ARCHITECTURE["transformer"])
    for r in rows:
        assert r["model"] == "tiny_wan" and r["family"] == "wan"
        assert (r["frames"], r["height"], r["width"]) == (9, 64, 112)
        assert r["loss_finite"] is True
        assert math.isfinite(r["step_seconds_median"]) and r["step_seconds_median"] > 0
        assert r["lora_rank"] == RANK and r["lora_parameters"] == expected
        assert r["peak_allocated_gib"] is None  # CPU: no CUDA allocator to read
    table = out.with_suffix(".md").read_text()
    assert table.count("| tiny_wan | 9x64x112 |") == 2


def test_geometries_per_model_and_default_models():
    from src.benchmarks import gpu_step

    assert gpu_step.GEOMETRIES["cogvideox_5b_i2v"] == [(9, 480, 720), (9, 768, 1360)]
    assert gpu_step.GEOMETRIES["cogvideox1.5_5b_i2v"] == [(9, 480, 720), (9, 768, 1360)]
    assert gpu_step.GEOMETRIES["wan2.2_ti2v_5b"] == [(9, 704, 1280), (9, 960, 960)]
    assert gpu_step.DEFAULT_MODELS[-1] == "wan2.2_ti2v_5b"
    assert gpu_step.DEFAULT_MODELS.index("wan2.2_ti2v_5b") > max(
        gpu_step.DEFAULT_MODELS.index(m) for m in ("cogvideox_5b_i2v", "cogvideox1.5_5b_i2v")
    )
    assert [gpu_step.family(m) for m in ("cogvideox_5b_i2v", "tiny", "wan2.2_ti2v_5b", "tiny_wan")] == [
        "cogvideox",
        "cogvideox",
        "wan",
        "wan",
    ]
    for frames, height, width in gpu_step.GEOMETRIES["wan2.2_ti2v_5b"]:
        check_geometry(frames, height, width, "wan2.2_ti2v_5b")  # 4k+1 frames, multiples of 32
    for frames, height, width in gpu_step.GEOMETRIES["tiny_wan"]:
        check_geometry(frames, height, width, "tiny_wan")


def test_full_size_wan_transformer_builds_with_lora_on_meta():
    """The published 5B transformer as the benchmark builds it (bf16 with the fp32-kept modules),
    without memory: the LoRA count it would report on the GPU."""
    from src.benchmarks.lora_steps import build_wan_transformer
    from src.models.lora import add_lora

    transformer, _ = build_wan_transformer("wan2.2_ti2v_5b", "meta", torch.bfloat16)
    fp32 = {n for n, p in transformer.named_parameters() if p.dtype == torch.float32}
    assert "scale_shift_table" in fp32 and "blocks.0.norm2.weight" in fp32
    assert transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    cfg = PUBLISHED_ARCHITECTURES["wan2.2_ti2v_5b"]["transformer"]
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]  # 3072
    assert add_lora(transformer, RANK, RANK, TARGETS) == cfg["num_layers"] * 2 * len(TARGETS) * RANK * 2 * dim
