"""The memory plan: parameter counts, tokens per sample and an estimated peak GPU memory for
training and validation, from the model's published architectures built on the meta device (no
weights read, no memory allocated for them). ``python -m src.model_report`` prints it.

The memory model (README, "Memory plan") is an estimate, not a measurement: weights at their
dtype, LoRA weights + grads + AdamW state in fp32, and transformer activations of
34 bytes x tokens x hidden per block per sample (Korthikanti et al. 2022, without the s^2
attention-score term that SDPA/flash attention never stores).
"""

from __future__ import annotations

from omegaconf import DictConfig

from src.utils.cli import ConfigError, number
from src.utils.config import container
from src.utils.distributed import sharding, shards_weights

GIB = 1024**3
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 34  # per transformer block, bf16, no attention matrix kept
CUDA_OVERHEAD_GIB = 1.5  # context + allocator slack (assumption, typical for one H100 process)
VAE_DECODE_GIB = 3.0  # tiled + sliced CogVideoX VAE decode peak at 480x720 (assumption)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


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
    vae_decode_gib: float = VAE_DECODE_GIB,
    vae_dtype: str | None = None,
    full: bool = False,
    shards: int = 1,
    state_shards: int | None = None,
) -> dict:
    """Peak GPU memory estimate (GiB) for one LoRA training step and for validation sampling.
    ``vae_decode_gib`` is the family's assumed VAE decode peak. ``full`` (lora=none): the
    transformer is the trainable part (``lora_params`` = its parameters), its weights in fp32.
    ``shards`` (trainer=fsdp, or ZeRO-3, over that many GPUs): per GPU, the transformer's weights
    are 1/shards, plus two whole blocks gathered at a time (the one computing and the one
    prefetched); ``state_shards`` (default ``shards``; ZeRO-1/2: the GPUs with the weights whole):
    the trainable state (grads + AdamW moments, LoRA weights) per GPU is 1/state_shards. The VAE
    and text encoder stay whole on every GPU."""
    wbytes = DTYPE_BYTES[dtype]
    transformer_whole = transformer_params * (4 if full else wbytes) / GIB
    shards = max(1, int(shards))
    gathered_blocks = 2 * transformer_whole / layers if shards > 1 else 0.0
    transformer = transformer_whole / shards + gathered_blocks
    vae = vae_params * DTYPE_BYTES[vae_dtype or dtype] / GIB  # Wan runs its VAE in fp32
    text_encoder = text_encoder_params * wbytes / GIB
    if full:  # the fp32 weights are the transformer's own: the trainable state adds grads + moments
        lora_state = lora_params * (4 + (2 if optimizer_8bit else 8)) / GIB
    else:  # fp32 LoRA weight + fp32 grad + AdamW moments (fp32, or 8-bit: 2 bytes)
        lora_state = lora_params * (4 + 4 + (2 if optimizer_8bit else 8)) / GIB
    state_shards = shards if state_shards is None else max(1, int(state_shards))
    lora_state /= state_shards
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
        + (0 if full else lora_params * 4 / GIB)
        + sampling_activations
        + vae_decode_gib
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
            "vae_decode_gib": vae_decode_gib,
            "cached_encoders": cached_encoders,
            "optimizer_8bit": optimizer_8bit,
            "validation_guidance_batch": cfg_batch,
            "shards": shards,
            "state_shards": state_shards,
            "gathered_blocks_gib": gathered_blocks,
            **({"full_finetune": True} if full else {}),
        },
    }


def model_report(cfg: DictConfig) -> dict:
    from src.models.family import build_backbone
    from src.models.lora import add_lora, is_full_finetune, validate_lora_config

    model_cfg = container(cfg.model)
    lora_cfg = container(cfg.lora)
    full = is_full_finetune(lora_cfg)  # lora=none: every transformer parameter trains
    # before any model is built: a typo costs a second, not a model load
    validate_lora_config(
        lora_cfg["rank"],
        lora_cfg["alpha"],
        lora_cfg["target_modules"],
        lora_cfg.get("dropout", 0.0),
        full=lora_cfg.get("full", False),
    )
    name = model_cfg["name"]
    backbone = build_backbone(model_cfg)  # the family owns its architectures and token geometry
    models = backbone.meta_models()
    dtype = "float32" if backbone.is_tiny else str(model_cfg.get("dtype", "bfloat16"))
    transformer = models["transformer"]
    tcfg = dict(transformer.config)
    counts = {key: count(module) for key, module in models.items()}
    if full:
        lora_params = counts["transformer"]
    else:
        lora_params = add_lora(
            transformer,
            lora_cfg["rank"],
            lora_cfg["alpha"],
            lora_cfg["target_modules"],
            lora_cfg.get("dropout", 0.0),
        )
    frames, height, width = int(model_cfg["frames"]), int(model_cfg["height"]), int(model_cfg["width"])
    tokens = backbone.tokens_per_sample(dict(models["vae"].config), tcfg, frames, height, width)
    hidden, layers = backbone.transformer_shape(tcfg)
    batch = int(cfg.data.batch_size)
    shards, state_shards = sharding(cfg.trainer)  # trainer=fsdp / deepspeed: per GPU of devices x nodes
    memory = estimate_memory(
        counts["transformer"],
        counts["vae"],
        counts["text_encoder"],
        lora_params,
        tokens["tokens"],
        hidden,
        layers,
        batch,
        dtype=dtype,
        optimizer_8bit=bool(model_cfg.get("optimizer_8bit", False)),
        cached_encoders=bool((model_cfg.get("cache") or {}).get("enabled", False)),
        guidance=float((model_cfg.get("sampling") or {}).get("guidance_scale", 1.0)) > 1.0,
        vae_decode_gib=backbone.vae_decode_gib,
        vae_dtype="float32" if backbone.is_tiny else backbone.vae_dtype,
        full=full,
        shards=shards,
        state_shards=state_shards,
    )
    other_geometries = {
        f"{f}x{h}x{w}": backbone.tokens_per_sample(dict(models["vae"].config), tcfg, f, h, w)["tokens"]
        for f, h, w in ([] if backbone.is_tiny else backbone.report_geometries)
        if (f, h, w) != (frames, height, width)
    }
    return {
        "model": name,
        "family": backbone.family,
        "path": model_cfg.get("path") or model_cfg.get("weights"),
        "dtype": dtype,
        "geometry": {"frames": frames, "height": height, "width": width, "batch_size": batch},
        "parameters": {**counts, "total": sum(counts.values())},
        "lora": {
            "rank": int(lora_cfg["rank"]),
            "alpha": float(lora_cfg["alpha"]),
            "target_modules": list(lora_cfg["target_modules"]),
            "trainable_parameters": lora_params,
            # what src.train allows: a model that fits one device, or any under a sharded strategy
            **(
                {"full": True, "supported": backbone.supports_full_finetune or shards_weights(cfg.trainer)}
                if full
                else {}
            ),
        },
        "tokens_per_sample": tokens,
        "tokens_at_other_geometries": other_geometries,
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
        (
            f"  full fine-tuning (lora=none): all {lora['trainable_parameters']:,d} transformer parameters "
            f"trainable, fp32"
            + ("" if lora["supported"] else " (refused by src.train without trainer=fsdp or deepspeed)")
            if lora.get("full")
            else f"  LoRA rank {lora['rank']} alpha {lora['alpha']:g} on {', '.join(lora['target_modules'])}: "
            f"{lora['trainable_parameters']:,d} trainable ({lora['trainable_parameters'] / 1e6:.2f} M)"
        ),
        f"  {g['frames']} frames at {g['height']}x{g['width']}: latent frames {t['latent_frames']} "
        f"(padded {t['latent_frames_padded']}), token grid {t['grid']}, "
        f"{t['video_tokens']:,d} video + {t['text_tokens']} text = {t['tokens']:,d} tokens per sample",
        *(
            [
                "  tokens per sample at "
                + ", ".join(f"{k}: {v:,d}" for k, v in report["tokens_at_other_geometries"].items())
            ]
            if report.get("tokens_at_other_geometries")
            else []
        ),
        f"  estimated peak GPU memory, batch {g['batch_size']} (GiB)"
        + (
            f", per GPU: transformer weights over {m['assumptions']['shards']} GPU(s), "
            f"trainable state over {m['assumptions']['state_shards']}:"
            if m["assumptions"]["state_shards"] > 1
            else ":"
        ),
        f"    training, gradient checkpointing     {m['train_peak_gib']['checkpointing']:7.1f}",
        f"    training, no checkpointing           {m['train_peak_gib']['no_checkpointing']:7.1f}",
        f"      (weights {m['weights_gib']['transformer']:.1f} transformer; "
        f"{'grads + AdamW state' if lora.get('full') else 'LoRA state'} {m['lora_state_gib']:.2f}; "
        f"activations {m['activations_gib']['checkpointing']:.1f} / {m['activations_gib']['no_checkpointing']:.1f}; "
        f"text encoder {'offloaded, prompts cached' if m['assumptions']['cached_encoders'] else 'on the GPU'})",
        f"    validation sampling                  {m['validation_peak_gib']:7.1f}",
    ]
    return "\n".join(lines)


def validate_plan_config(cfg: DictConfig) -> None:
    """The options the memory plan reads that :func:`model_report` does not check itself, once, with
    the messages ``src.train`` gives for them: the geometry (``model.frames``, ``model.height``,
    ``model.width``, then the family's own geometry check), ``data.batch_size``, the sampling
    guidance scale, the weights' dtype, the devices a sharded strategy spreads over, and
    ``drift.stage1`` when set.
    The LoRA options are :func:`model_report`'s (before any model is built)."""
    from src.models.family import build_backbone
    from src.training.validate import check_drift_stage1

    check_drift_stage1(cfg)
    for key in ("frames", "height", "width"):
        number(cfg.model[key], f"model.{key}")
    number(cfg.data.batch_size, "data.batch_size", at_least=1)
    sampling = cfg.model.get("sampling") or {}
    if "guidance_scale" in sampling:
        number(sampling.guidance_scale, "model.sampling.guidance_scale", float)
    if shards_weights(cfg.trainer):  # the plan divides by devices x nodes
        number(cfg.trainer.get("devices"), "trainer.devices", at_least=1)
        number(cfg.trainer.get("num_nodes", 1) or 1, "trainer.num_nodes", at_least=1)
    backbone = build_backbone(container(cfg.model))
    dtype = str(cfg.model.get("dtype", "bfloat16"))
    if not backbone.is_tiny and dtype not in DTYPE_BYTES:  # the tiny models plan in float32
        raise ConfigError(f"model.dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype}")
    arch = backbone.architecture()
    backbone.check_geometry(arch["vae"], arch["transformer"])
