"""The real CogVideoX backbones without their weights: published architectures on the meta device,
recipe fidelity against the diffusers pipeline with tiny models of the same classes (1.0 and 1.5
flavours), missing-weight errors, and a LoRA export that reproduces validation samples exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from src.models import recipe
from src.models.cogvideox import PUBLISHED_ARCHITECTURES, ModelWeightsMissing, build_meta_models
from src.models.lora import add_lora
from src.models.tiny import TINY_ARCHITECTURE, TINY_LEARNED_VAE_ARCHITECTURE, build_tiny_components
from src.training.memory_plan import estimate_memory
from src.utils.cli import ConfigError
from tests.conftest import backbone, transformer_inputs

H, W, FRAMES = TINY_ARCHITECTURE["height"], TINY_ARCHITECTURE["width"], 9


def tiny_arch(version: str) -> dict:
    """Tiny architecture with the 1.0 or 1.5 traits that change the recipe ("1.0-vae": 1.0 over
    the learned tiny AutoencoderKLCogVideoX instead of the linear codec)."""
    arch = copy.deepcopy(TINY_LEARNED_VAE_ARCHITECTURE if version == "1.0-vae" else TINY_ARCHITECTURE)
    if version == "1.5":
        arch["transformer"].update(patch_size_t=2, patch_bias=False, ofs_embed_dim=128)
        arch["vae"]["invert_scale_latents"] = True
        arch["vae"]["scaling_factor"] = 0.7
    elif version == "1.0-learned":
        arch["transformer"].update(use_learned_positional_embeddings=True, sample_frames=FRAMES)
    return arch


@pytest.fixture(scope="module", params=["cogvideox_5b_i2v", "cogvideox1.5_5b_i2v"])
def meta_models(request):
    return request.param, build_meta_models(request.param)


def test_published_architectures_have_the_published_sizes(meta_models):
    name, models = meta_models
    transformer = models["transformer"]
    assert all(p.is_meta for p in transformer.parameters())
    total = sum(p.numel() for p in transformer.parameters())
    assert 5.565e9 < total < 5.575e9, total  # "about 5.57 B"
    assert sum(p.numel() for p in models["text_encoder"].parameters()) == 4_762_310_656  # T5 v1.1 XXL encoder
    lora = add_lora(transformer, 64, 64, ["to_q", "to_k", "to_v", "to_out.0"])
    assert lora == 66_060_288  # 64 x (3072 + 3072) x 4 projections x 42 blocks
    assert transformer.config.get("patch_size_t") == PUBLISHED_ARCHITECTURES[name]["transformer"].get(
        "patch_size_t"
    )


def test_tokens_per_sample_and_memory_plan():
    five, one_five = (PUBLISHED_ARCHITECTURES[n] for n in ("cogvideox_5b_i2v", "cogvideox1.5_5b_i2v"))
    family = backbone("cogvideox_5b_i2v")
    tokens = family.tokens_per_sample(five["vae"], five["transformer"], 9, 480, 720)
    assert (tokens["latent_frames"], tokens["video_tokens"], tokens["tokens"]) == (3, 3 * 30 * 45, 4050 + 226)
    tokens = family.tokens_per_sample(one_five["vae"], one_five["transformer"], 9, 768, 1360)
    assert tokens["latent_frames_padded"] == 4 and tokens["grid"] == [2, 48, 85]
    plan = {
        bits: estimate_memory(
            5_570_479_680, 215_583_907, 4_762_310_656, 66_060_288, 4276, 3072, 42, 1, optimizer_8bit=bits
        )
        for bits in (False, True)
    }
    full, gib = plan[False], 2**30
    # Pinned to the formulas the README states, term by term (any positive inputs would pass the
    # orderings alone): bf16 weights; fp32 LoRA weight + grad + AdamW moments (8-bit: 2 bytes);
    # 34 bytes x tokens x hidden per block; with checkpointing each block's bf16 input + one block.
    assert full["weights_gib"]["transformer"] == pytest.approx(5_570_479_680 * 2 / gib, rel=1e-12)
    assert full["lora_state_gib"] == pytest.approx(66_060_288 * 16 / gib, rel=1e-12)
    assert plan[True]["lora_state_gib"] == pytest.approx(66_060_288 * 10 / gib, rel=1e-12)
    per_block = 34 * 4276 * 3072 / gib
    assert full["activations_gib"]["no_checkpointing"] == pytest.approx(42 * per_block, rel=1e-12)
    assert full["activations_gib"]["checkpointing"] == pytest.approx(
        42 * 4276 * 3072 * 2 / gib + per_block, rel=1e-12
    )
    # the paper's setting (batch 1, rank 64, encoder cache on) as the README quotes it
    assert round(full["train_peak_gib"]["checkpointing"], 1) == 14.7
    assert round(full["train_peak_gib"]["no_checkpointing"], 1) == 30.7
    assert round(full["validation_peak_gib"], 1) == 15.9
    # trainer=fsdp over 8 GPUs: transformer weights and trainable state / 8, plus two whole blocks
    sharded = estimate_memory(
        5_570_479_680, 215_583_907, 4_762_310_656, 5_570_479_680, 4276, 3072, 42, 1, full=True, shards=8
    )
    whole = 5_570_479_680 * 4 / gib  # lora=none: fp32 weights
    assert sharded["weights_gib"]["transformer"] == pytest.approx(whole / 8 + 2 * whole / 42, rel=1e-12)
    assert sharded["lora_state_gib"] == pytest.approx(5_570_479_680 * 12 / gib / 8, rel=1e-12)
    assert sharded["activations_gib"] == full["activations_gib"], "activations are per GPU's own batch"
    assert round(sharded["train_peak_gib"]["checkpointing"], 1) == 14.7


def test_missing_weights_fail_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelWeightsMissing) as err:
        backbone("cogvideox_5b_i2v").check_config()
    message = str(err.value)
    assert "cogvideox_5b_i2v" in message and "huggingface-cli download THUDM/CogVideoX-5b-I2V" in message
    incomplete = tmp_path / "half"
    (incomplete / "transformer").mkdir(parents=True)
    with pytest.raises(ModelWeightsMissing, match="vae"):
        backbone("cogvideox_5b_i2v", f"model.path={incomplete}").load()


def check_geometry(name: str, frames: int, height: int, width: int, positional_embedding: str = "sincos"):
    family = backbone(
        name,
        f"model.frames={frames}",
        f"model.height={height}",
        f"model.width={width}",
        f"model.positional_embedding={positional_embedding}",
    )
    arch = family.architecture()
    family.check_geometry(arch["vae"], arch["transformer"])


def test_geometry_checks_before_loading():
    check_geometry("cogvideox_5b_i2v", 9, 480, 720)
    check_geometry("cogvideox1.5_5b_i2v", 9, 768, 1360)
    with pytest.raises(ConfigError, match="480x720 only"):
        check_geometry("cogvideox_5b_i2v", 9, 768, 1360)
    check_geometry("cogvideox_5b_i2v", 9, 768, 1360, positional_embedding="none")
    with pytest.raises(ConfigError, match="4k\\+1"):
        check_geometry("cogvideox1.5_5b_i2v", 10, 768, 1360)
    with pytest.raises(ConfigError, match="multiple of 16"):
        check_geometry("cogvideox1.5_5b_i2v", 9, 760, 1360)


@pytest.mark.parametrize("version", ["1.0", "1.5", "1.0-vae"])
def test_training_builds_the_conditioning_the_pipeline_builds(version):
    """Same image, same generator: the image latents (scaling convention incl. 1.5's
    invert_scale_latents), latent-frame padding, ofs and rotary embeddings of a training step
    equal what CogVideoXImageToVideoPipeline feeds its transformer."""
    torch.manual_seed(0)
    components = build_tiny_components(tiny_arch(version))
    pipeline = recipe.i2v_pipeline(components)
    image = torch.rand(1, 3, H, W)
    calls, handle = transformer_inputs(pipeline.transformer)
    pipeline(
        image=image,
        prompt="a test",
        height=H,
        width=W,
        num_frames=FRAMES,
        num_inference_steps=1,
        guidance_scale=1.0,
        generator=torch.Generator().manual_seed(7),
        output_type="latent",
        max_sequence_length=components.max_sequence_length,
    )
    handle.remove()
    fed = calls[0]
    latent_frames = recipe.latent_frame_count(FRAMES)
    padding = recipe.latent_frame_padding(latent_frames, components.transformer.config.get("patch_size_t"))
    assert padding == (1 if version == "1.5" else 0)
    ours = recipe.image_latents(
        components.vae, image * 2 - 1, latent_frames + padding, torch.Generator().manual_seed(7)
    )
    theirs = fed["hidden_states"][:, :, 16:]
    assert theirs.shape == ours.shape
    # the codec's einsum sums in another order for the pipeline's (non-contiguous) image: measured
    # 1.2e-6 at latents of magnitude ~3 (float32 rounding); the learned VAE's convs agree to 1e-6
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6 if version == "1.0-vae" else 1e-5)
    scale = recipe.image_latent_scale(components.vae.config)
    assert scale == pytest.approx(1 / 0.7 if version == "1.5" else components.vae.config.scaling_factor)
    ofs = recipe.ofs_input(components.transformer, ours)
    if version == "1.5":
        assert torch.equal(fed["ofs"], ofs) and float(ofs) == 2.0
    else:
        assert fed.get("ofs") is None and ofs is None
    rotary = recipe.rotary_embeddings(pipeline, H, W, latent_frames + padding, torch.device("cpu"))
    for a, b in zip(rotary, fed["image_rotary_emb"], strict=True):
        assert torch.equal(a, b)


def test_padding_prepends_copies_of_the_first_latent_frame():
    latents = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(2, 3, 4, 2, 2)
    padded = recipe.prepend_first_latent_frame(latents, 1)
    assert (
        padded.shape[1] == 4
        and torch.equal(padded[:, 0], latents[:, 0])
        and torch.equal(padded[:, 1:], latents)
    )
    assert recipe.latent_frame_padding(21, 2) == 1 and recipe.latent_frame_padding(22, 2) == 0
    assert recipe.latent_frame_padding(3, None) == 0


def test_unconditioned_samples_get_zero_image_latents():
    condition = torch.ones(64, 3, 4, 2, 2)
    dropped = recipe.drop_image_latents(condition, 0.5, torch.Generator().manual_seed(0))
    per_sample = dropped.flatten(1).sum(1)
    assert set(per_sample.tolist()) == {0.0, float(condition[0].numel())}
    assert 10 < int((per_sample == 0).sum()) < 54
    assert recipe.drop_image_latents(condition, 0.0, None) is condition


def test_positional_embedding_modes():
    components = build_tiny_components(tiny_arch("1.0-learned"))
    transformer = components.transformer
    embed = transformer.patch_embed
    embed.pos_embedding.normal_()  # stand-in for the trained table
    learned = embed.pos_embedding.clone()
    assert recipe.configure_positional_embeddings(transformer, "learned", FRAMES, H, W, 4) == "learned"
    with pytest.raises(ValueError, match="native"):
        recipe.configure_positional_embeddings(transformer, "learned", 13, H, W, 4)
    with pytest.raises(ValueError, match="only"):
        recipe.configure_positional_embeddings(transformer, "sincos", FRAMES, H * 2, W, 4)
    assert recipe.configure_positional_embeddings(transformer, "sincos", FRAMES, H, W, 4) == "sincos"
    sincos = embed._get_positional_embeddings(16, 28, FRAMES)
    assert torch.equal(embed.pos_embedding, sincos) and not torch.equal(sincos, learned)
    assert recipe.configure_positional_embeddings(transformer, "none", FRAMES, H, W, 4) == "none"
    assert not embed.use_learned_positional_embeddings and not embed.use_positional_embeddings


def test_diffusers_directory_loads_as_shipped_in_bf16(tmp_path):
    # a real model's directory holds a real VAE: the tiny model with its learned AutoencoderKLCogVideoX
    components = build_tiny_components(TINY_LEARNED_VAE_ARCHITECTURE)
    recipe.i2v_pipeline(components).save_pretrained(tmp_path / "tiny_i2v")
    local = ("model.name=local_tiny", f"model.path={tmp_path / 'tiny_i2v'}", "model.max_sequence_length=160")
    loaded = backbone("cogvideox_5b_i2v", *local).load()
    assert loaded.transformer.dtype == torch.bfloat16 and loaded.vae.use_tiling and loaded.vae.use_slicing
    assert type(loaded.scheduler).__name__ == "CogVideoXDDIMScheduler"
    assert loaded.scheduler.config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="other version"):
        backbone("cogvideox1.5_5b_i2v", f"model.path={tmp_path / 'tiny_i2v'}").load()


def test_lora_export_reproduces_the_validation_sample_exactly(tmp_path):
    """The family's export, loaded with plain CogVideoXImageToVideoPipeline.load_lora_weights into
    a fresh pipeline, gives bit-identical frames to the in-memory adapter's generation."""
    from diffusers import CogVideoXImageToVideoPipeline

    family = backbone("tiny", "model.sampling.num_inference_steps=3")
    components = family.load()
    add_lora(components.transformer, 4, 8, ["to_q", "to_k", "to_v", "to_out.0"])
    family.bind(components)
    generator = torch.Generator().manual_seed(0)
    for name, parameter in components.transformer.named_parameters():
        if "lora_" in name:  # a trained-looking adapter (B is zero at init)
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.05
    first = torch.rand(1, 3, H, W, generator=generator)
    ours = family.generate(first, ["a test"], [torch.Generator().manual_seed(3)])
    lora_cfg = {"rank": 4, "alpha": 8, "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}
    family.export_lora(components.transformer, tmp_path / "lora", lora_cfg)

    fresh = backbone("tiny").load()
    pipeline = CogVideoXImageToVideoPipeline(
        **{k: getattr(fresh, k) for k in ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")}
    )
    pipeline.load_lora_weights(str(tmp_path / "lora"))  # plain diffusers, no platform code
    kwargs = dict(
        height=H,
        width=W,
        num_frames=FRAMES,
        num_inference_steps=3,
        guidance_scale=1.0,
        max_sequence_length=160,
    )
    theirs = recipe.generate_trajectory(
        pipeline, first, ["a test"], [torch.Generator().manual_seed(3)], **kwargs
    )
    base = recipe.generate_trajectory(
        recipe.i2v_pipeline(backbone("tiny").load()),
        first,
        ["a test"],
        [torch.Generator().manual_seed(3)],
        **kwargs,
    )
    assert torch.equal(ours, theirs)
    assert not torch.allclose(ours, base, atol=1e-3), "the adapter must change the sample"
    config = family.load_lora(recipe.i2v_pipeline(backbone("tiny").load()), tmp_path / "lora")
    assert config["r"] == 4 and config["lora_alpha"] == 8 and config["family"] == "cogvideox"


def test_encoder_cache_precomputes_reuses_and_detects_stale_entries(tmp_path):
    """data=dataset with model.cache.enabled: the callback fills the cache (posteriors of every
    clip, embeddings of every prompt), T5 is offloaded, training steps read the cache, and a
    foreign or torn entry is reported stale and never used."""
    import lightning as L

    from src.data.builder import BuildSpec, build_dataset
    from src.data.latent_cache import LatentCache
    from src.training.builders import build_datamodule, build_module
    from src.training.callbacks import PrecomputeEncoderCache
    from tests.conftest import TASK_CFGS
    from tests.test_train import FAST, compose_train

    spec = BuildSpec(task="lowlight", out_dir=tmp_path / "ds", width=224, height=128, clips_per_image=1)
    build_dataset(spec, TASK_CFGS["lowlight"], "uniform", num_workers=0, progress=False)
    cfg = compose_train(
        [o for o in FAST if not o.startswith("data.")]
        + [
            "data=dataset",
            "data.batch_size=2",
            f"data.dataset_dir={spec.out_dir}",
            "prompt=uniform",
            "model.cache.enabled=true",
            f"model.cache.dir={tmp_path / 'cache'}",
            f"paths.run_dir={tmp_path / 'run'}",
        ]
    )
    module, datamodule = build_module(cfg), build_datamodule(cfg)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        callbacks=[PrecomputeEncoderCache(offload_text_encoder=True)],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)
    cache = module.backbone.cache
    clips = len(datamodule.train_set)
    assert cache.stats["written"] >= clips + 2  # every clip + the uniform prompt + ""
    assert cache.stats["hits"] >= 4, "training steps read posteriors and prompts from the cache"
    assert module.text_encoder.device.type == "cpu"

    item = datamodule.train_set[0]
    video = recipe.to_vae_video(item["frames"][None])
    mean, logvar = recipe.encode_posterior(module.vae, video)
    cached = cache.load_posterior(item["clip_id"])
    torch.testing.assert_close(cached[0], mean[0])
    torch.testing.assert_close(cached[1], logvar[0])

    other = LatentCache(tmp_path / "other", {**cache.fingerprint, "height": 1})
    other.save_posterior(item["clip_id"], mean[0], logvar[0])
    foreign = next((tmp_path / "other").rglob("*.safetensors"))
    own = cache._path("posterior", item["clip_id"])
    own.write_bytes(foreign.read_bytes())
    stale_before = cache.stats["stale"]
    assert cache.load_posterior(item["clip_id"]) is None and cache.stats["stale"] == stale_before + 1
    own.write_bytes(b"torn")
    assert cache.load_posterior(item["clip_id"]) is None and cache.stats["stale"] == stale_before + 2
    assert module.backbone.clip_posteriors(video, [item["clip_id"]])[0].shape == mean.shape  # recomputed
    assert cache.load_posterior(item["clip_id"]) is not None  # and rewritten


def test_gpu_step_benchmark_runs_on_the_tiny_model(tmp_path):
    """The GPU benchmark's code path (random weights, LoRA, real loss and optimizer steps) on CPU;
    the full sizes need a CUDA GPU and refuse clearly without one."""
    import json

    from tests.conftest import run_module

    out = tmp_path / "gpu_step"
    result = run_module(
        "src.benchmarks.gpu_step", "--arch", "tiny", "--device", "cpu", "--steps", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(out.with_suffix(".json").read_text())
    assert [r["gradient_checkpointing"] for r in record["results"]] == [True, False]
    assert all(r["loss_finite"] and r["step_seconds_median"] > 0 for r in record["results"])
    if not torch.cuda.is_available():
        refused = run_module("src.benchmarks.gpu_step", "--steps", "1", "--out", str(out))
        assert refused.returncode != 0 and "needs a CUDA GPU" in refused.stderr
