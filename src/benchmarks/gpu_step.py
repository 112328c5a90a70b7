"""LoRA training-step benchmark of the full-size CogVideoX-5B-I2V and Wan2.2-TI2V-5B transformers (GPU).

    python -m src.benchmarks.gpu_step [--models cogvideox_5b_i2v cogvideox1.5_5b_i2v wan2.2_ti2v_5b]
                                      [--steps 5]

Builds each published transformer with random weights (no download needed) in bf16 on the GPU,
attaches LoRA (rank 64 on q/k/v/out, fp32), and times real training steps on random latents and
text embeddings, AdamW on the LoRA parameters, with and without gradient checkpointing, at each
model's own geometries (:data:`GEOMETRIES`):

- CogVideoX (``cogvideox_5b_i2v``, ``cogvideox1.5_5b_i2v``): the recipe's v-prediction loss
  (``src.models.recipe.i2v_loss``) at 9 x 480 x 720 and 9 x 768 x 1360; latents
  (B, F', C=16, H/8, W/8), T5 embeddings (B, 226, 4096).
- Wan2.2-TI2V-5B (``wan2.2_ti2v_5b``): the flow-matching loss with the clean first latent frame
  as condition (``src.models.wan.flow_matching_loss``: condition = latent frame 0,
  ``first_frame_mask``, ``shifted_sigmas`` with the scheduler's flow shift 5) at
  9 x 704 x 1280 and 9 x 960 x 960; latents (B, C=48, F', H/16, W/16) in float32 as
  ``wan.video_latents`` returns them, UMT5 embeddings (B, 512, 4096).

Records the median step time and the peak allocated memory, one row per model x geometry x
checkpointing setting (each row names its ``family``: ``cogvideox`` or ``wan``), in
experiments/benchmarks/gpu_step.{json,md}. To compare with the estimate, run
``python -m src.model_report model=<name> model.frames=.. model.height=.. model.width=..`` for
the same setting (this benchmark does not print it).

Sharded (the trainer=fsdp recipe, ``src.utils.distributed.shard_transformer``: FSDP2 on each
block): ``torchrun --nproc_per_node=8 -m src.benchmarks.gpu_step --shard [--full]`` times the same
steps with the transformer sharded over the ranks, LoRA or (``--full``) every weight trained in
fp32, and records rank 0's peak memory in experiments/benchmarks/gpu_step_sharded.{json,md}
(``make bench-gpu-sharded``). ``--arch tiny --device cpu`` under torchrun is its CPU smoke test.

``--arch tiny --device cpu`` runs the CogVideoX code on the tiny CogVideoX transformer and
``--arch tiny_wan --device cpu`` the Wan code on the tiny Wan transformer (both 9 x 64 x 112; the
test suite's smoke tests); the real sizes need a CUDA GPU and say so otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from src.benchmarks.lora_steps import DEFAULT_MODELS, GEOMETRIES, TINY_MODELS, family, step_benchmark
from src.utils.config import PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=DEFAULT_MODELS, choices=[m for m in GEOMETRIES if m not in TINY_MODELS]
    )
    parser.add_argument(
        "--arch",
        default=None,
        choices=list(GEOMETRIES),
        help="tiny / tiny_wan: the tiny CogVideoX / Wan transformer (CPU smoke test); replaces --models",
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--shard", action="store_true", help="FSDP2 over the torchrun ranks (trainer=fsdp)")
    parser.add_argument("--full", action="store_true", help="full fine-tuning: every weight trains, fp32")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "src.benchmarks.gpu_step needs a CUDA GPU (or --arch tiny / --arch tiny_wan --device cpu "
            "for a smoke test)"
        )
    name = "gpu_step_sharded" if args.shard else "gpu_step"
    args.out = args.out or PROJECT_ROOT / "experiments" / "benchmarks" / name
    mesh, is_main = None, True
    if args.shard:
        import os

        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh

        if "WORLD_SIZE" not in os.environ:
            raise SystemExit(
                "--shard runs under torchrun: torchrun --nproc_per_node=N -m src.benchmarks.gpu_step --shard"
            )
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        mesh = init_device_mesh(args.device, (dist.get_world_size(),))
        is_main = dist.get_rank() == 0
    models = [args.arch] if args.arch else args.models
    results = []
    for model in models:
        for frames, height, width in GEOMETRIES[model]:
            for checkpointing in (True, False):
                try:
                    result = step_benchmark(
                        model,
                        frames,
                        height,
                        width,
                        checkpointing,
                        args.steps,
                        args.device,
                        full=args.full,
                        mesh=mesh,
                    )
                except torch.cuda.OutOfMemoryError as err:
                    result = {
                        "model": model,
                        "family": family(model),
                        "frames": frames,
                        "height": height,
                        "width": width,
                        "gradient_checkpointing": checkpointing,
                        "error": f"out of memory: {err}"[:200],
                    }
                    torch.cuda.empty_cache()
                if is_main:
                    print(json.dumps(result), flush=True)
                results.append(result)
    if not is_main:
        return
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    record = {"device": device_name, "torch": torch.__version__, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# LoRA training-step benchmark (random full-size weights)",
        "",
        f"Device: {device_name}; torch {torch.__version__}; "
        + ("full fine-tuning (fp32)" if args.full else "LoRA rank 64 on q/k/v/out")
        + f"; batch 1 per rank; {results[0].get('shards', 1) if results else 1} rank(s)"
        + (", transformer sharded per block (FSDP2, trainer=fsdp); peak of rank 0." if args.shard else "."),
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
