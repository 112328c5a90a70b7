"""Wan2.2-TI2V-5B recipe (src/models/wan_recipe.py and wan_architecture.py, as src.models.wan
exports them): published sizes on the meta device, geometry checks, and bit-level parity of the
training-side conditioning with diffusers' WanImageToVideoPipeline (expand_timesteps=True) on the
tiny random Wan2.2."""

from __future__ import annotations

import copy

import pytest
import torch

from src.models import wan
from src.utils.cli import ConfigError
from tests.conftest import transformer_inputs

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
H, W, F = wan.TINY_WAN_ARCHITECTURE["height"], wan.TINY_WAN_ARCHITECTURE["width"], 9
MAX_LEN = wan.TINY_WAN_ARCHITECTURE["max_sequence_length"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these models are tiny, and with two OpenMP threads on a 2-core machine
    that is running anything else the spin barriers make every op ~40x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(seed: int = 0, architecture: dict | None = None):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return wan.build_tiny_wan_components(architecture)


@pytest.fixture(scope="module")
def tiny():
    """Shared tiny components, with the published Wan2.2 latent statistics instead of the
    identity placeholders so that the normalisation's op order is under test too. Tests that
    change the transformer (LoRA) build their own."""
    arch = copy.deepcopy(wan.TINY_WAN_ARCHITECTURE)
    published = wan.PUBLISHED_ARCHITECTURES["wan2.2_ti2v_5b"]["vae"]
    arch["vae"]["latents_mean"] = published["latents_mean"]
    arch["vae"]["latents_std"] = published["latents_std"]
    return _tiny(architecture=arch)


@pytest.fixture(scope="module")
def pipe(tiny):
    return wan.wan_pipeline(tiny)


def _image(seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- published sizes


def test_meta_parameter_counts_and_lora_r64():
    from peft import LoraConfig

    with torch.device("meta"):
        models = wan.build_meta_models("wan2.2_ti2v_5b")
        transformer = models["transformer"]
        assert all(p.is_meta for m in models.values() for p in m.parameters())
        assert sum(p.numel() for p in transformer.parameters()) == 4_999_787_712
        # per targeted Linear r * (in + out), independently of peft
        targeted = [
            m
            for n, m in transformer.named_modules()
            if isinstance(m, torch.nn.Linear) and any(n.endswith("." + t) for t in LORA_TARGETS)
        ]
        assert len(targeted) == 30 * 8  # q, k, v, out of attn1 (self) and attn2 (cross), 30 blocks
        assert sum(64 * (m.in_features + m.out_features) for m in targeted) == 94_371_840
        transformer.add_adapter(LoraConfig(r=64, lora_alpha=64, target_modules=LORA_TARGETS))
    lora = [(n, p) for n, p in transformer.named_parameters() if "lora_" in n]
    assert all(p.is_meta for _, p in lora)
    assert sum(p.numel() for _, p in lora) == 94_371_840
    assert len(lora) == 30 * 8 * 2 and any(".attn2." in n for n, _ in lora)


def test_tokens_per_sample_and_published_config():
    arch = wan.PUBLISHED_ARCHITECTURES["wan2.2_ti2v_5b"]
    assert wan.tokens_per_sample(9, 704, 1280, arch) == 3 * 22 * 40 == 2640
    assert wan.tokens_per_sample(9, 960, 960) == 3 * 30 * 30 == 2700
    assert len(arch["vae"]["latents_mean"]) == len(arch["vae"]["latents_std"]) == 48
    assert wan.spatial_multiple(arch["vae"], arch["transformer"]) == 32
    scheduler = wan.build_scheduler(arch["scheduler"])
    assert scheduler.config.prediction_type == "flow_prediction" and scheduler.config.use_flow_sigmas
    assert scheduler.config.flow_shift == 5.0 and scheduler.config.num_train_timesteps == 1000


def test_check_geometry():
    wan.check_geometry(9, 704, 1280)
    wan.check_geometry(9, 960, 960)
    wan.check_geometry(121, 704, 1280)
    with pytest.raises(ConfigError, match="model.frames"):
        wan.check_geometry(10, 704, 1280)
    with pytest.raises(ConfigError, match="model.height.*32.*round"):
        wan.check_geometry(9, 700, 1280)
    with pytest.raises(ConfigError, match="model.width"):
        wan.check_geometry(9, 704, 1270)
    with pytest.raises(ConfigError, match="model.frames"):
        wan.check_geometry(0, 704, 1280)
    # the tiny model's own multiple (VAE 8 x patch 2 = 16)
    wan.check_geometry(9, H, W, name="tiny_wan")
    with pytest.raises(ConfigError, match="model.width.*16"):
        wan.check_geometry(9, H, 120, name="tiny_wan")
    with pytest.raises(ConfigError, match="unknown"):
        wan.check_geometry(9, H, W, name="wan9")


# ----------------------------------------------------------------------------- tiny model


def test_tiny_geometry_matches_its_config(tiny):
    cfg = tiny.vae.config
    assert all(not m.training for m in (tiny.vae, tiny.transformer, tiny.text_encoder))
    with torch.no_grad():
        mean, logvar = wan.encode_posterior(tiny.vae, torch.rand(1, 3, F, H, W) * 2 - 1)
    s = cfg.scale_factor_spatial
    assert mean.shape == logvar.shape == (1, 48, (F - 1) // cfg.scale_factor_temporal + 1, H // s, W // s)
    sample = wan.video_latents(mean, logvar, cfg, torch.Generator().manual_seed(2))
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(2))
    expected = wan.normalize_latents(mean + torch.exp(0.5 * logvar) * noise, cfg)
    assert sample.dtype == torch.float32 and torch.allclose(sample, expected, atol=1e-6)
    p = tiny.transformer.config.patch_size
    assert wan.tokens_per_sample(F, H, W, "tiny_wan") == mean.shape[2] * (H // s // p[1]) * (W // s // p[2])


def test_prepare_latents_parity_with_the_learned_vae():
    """The same parity over the learned tiny AutoencoderKLWan (model=tiny_wan_learned_vae)."""
    arch = copy.deepcopy(wan.TINY_WAN_LEARNED_VAE_ARCHITECTURE)
    published = wan.PUBLISHED_ARCHITECTURES["wan2.2_ti2v_5b"]["vae"]
    arch["vae"]["latents_mean"] = published["latents_mean"]
    arch["vae"]["latents_std"] = published["latents_std"]
    learned = _tiny(architecture=arch)
    assert type(learned.vae).__name__ == "AutoencoderKLWan"
    test_prepare_latents_parity(learned, wan.wan_pipeline(learned))


def test_prepare_latents_parity(tiny, pipe):
    """condition, mask, noise and normalisation equal the pipeline's prepare_latents (torch.equal)."""
    image = _image()
    processed = pipe.video_processor.preprocess(image, height=H, width=W).to(dtype=torch.float32)
    assert torch.equal(wan.image_to_vae(image), processed)
    noise, condition, mask = pipe.prepare_latents(
        processed, 1, 48, H, W, F, torch.float32, torch.device("cpu"), [torch.Generator().manual_seed(7)]
    )
    ours = wan.condition_latents(tiny.vae, wan.image_to_vae(image))
    assert ours.shape == (1, 48, 1, H // 8, W // 8)
    assert torch.equal(ours, condition)
    assert torch.equal(wan.first_frame_mask(noise), mask)
    assert torch.equal(torch.randn(noise.shape, generator=torch.Generator().manual_seed(7)), noise)
    # normalisation round trip and the pipeline's decode-side formula
    raw = tiny.vae.encode(wan.image_to_vae(image).unsqueeze(2)).latent_dist.mode()
    assert torch.equal(wan.normalize_latents(raw, tiny.vae.config), condition)
    x = torch.randn(2, 48, 3, 4, 7)
    cfg = tiny.vae.config
    assert not torch.equal(wan.normalize_latents(x, cfg), x)
    assert torch.allclose(wan.denormalize_latents(wan.normalize_latents(x, cfg), cfg), x, atol=1e-5)
    # the first latent frame of the whole clip's posterior mean is that of the image encoded alone
    clip = torch.cat([image.unsqueeze(2), torch.rand(1, 3, F - 1, H, W)], dim=2)
    mean, _ = wan.encode_posterior(tiny.vae, wan.image_to_vae(clip))
    assert torch.allclose(wan.normalize_latents(mean[:, :, :1], tiny.vae.config), condition, atol=1e-6)


def test_pipeline_step_inputs_and_timesteps_match_training_side(tiny, pipe, monkeypatch):
    image, seed, steps = _image(2), 11, 3
    condition = wan.condition_latents(tiny.vae, wan.image_to_vae(image))
    after_step, decoded = [], []
    decode = tiny.vae.decode

    def capture_decode(z, *args, **kwargs):
        decoded.append(z.clone())
        return decode(z, *args, **kwargs)

    monkeypatch.setattr(tiny.vae, "decode", capture_decode)

    def on_step_end(_pipe, _i, _t, kwargs):
        after_step.append(kwargs["latents"].clone())
        return {}

    calls, handle = transformer_inputs(tiny.transformer)
    try:
        pipe.set_progress_bar_config(disable=True)
        pipe(
            image=image,
            prompt=["a photo sharpens"],
            height=H,
            width=W,
            num_frames=F,
            num_inference_steps=steps,
            guidance_scale=2.0,  # CFG: two transformer calls per step, same inputs
            generator=[torch.Generator().manual_seed(seed)],
            output_type="pt",
            max_sequence_length=MAX_LEN,
            callback_on_step_end=on_step_end,
        )
    finally:
        handle.remove()
    assert len(calls) == 2 * steps
    shape = (1, 48, (F - 1) // 4 + 1, H // 8, W // 8)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    mask = wan.first_frame_mask(latents)
    patch = tiny.transformer.config.patch_size
    for k, t in enumerate(pipe.scheduler.timesteps):
        for call in calls[2 * k : 2 * k + 2]:
            assert torch.equal(call["timestep"], wan.token_timesteps(mask, t.expand(1), patch))
            assert torch.equal(call["hidden_states"], wan.masked_model_input(latents, condition, mask))
        latents = after_step[k]
    assert calls[0]["timestep"].shape == (1, wan.tokens_per_sample(F, H, W, "tiny_wan"))
    # the decode side: frame 0 put back to the condition, then denormalised
    final = wan.masked_model_input(after_step[-1], condition, mask)
    assert torch.equal(decoded[0], wan.denormalize_latents(final, tiny.vae.config))

    # the training step builds the same input: at sigma = 1, x_t is the pipeline's initial noise
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    train_calls, handle = transformer_inputs(tiny.transformer)
    try:
        with torch.no_grad():
            wan.flow_matching_loss(
                tiny.transformer,
                torch.randn(shape),
                condition,
                mask,
                torch.zeros(1, MAX_LEN, 128),
                torch.ones(1),
                noise,
            )
    finally:
        handle.remove()
    assert torch.equal(train_calls[0]["hidden_states"], calls[0]["hidden_states"])
    assert torch.equal(train_calls[0]["timestep"] == 0, calls[0]["timestep"] == 0)
    assert torch.all(train_calls[0]["timestep"][calls[0]["timestep"] != 0] == 1000.0)


def test_token_timesteps_batch_of_timesteps():
    mask = wan.first_frame_mask(torch.zeros(2, 4, 3, 4, 6))
    ts = wan.token_timesteps(mask, torch.tensor([10.0, 500.0]), (1, 2, 2))
    assert ts.shape == (2, 3 * 2 * 3)
    assert torch.all(ts[:, :6] == 0)
    assert torch.all(ts[0, 6:] == 10.0) and torch.all(ts[1, 6:] == 500.0)


def test_shifted_sigmas():
    u = torch.rand(4096, generator=torch.Generator().manual_seed(3))
    s = wan.shifted_sigmas(4096, torch.Generator().manual_seed(3), shift=5.0)
    assert torch.allclose(s, 5 * u / (1 + 4 * u))
    assert s.min() >= 0 and s.max() < 1 and s.mean() > 0.7  # shift 5 favours high noise
    assert torch.allclose(wan.shifted_sigmas(8, torch.Generator().manual_seed(3), shift=1.0), u[:8])


# ----------------------------------------------------------------------------- loss


def _loss_inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, 48, 3, H // 8, W // 8, generator=g)
    return {
        "latents_bcfhw": latents,
        "condition_bc1hw": torch.randn(batch, 48, 1, H // 8, W // 8, generator=g),
        "mask_b1fhw": wan.first_frame_mask(latents),
        "prompt_embeds_bld": torch.randn(batch, MAX_LEN, 128, generator=g),
        "sigmas_b": torch.rand(batch, generator=g),
        "noise_bcfhw": torch.randn(latents.shape, generator=g),
    }


def test_flow_matching_loss_differentiable_into_lora():
    from peft import LoraConfig

    components = _tiny()
    transformer = components.transformer
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=LORA_TARGETS))
    transformer.train()
    inputs = _loss_inputs()
    loss = wan.flow_matching_loss(transformer, **inputs)
    assert loss.ndim == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for n, p in transformer.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for n, p in transformer.named_parameters() if "lora_" not in n)
    with torch.no_grad():
        with_first = wan.flow_matching_loss(transformer, **inputs, loss_on_first_frame=True)
        without = wan.flow_matching_loss(transformer, **inputs)
    assert torch.isfinite(with_first) and not torch.isclose(with_first, without)


def test_flow_matching_loss_zero_for_exact_velocity(tiny, monkeypatch):
    """With sigma = 0 the input is x_0 and a model returning noise - input has zero loss."""
    inputs = _loss_inputs()
    inputs["sigmas_b"] = torch.zeros(2)
    inputs["condition_bc1hw"] = inputs["latents_bcfhw"][:, :, :1].clone()
    noise = inputs["noise_bcfhw"]
    seen = []

    def exact(hidden_states, timestep, encoder_hidden_states, return_dict=False, **_):
        seen.append(timestep)
        return (noise - hidden_states,)

    monkeypatch.setattr(tiny.transformer, "forward", exact)
    for first in (False, True):
        assert wan.flow_matching_loss(tiny.transformer, **inputs, loss_on_first_frame=first).item() == 0.0
    assert seen[0].shape == (2, 84) and torch.all(seen[0] == 0)
    inputs["sigmas_b"] = torch.full((2,), 0.5)
    assert wan.flow_matching_loss(tiny.transformer, **inputs).item() > 0.1  # the same model, now wrong


def test_flow_matching_loss_unconditioned_samples(tiny):
    inputs = _loss_inputs()
    inputs["sigmas_b"] = torch.tensor([0.3, 0.6])
    calls, handle = transformer_inputs(tiny.transformer)
    try:
        with torch.no_grad():
            wan.flow_matching_loss(tiny.transformer, **inputs, conditioned=torch.tensor([True, False]))
    finally:
        handle.remove()
    x, ts = calls[0]["hidden_states"], calls[0]["timestep"]
    s = inputs["sigmas_b"].view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * inputs["latents_bcfhw"] + s * inputs["noise_bcfhw"]
    assert torch.equal(x[0, :, :1], inputs["condition_bc1hw"][0])  # conditioned: clean frame 0
    assert torch.equal(x[0, :, 1:], noisy[0, :, 1:])
    assert torch.equal(x[1], noisy[1])  # text-only: noisy frame 0 too
    assert torch.all(ts[0, :28] == 0) and torch.allclose(ts[0, 28:], torch.tensor(300.0))
    assert torch.allclose(ts[1], torch.tensor(600.0))


# ----------------------------------------------------------------------------- sampling, export


def test_encode_prompts_zero_padded(pipe):
    embeds = wan.encode_prompts(pipe, ["a cat", "a blurred dog focuses"], MAX_LEN, "cpu")
    assert embeds.shape == (2, MAX_LEN, 128) and not embeds.requires_grad
    assert torch.all(embeds[0, 6:] == 0) and torch.all(embeds[0, :6].abs().sum(-1) > 0)  # 5 bytes + </s>


def test_generate_trajectory_shape_range_determinism(pipe):
    images = _image(4, batch=2)
    prompts = ["a cat", "a dog"]

    def run(embeds=None):
        gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
        return wan.generate_trajectory(
            pipe, images, prompts, gens, H, W, F, 2, 1.0, MAX_LEN, prompt_embeds=embeds
        )

    first, second = run(), run()
    assert first.shape == (2, F, 3, H, W) and first.dtype == torch.float32
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, second)
    assert not torch.equal(first[0], first[1])
    cached = wan.encode_prompts(pipe, prompts, MAX_LEN, "cpu")
    assert torch.equal(run(cached), first)


def test_lora_export_round_trip(tmp_path):
    from diffusers import WanImageToVideoPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    components = _tiny(seed=5)
    base = {
        name: {k: v.clone() for k, v in getattr(components, name).state_dict().items()}
        for name in ("transformer", "vae", "text_encoder")
    }
    image = _image(6)

    def frames(pipeline):
        gen = [torch.Generator().manual_seed(0)]
        return wan.generate_trajectory(pipeline, image, ["a cat"], gen, H, W, F, 2, 1.0, MAX_LEN)

    before = frames(wan.wan_pipeline(components))
    # alpha != r: the scale only survives through the adapter metadata
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, target_modules=LORA_TARGETS)
    components.transformer.add_adapter(config)
    adapted = frames(wan.wan_pipeline(components))
    assert not torch.equal(adapted, before)
    WanImageToVideoPipeline.save_lora_weights(
        tmp_path,
        transformer_lora_layers=get_peft_model_state_dict(components.transformer),
        transformer_lora_adapter_metadata={"r": 4, "lora_alpha": 8.0, "target_modules": LORA_TARGETS},
    )
    fresh = _tiny(seed=99)  # other random weights, replaced by the same base
    for name, state in base.items():
        getattr(fresh, name).load_state_dict(state)
    pipeline = wan.wan_pipeline(fresh)
    assert torch.equal(frames(pipeline), before)
    pipeline.load_lora_weights(tmp_path)
    assert torch.equal(frames(pipeline), adapted)
