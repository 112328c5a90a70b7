"""Full-size LoRA (or full fine-tuning) training steps of the real backbones on random weights, for
`make bench-gpu` (:mod:`src.benchmarks.gpu_step`): the geometries, the transformers built on a
device, the timed steps and one result row per setting."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch

# frames x height x width per model; --arch tiny / tiny_wan are the CPU smoke-test models
GEOMETRIES: dict[str, list[tuple[int, int, int]]] = {
    "cogvideox_5b_i2v": [(9, 480, 720), (9, 768, 1360)],
    "cogvideox1.5_5b_i2v": [(9, 480, 720), (9, 768, 1360)],
    "wan2.2_ti2v_5b": [(9, 704, 1280), (9, 960, 960)],
    "tiny": [(9, 64, 112)],
    "tiny_wan": [(9, 64, 112)],
}


DEFAULT_MODELS = ["cogvideox_5b_i2v", "cogvideox1.5_5b_i2v", "wan2.2_ti2v_5b"]


TINY_MODELS = ["tiny", "tiny_wan"]


TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def family(arch_name: str) -> str:
    """``wan`` for the Wan2.2 models (``wan2.2_*``, ``tiny_wan``), ``cogvideox`` otherwise."""
    return "wan" if arch_name == "tiny_wan" or arch_name.startswith("wan") else "cogvideox"


def build_transformer(arch_name: str, device: str, dtype: torch.dtype):
    """The CogVideoX transformer with random weights and its VAE's spatial factor."""
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


def wan_architecture(arch_name: str) -> dict:
    """The Wan architecture dict (transformer, vae, scheduler, max_sequence_length)."""
    from src.models.wan_architecture import PUBLISHED_ARCHITECTURES, TINY_WAN_ARCHITECTURE

    return TINY_WAN_ARCHITECTURE if arch_name == "tiny_wan" else PUBLISHED_ARCHITECTURES[arch_name]


def build_wan_transformer(arch_name: str, device: str, dtype: torch.dtype):
    """The Wan transformer with random weights and its architecture dict, its parameters in
    ``dtype`` except those of ``_keep_in_fp32_modules`` (time embedder, scale-shift tables,
    norm2), which stay float32 as ``from_pretrained(torch_dtype=...)`` leaves them (same name rule;
    the rope tables are float32 buffers either way)."""
    from diffusers import WanTransformer3DModel

    arch = wan_architecture(arch_name)
    with torch.device(device):
        transformer = WanTransformer3DModel(**copy.deepcopy(arch["transformer"]))
    keep = transformer._keep_in_fp32_modules or []
    for name, parameter in transformer.named_parameters():
        if parameter.is_floating_point():
            fp32 = any(module in name.split(".") for module in keep)
            parameter.data = parameter.data.to(torch.float32 if fp32 else dtype)
    return transformer, arch


def time_steps(
    transformer: torch.nn.Module, loss_fn: Callable[[], torch.Tensor], steps: int, device: str
) -> tuple[list[float], torch.Tensor]:
    """``steps + 1`` timed LoRA training steps (loss, backward, AdamW): the step times and the
    last loss. ``loss_fn`` draws its own noise and timesteps (inside the timed region)."""
    optimizer = torch.optim.AdamW([p for p in transformer.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(steps + 1):  # the first step warms up kernels and the allocator
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, loss


def prepare(transformer, rank: int, checkpointing: bool, full: bool, mesh, blocks: str) -> int:
    """LoRA (or, ``full``, every weight in fp32) on ``transformer``, checkpointing, and with a
    ``mesh`` the trainer=fsdp sharding. Returns the trainable parameter count."""
    from src.models.lora import add_lora, train_all_parameters

    trainable = train_all_parameters(transformer) if full else add_lora(transformer, rank, rank, TARGETS)
    if checkpointing:
        transformer.enable_gradient_checkpointing()
    if mesh is not None:
        from src.utils.distributed import shard_transformer

        shard_transformer(transformer, getattr(transformer, blocks), mesh)
    transformer.train()
    return trainable


def _row(arch_name, frames, height, width, checkpointing, rank, lora_params, steps, times, loss, device):
    from src.utils.distributed import world_size

    peak = torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else None
    return {
        "shards": world_size(),
        "model": arch_name,
        "family": family(arch_name),
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


def cogvideox_step_benchmark(
    arch_name, frames, height, width, checkpointing, steps, device, rank=64, batch=1, full=False, mesh=None
) -> dict:
    from diffusers import CogVideoXDDIMScheduler
    from diffusers.models.embeddings import get_3d_rotary_pos_embed

    from src.models import recipe
    from src.models.cogvideox import CogVideoXI2V

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    transformer, spatial = build_transformer(arch_name, device, dtype)
    lora_params = prepare(transformer, rank, checkpointing, full, mesh, CogVideoXI2V.block_list)
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
    ofs = recipe.ofs_input(transformer, latents)

    def loss_fn():
        timesteps = torch.randint(0, 1000, (batch,), generator=generator, device=device)
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return recipe.i2v_loss(
            transformer, scheduler, latents, condition, embeds, timesteps, noise, rotary, ofs
        )

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = time_steps(transformer, loss_fn, steps, device)
    return _row(
        arch_name, frames, height, width, checkpointing, rank, lora_params, steps, times, loss, device
    )


def wan_step_benchmark(
    arch_name, frames, height, width, checkpointing, steps, device, rank=64, batch=1, full=False, mesh=None
) -> dict:
    from src.models import wan

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    transformer, arch = build_wan_transformer(arch_name, device, dtype)
    lora_params = prepare(transformer, rank, checkpointing, full, mesh, wan.WanTI2V.block_list)
    cfg, vae = transformer.config, arch["vae"]
    wan.check_geometry(frames, height, width, arch_name)
    latent_frames = (frames - 1) // int(vae["scale_factor_temporal"]) + 1
    spatial = int(vae["scale_factor_spatial"])
    shape = (batch, cfg.out_channels, latent_frames, height // spatial, width // spatial)
    generator = torch.Generator(device=device).manual_seed(0)
    # float32 latents as wan.video_latents / condition_latents return them; the loss casts the
    # model input to the transformer's dtype
    latents = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    condition = latents[:, :, :1]
    mask = wan.first_frame_mask(latents)
    embeds = torch.randn(
        batch, int(arch["max_sequence_length"]), cfg.text_dim, generator=generator, device=device, dtype=dtype
    )
    shift = float(arch["scheduler"]["flow_shift"])  # 5.0

    def loss_fn():
        sigmas = wan.shifted_sigmas(batch, generator, shift, device=device)
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        return wan.flow_matching_loss(transformer, latents, condition, mask, embeds, sigmas, noise)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = time_steps(transformer, loss_fn, steps, device)
    return _row(
        arch_name, frames, height, width, checkpointing, rank, lora_params, steps, times, loss, device
    )


def step_benchmark(
    arch_name, frames, height, width, checkpointing, steps, device, rank=64, batch=1, full=False, mesh=None
) -> dict:
    """One row: the family's training step timed on ``arch_name`` at frames x height x width."""
    bench = wan_step_benchmark if family(arch_name) == "wan" else cogvideox_step_benchmark
    row = bench(
        arch_name,
        frames,
        height,
        width,
        checkpointing,
        steps,
        device,
        rank=rank,
        batch=batch,
        full=full,
        mesh=mesh,
    )
    return {**row, "full_finetune": bool(full)}
