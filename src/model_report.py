"""python -m src.model_report model=cogvideox_5b_i2v lora.rank=64 [model.frames=9] [data.batch_size=1]

Proof of wiring without weights: builds the model's published architectures (transformer, VAE,
T5) on the meta device, attaches the configured LoRA, and prints parameter counts, tokens per
sample at the configured frames and resolution, and an estimated peak GPU memory for training
(with and without gradient checkpointing) and for validation. Writes model_report.json in the
run dir. Nothing is downloaded and no memory is allocated for weights.

The memory model (README, "Memory plan") is an estimate, not a measurement: weights at their
dtype, LoRA weights + grads + AdamW state in fp32, and transformer activations of
34 bytes x tokens x hidden per block per sample (Korthikanti et al. 2022, without the s^2
attention-score term that SDPA/flash attention never stores).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.cli import hydra_cli, user_errors
from src.utils.config import CONFIG_DIR

log = logging.getLogger(__name__)

GIB = 1024**3
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 34  # per transformer block, bf16, no attention matrix kept
CUDA_OVERHEAD_GIB = 1.5  # context + allocator slack (assumption, typical for one H100 process)
VAE_DECODE_GIB = 3.0  # tiled + sliced CogVideoX VAE decode peak at 480x720 (assumption)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def tokens_per_sample(transformer_cfg: dict, frames: int, height: int, width: int, vae_spatial: int) -> dict:
    """Video tokens + text tokens of one sample, as the CogVideoX transformer sees it."""
    from src.models import recipe

    patch = int(transformer_cfg["patch_size"])
    patch_t = transformer_cfg.get("patch_size_t")
    latent_frames = recipe.latent_frame_count(frames, int(transformer_cfg["temporal_compression_ratio"]))
    padded = latent_frames + recipe.latent_frame_padding(latent_frames, patch_t)
    grid_h, grid_w = height // vae_spatial // patch, width // vae_spatial // patch
    video = (padded // (patch_t or 1)) * grid_h * grid_w
    text = int(transformer_cfg["max_text_seq_length"])
    return {
        "latent_frames": latent_frames,
        "latent_frames_padded": padded,
        "grid": [padded // (patch_t or 1), grid_h, grid_w],
        "video_tokens": video,
        "text_tokens": text,
        "tokens": video + text,
    }


def estimate_memory(
    transformer_params: int,
    vae_params: int,
    text_encoder_params: int,
    lora_params: int,
    tokens: int,
    hidden: int,
    layers: int,
    batch: int,
    dtype: str = "bfloat16",
    optimizer_8bit: bool = False,
    cached_encoders: bool = True,
    guidance: bool = True,
) -> dict:
    """Peak GPU memory estimate (GiB) for one LoRA training step and for validation sampling."""
    wbytes = DTYPE_BYTES[dtype]
    transformer = transformer_params * wbytes / GIB
    vae = vae_params * wbytes / GIB
    text_encoder = text_encoder_params * wbytes / GIB
    # fp32 LoRA weight + fp32 grad + AdamW moments (fp32, or 8-bit: 2 bytes)
    lora_state = lora_params * (4 + 4 + (2 if optimizer_8bit else 8)) / GIB
    per_block = ACTIVATION_BYTES_PER_TOKEN_HIDDEN * tokens * hidden * batch / GIB
    activations_full = per_block * layers
    # checkpointing keeps each block's input (video + text hidden states, bf16) and recomputes one
    activations_ckpt = layers * tokens * hidden * 2 * batch / GIB + per_block
    resident = transformer + vae + lora_state + CUDA_OVERHEAD_GIB
    if not cached_encoders:  # T5 stays on the GPU (with the cache it is offloaded to the CPU)
        resident += text_encoder
    cfg_batch = 2 if guidance else 1
    # inference: weights + the largest live block tensors (MLP 4h + qkv 3h + residual h) in bf16
    sampling_activations = 8 * tokens * hidden * 2 * cfg_batch / GIB
    validation = (
        transformer
        + vae
        + (0.0 if cached_encoders else text_encoder)
        + lora_params * 4 / GIB
        + sampling_activations
        + VAE_DECODE_GIB
        + CUDA_OVERHEAD_GIB
    )
    return {
        "weights_gib": {"transformer": transformer, "vae": vae, "text_encoder": text_encoder},
        "lora_state_gib": lora_state,
        "activations_gib": {"no_checkpointing": activations_full, "checkpointing": activations_ckpt},
        "train_peak_gib": {
            "no_checkpointing": resident + activations_full,
            "checkpointing": resident + activations_ckpt,
        },
        "validation_peak_gib": validation,
        "assumptions": {
            "activation_bytes_per_token_hidden_block": ACTIVATION_BYTES_PER_TOKEN_HIDDEN,
            "cuda_overhead_gib": CUDA_OVERHEAD_GIB,
            "vae_decode_gib": VAE_DECODE_GIB,
            "cached_encoders": cached_encoders,
            "optimizer_8bit": optimizer_8bit,
            "validation_guidance_batch": cfg_batch,
        },
    }


def model_report(cfg: DictConfig) -> dict:
    from src.models.lora import add_lora, validate_lora_config

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    lora_cfg = OmegaConf.to_container(cfg.lora, resolve=True)
    # before any model is built: a typo costs a second, not a model load
    validate_lora_config(
        lora_cfg["rank"], lora_cfg["alpha"], lora_cfg["target_modules"], lora_cfg.get("dropout", 0.0)
    )
    name = model_cfg["name"]
    if model_cfg.get("kind") == "tiny":
        from src.models.tiny import TINY_ARCHITECTURE, build_tiny_components

        components = build_tiny_components(TINY_ARCHITECTURE)
        models = {
            "transformer": components.transformer,
            "vae": components.vae,
            "text_encoder": components.text_encoder,
        }
        vae_spatial, dtype = 4, "float32"
    else:
        from src.models.cogvideox import build_meta_models

        models = build_meta_models(name)
        vae_spatial, dtype = 8, str(model_cfg.get("dtype", "bfloat16"))
    transformer = models["transformer"]
    tcfg = dict(transformer.config)
    counts = {key: count(module) for key, module in models.items()}
    lora_params = add_lora(
        transformer,
        lora_cfg["rank"],
        lora_cfg["alpha"],
        lora_cfg["target_modules"],
        lora_cfg.get("dropout", 0.0),
    )
    frames, height, width = int(model_cfg["frames"]), int(model_cfg["height"]), int(model_cfg["width"])
    tokens = tokens_per_sample(tcfg, frames, height, width, vae_spatial)
    hidden = int(tcfg["num_attention_heads"]) * int(tcfg["attention_head_dim"])
    batch = int(cfg.data.batch_size)
    memory = estimate_memory(
        counts["transformer"],
        counts["vae"],
        counts["text_encoder"],
        lora_params,
        tokens["tokens"],
        hidden,
        int(tcfg["num_layers"]),
        batch,
        dtype=dtype,
        optimizer_8bit=bool(model_cfg.get("optimizer_8bit", False)),
        cached_encoders=bool((model_cfg.get("cache") or {}).get("enabled", False)),
        guidance=float((model_cfg.get("sampling") or {}).get("guidance_scale", 1.0)) > 1.0,
    )
    return {
        "model": name,
        "path": model_cfg.get("path") or model_cfg.get("weights"),
        "dtype": dtype,
        "geometry": {"frames": frames, "height": height, "width": width, "batch_size": batch},
        "parameters": {**counts, "total": sum(counts.values())},
        "lora": {
            "rank": int(lora_cfg["rank"]),
            "alpha": float(lora_cfg["alpha"]),
            "target_modules": list(lora_cfg["target_modules"]),
            "trainable_parameters": lora_params,
        },
        "tokens_per_sample": tokens,
        "memory_estimate": memory,
    }


def format_report(report: dict) -> str:
    p, m, t = report["parameters"], report["memory_estimate"], report["tokens_per_sample"]
    g, lora = report["geometry"], report["lora"]
    lines = [
        f"model {report['model']} ({report['dtype']} base weights; built on the meta device, no weights read)",
        f"  transformer   {p['transformer']:>15,d} parameters ({p['transformer'] / 1e9:.2f} B)",
        f"  VAE           {p['vae']:>15,d}",
        f"  text encoder  {p['text_encoder']:>15,d}",
        f"  LoRA rank {lora['rank']} alpha {lora['alpha']:g} on {', '.join(lora['target_modules'])}: "
        f"{lora['trainable_parameters']:,d} trainable ({lora['trainable_parameters'] / 1e6:.2f} M)",
        f"  {g['frames']} frames at {g['height']}x{g['width']}: latent frames {t['latent_frames']} "
        f"(padded {t['latent_frames_padded']}), token grid {t['grid']}, "
        f"{t['video_tokens']:,d} video + {t['text_tokens']} text = {t['tokens']:,d} tokens per sample",
        f"  estimated peak GPU memory, batch {g['batch_size']} (GiB):",
        f"    training, gradient checkpointing     {m['train_peak_gib']['checkpointing']:7.1f}",
        f"    training, no checkpointing           {m['train_peak_gib']['no_checkpointing']:7.1f}",
        f"      (weights {m['weights_gib']['transformer']:.1f} transformer; LoRA state {m['lora_state_gib']:.2f}; "
        f"activations {m['activations_gib']['checkpointing']:.1f} / {m['activations_gib']['no_checkpointing']:.1f}; "
        f"T5 {'offloaded, prompts cached' if m['assumptions']['cached_encoders'] else 'on the GPU'})",
        f"    validation sampling                  {m['validation_peak_gib']:7.1f}",
    ]
    return "\n".join(lines)


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
@user_errors("python -m src.model_report model=<tiny|cogvideox_5b_i2v|cogvideox1.5_5b_i2v> [lora.rank=N] ...")
def main(cfg: DictConfig) -> None:
    report = model_report(cfg)
    print(format_report(report))
    out = Path(cfg.paths.run_dir) / "model_report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    hydra_cli(main, "train")
