"""LoRA training-step benchmark of the full-size CogVideoX-5B-I2V transformers (GPU).

    python -m src.benchmarks.gpu_step [--models cogvideox_5b_i2v cogvideox1.5_5b_i2v] [--steps 5]

Builds each published transformer with random weights (no download needed) in bf16 on the GPU,
attaches LoRA (rank 64 on q/k/v/out, fp32), and times real training steps (the recipe's
v-prediction loss on random latents and text embeddings, AdamW on the LoRA parameters) at
9 x 480 x 720 and 9 x 768 x 1360, with and without gradient checkpointing. Records the median
step time and the peak allocated memory in experiments/benchmarks/gpu_step.{json,md}, next to
what ``src.model_report`` estimates for the same setting.

``--arch tiny --device cpu`` runs the same code on the tiny model (the test suite's smoke test);
the real sizes need a CUDA GPU and say so otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from src.utils.config import PROJECT_ROOT

GEOMETRIES = [(9, 480, 720), (9, 768, 1360)]
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def build_transformer(arch_name: str, device: str, dtype: torch.dtype):
    from diffusers import CogVideoXTransformer3DModel

    if arch_name == "tiny":
        from src.models.tiny import TINY_ARCHITECTURE

        config, spatial = copy.deepcopy(TINY_ARCHITECTURE["transformer"]), 4
    else:
        from src.models.cogvideox import PUBLISHED_ARCHITECTURES

        config, spatial = copy.deepcopy(PUBLISHED_ARCHITECTURES[arch_name]["transformer"]), 8
    # random weights: the learned positional table would pin the resolution, so run without it
    config["use_learned_positional_embeddings"] = False
    with torch.device(device):
        transformer = CogVideoXTransformer3DModel(**config).to(dtype)
    return transformer, spatial


def step_benchmark(arch_name, frames, height, width, checkpointing, steps, device, rank=64, batch=1) -> dict:
    from diffusers import CogVideoXDDIMScheduler

    from src.models import recipe
    from src.models.lora import add_lora

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    transformer, spatial = build_transformer(arch_name, device, dtype)
    lora_params = add_lora(transformer, rank, rank, TARGETS)
    if checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    cfg = transformer.config
    latent_frames = recipe.latent_frame_count(frames)
    latent_frames += recipe.latent_frame_padding(latent_frames, cfg.get("patch_size_t"))
    shape = (batch, latent_frames, cfg.out_channels, height // spatial, width // spatial)
    generator = torch.Generator(device=device).manual_seed(0)
    latents = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    condition = torch.zeros_like(latents)
    condition[:, 0] = latents[:, 0]
    embeds = torch.randn(
        batch, cfg.max_text_seq_length, cfg.text_embed_dim, generator=generator, device=device, dtype=dtype
    )
    scheduler = CogVideoXDDIMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True)
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(device)
    from diffusers.models.embeddings import get_3d_rotary_pos_embed

    rotary = None
    if cfg.use_rotary_positional_embeddings:
        grid_h, grid_w = height // spatial // cfg.patch_size, width // spatial // cfg.patch_size
        temporal = latent_frames // (cfg.get("patch_size_t") or 1)
        rotary = get_3d_rotary_pos_embed(
            cfg.attention_head_dim,
            ((0, 0), (grid_h, grid_w)),
            (grid_h, grid_w),
            temporal_size=temporal,
            device=device,
        )
    optimizer = torch.optim.AdamW([p for p in transformer.parameters() if p.requires_grad], lr=1e-4)
    ofs = recipe.ofs_input(transformer, latents)
    times = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps + 1):  # the first step warms up kernels and the allocator
        start = time.perf_counter()
        timesteps = torch.randint(0, 1000, (batch,), generator=generator, device=device)
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = recipe.i2v_loss(
                transformer, scheduler, latents, condition, embeds, timesteps, noise, rotary, ofs
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else None
    return {
        "model": arch_name,
        "frames": frames,
        "height": height,
        "width": width,
        "gradient_checkpointing": checkpointing,
        "lora_rank": rank,
        "lora_parameters": lora_params,
        "steps_timed": steps,
        "step_seconds_median": statistics.median(times[1:]),
        "peak_allocated_gib": peak,
        "loss_finite": bool(torch.isfinite(loss).item()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cogvideox_5b_i2v", "cogvideox1.5_5b_i2v"])
    parser.add_argument("--arch", default=None, help="tiny: the tiny transformer (CPU smoke test)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "experiments" / "benchmarks" / "gpu_step")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "src.benchmarks.gpu_step needs a CUDA GPU (or --arch tiny --device cpu for a smoke test)"
        )
    models = [args.arch] if args.arch else args.models
    geometries = [(9, 64, 112)] if args.arch == "tiny" else GEOMETRIES
    results = []
    for model in models:
        for frames, height, width in geometries:
            for checkpointing in (True, False):
                try:
                    result = step_benchmark(
                        model, frames, height, width, checkpointing, args.steps, args.device
                    )
                except torch.cuda.OutOfMemoryError as err:
                    result = {
                        "model": model,
                        "frames": frames,
                        "height": height,
                        "width": width,
                        "gradient_checkpointing": checkpointing,
                        "error": f"out of memory: {err}"[:200],
                    }
                    torch.cuda.empty_cache()
                print(json.dumps(result), flush=True)
                results.append(result)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    record = {"device": device_name, "torch": torch.__version__, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# LoRA training-step benchmark (random full-size weights)",
        "",
        f"Device: {device_name}; torch {torch.__version__}; LoRA rank 64 on q/k/v/out; batch 1.",
        "",
        "| model | frames x H x W | checkpointing | step (s) | peak allocated (GiB) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        step = f"{r['step_seconds_median']:.3f}" if "step_seconds_median" in r else r.get("error", "")
        peak = f"{r['peak_allocated_gib']:.1f}" if r.get("peak_allocated_gib") is not None else "-"
        lines.append(
            f"| {r['model']} | {r['frames']}x{r['height']}x{r['width']} | {r['gradient_checkpointing']} | {step} | {peak} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
