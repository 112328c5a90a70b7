"""The backbone-family interface (src/models/family.py) with both families: one typed schema for
every conf/model/*.yaml, every experiment composing with each model, and -- for the tiny Wan2.2,
without any weights -- a training step that feeds the transformer what WanImageToVideoPipeline
feeds it, LoRA export read back by plain diffusers with bit-identical frames, the encoder cache,
the meta-device figures, the missing-weights error and a CPU run end to end."""

from __future__ import annotations

import json

import pytest
import torch

from src.models.family import ModelWeightsMissing, build_backbone
from src.models.model_config import MODEL_KEYS, validate_model_config
from src.utils.cli import ConfigError
from tests.conftest import backbone, group_options, model_config, transformer_inputs

MODELS = group_options("model")
FAMILIES = {
    "tiny": "cogvideox",
    "tiny_learned_vae": "cogvideox",
    "tiny_wan_learned_vae": "wan",
    "cogvideox_5b_i2v": "cogvideox",
    "cogvideox1.5_5b_i2v": "cogvideox",
    "tiny_wan": "wan",
    "wan2.2_ti2v_5b": "wan",
}


def test_every_model_config_sets_the_schema_and_names_its_family():
    assert sorted(MODELS) == sorted(FAMILIES)
    for name in MODELS:
        config = model_config(name)
        assert set(config) - {"_target_"} == set(MODEL_KEYS), name  # same keys everywhere
        family = build_backbone(config)
        assert family.family == FAMILIES[name] and family.name == name
        # the lora presets pick the family's module names
        lora = model_config(name, "lora=attn_ff")
        assert lora["lora_targets"]["attn_ff"][-1] in ("ff.net.2", "ffn.net.2")


@pytest.mark.parametrize(
    ("name", "vae_class"),
    [
        ("tiny", "LinearVideoCodec"),
        ("tiny_wan", "LinearVideoCodec"),
        ("tiny_learned_vae", "AutoencoderKLCogVideoX"),
        ("tiny_wan_learned_vae", "AutoencoderKLWan"),
    ],
)
def test_tiny_models_load_with_their_autoencoder(name, vae_class):
    """The default tiny models run over the linear codec; the learned-VAE bases stay loadable."""
    components = backbone(name).load()
    assert type(components.vae).__name__ == vae_class


def test_schema_refuses_missing_unknown_and_mistyped_keys():
    config = model_config("tiny_wan")
    with pytest.raises(ConfigError, match="model.height"):
        validate_model_config({**config, "height": "tall"})
    with pytest.raises(ConfigError, match=r"unknown keys \['kind'\].*missing keys \['shift'\]"):
        validate_model_config({**{k: v for k, v in config.items() if k != "shift"}, "kind": "tiny"})
    with pytest.raises(ConfigError, match="_target_"):
        build_backbone({**config, "_target_": "src.models.wan.NoSuchFamily"})
    with pytest.raises(ConfigError, match="model.shift"):
        backbone("tiny_wan", "model.shift=null")
    with pytest.raises(ConfigError, match="model.shift"):
        backbone("tiny", "model.shift=5.0")  # CogVideoX is DDPM v-prediction
    with pytest.raises(ConfigError, match="rope"):
        backbone("wan2.2_ti2v_5b", "model.positional_embedding=sincos")
    with pytest.raises(ConfigError, match="condition_probability"):
        backbone("tiny_wan", "model.condition_probability=1.5")


def test_untrained_tiny_wan_is_a_seeded_random_initialisation():
    from src.models.wan_architecture import TINY_WAN_ARCHITECTURE

    family = backbone("tiny_wan", "model.weights=untrained")
    assert family.architecture() is TINY_WAN_ARCHITECTURE
    first, second = family.load(), family.load()
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.transformer.parameters(), second.transformer.parameters(), strict=True)
    )


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes_with_every_model(experiment, tmp_path):
    """experiment=<preset> model=<any>: composes, resolves, validates against the schema and
    passes the family's geometry and option checks (no weights needed)."""
    for name in MODELS:
        config = model_config(name, f"experiment={experiment}")
        assert config["name"] == name  # the command line's model wins over the preset's
        family = build_backbone(config)
        arch = family.architecture()
        if name == "cogvideox_5b_i2v" and experiment.startswith("vbridge"):
            # V-Bridge's square crops: CogVideoX 1.0's learned positional table is refused, clearly
            with pytest.raises(ConfigError, match="takes 480x720 only"):
                family.check_geometry(dict(arch["vae"]), dict(arch["transformer"]))
            continue
        family.check_geometry(dict(arch["vae"]), dict(arch["transformer"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.height=700"], "multiple of 32"),
        (["model.frames=10"], "4k\\+1"),
        (["model.width=1270"], "model.width"),
    ],
)
def test_wan_geometry_is_refused_at_config_time(overrides, message):
    family = backbone("wan2.2_ti2v_5b", *overrides)
    arch = family.architecture()
    with pytest.raises(ConfigError, match=message):
        family.check_geometry(arch["vae"], arch["transformer"])


def test_wan_missing_weights_fail_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelWeightsMissing) as err:
        backbone("wan2.2_ti2v_5b").check_config()
    message = str(err.value)
    assert (
        "wan2.2_ti2v_5b" in message and "huggingface-cli download Wan-AI/Wan2.2-TI2V-5B-Diffusers" in message
    )
    half = tmp_path / "half"
    (half / "transformer").mkdir(parents=True)
    with pytest.raises(ModelWeightsMissing, match="wan directory.*vae"):
        backbone("wan2.2_ti2v_5b", f"model.path={half}").load()


def test_model_report_prints_the_wan_figures(tmp_path):
    """python -m src.model_report model=wan2.2_ti2v_5b lora.rank=64, on the meta device."""
    from hydra import compose, initialize_config_dir

    from src.training.memory_plan import format_report, model_report
    from src.utils.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=wan2.2_ti2v_5b",
                "lora.rank=64",
                "data.batch_size=1",
                f"paths.run_dir={tmp_path}",
            ],
        )
    report = model_report(cfg)
    assert report["family"] == "wan"
    assert report["parameters"]["transformer"] == 4_999_787_712
    assert report["lora"]["trainable_parameters"] == 94_371_840
    assert report["parameters"]["text_encoder"] == 5_680_910_336  # the UMT5-XXL encoder
    tokens = report["tokens_per_sample"]
    assert tokens["grid"] == [3, 22, 40] and tokens["tokens"] == 3 * 22 * 40 + 512
    assert report["tokens_at_other_geometries"] == {"9x960x960": 3 * 30 * 30 + 512}
    memory = report["memory_estimate"]
    assert memory["weights_gib"]["vae"] == pytest.approx(report["parameters"]["vae"] * 4 / 2**30)  # fp32 VAE
    assert "4,999,787,712" in format_report(report)


# -- the tiny Wan2.2, no weights -------------------------------------------------------------------
@pytest.fixture
def tiny_wan():
    torch.set_num_threads(1)  # two OpenMP threads contend badly with a busy core (measured ~40x)
    family = backbone("tiny_wan")
    yield family, family.load()
    torch.set_num_threads(2)


def test_wan_training_step_feeds_the_transformer_what_the_pipeline_feeds_it(tiny_wan):
    """Same image: latent frame 0 of the model input is the pipeline's clean condition latent
    (posterior mode, latents_mean/std normalisation) bit for bit, and its tokens get timestep 0
    while the others get the step's timestep, as WanImageToVideoPipeline(expand_timesteps) does."""
    family, components = tiny_wan
    family.bind(components)
    frames, height, width = family.geometry
    video = torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    calls, handle = transformer_inputs(components.transformer)
    try:
        family.pipeline(
            image=video[:, 0],
            prompt="a test",
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=1,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(7),
            output_type="latent",
            max_sequence_length=family.config.max_sequence_length,
        )
        family.training_loss({"frames": video, "prompt": ["a test"]}, torch.Generator().manual_seed(1))
    finally:
        handle.remove()
    theirs, ours = calls
    assert ours["hidden_states"].shape == theirs["hidden_states"].shape  # (1, 48, 3, 8, 14)
    assert torch.equal(ours["hidden_states"][:, :, :1], theirs["hidden_states"][:, :, :1])
    assert not torch.equal(ours["hidden_states"][:, :, 1:], theirs["hidden_states"][:, :, 1:])
    per_frame = theirs["timestep"].shape[1] // ours["hidden_states"].shape[2]
    for fed in (theirs["timestep"], ours["timestep"]):
        assert fed.shape == (1, 3 * per_frame)
        assert torch.all(fed[:, :per_frame] == 0) and torch.all(fed[:, per_frame:] > 0)
        assert len(set(fed[0, per_frame:].tolist())) == 1
    assert torch.equal(ours["encoder_hidden_states"], theirs["encoder_hidden_states"])  # UMT5, zero-padded


def test_wan_lora_export_loads_into_plain_diffusers_with_identical_frames(tiny_wan, tmp_path):
    from diffusers import WanImageToVideoPipeline

    from src.models.lora import add_lora

    family, components = tiny_wan
    targets = model_config("tiny_wan")["lora_targets"]["attn_ff"]
    add_lora(components.transformer, 4, 8, targets)
    family.bind(components)
    generator = torch.Generator().manual_seed(0)
    for name, parameter in components.transformer.named_parameters():
        if "lora_" in name:  # a trained-looking adapter (B is zero at init)
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.05
    frames, height, width = family.geometry
    first = torch.rand(1, 3, height, width, generator=generator)
    ours = family.generate(first, ["a test"], [torch.Generator().manual_seed(3)])
    family.export_lora(
        components.transformer, tmp_path / "lora", {"rank": 4, "alpha": 8, "target_modules": targets}
    )
    assert json.loads((tmp_path / "lora" / "lora_config.json").read_text())["family"] == "wan"

    fresh = backbone("tiny_wan").load()
    pipeline = WanImageToVideoPipeline(
        **{k: getattr(fresh, k) for k in ("tokenizer", "text_encoder", "vae", "transformer", "scheduler")},
        expand_timesteps=True,
    )
    pipeline.load_lora_weights(str(tmp_path / "lora"))  # plain diffusers, no platform code
    pipeline.set_progress_bar_config(disable=True)
    theirs = pipeline(
        image=first,
        prompt=["a test"],
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=family.config.sampling.num_inference_steps,
        guidance_scale=family.config.sampling.guidance_scale,
        generator=[torch.Generator().manual_seed(3)],
        output_type="pt",
        max_sequence_length=family.config.max_sequence_length,
    ).frames.float()
    assert torch.equal(ours, theirs.clamp(0, 1))
    base = backbone("tiny_wan").bind(backbone("tiny_wan").load())
    assert not torch.allclose(
        ours, base.generate(first, ["a test"], [torch.Generator().manual_seed(3)]), atol=1e-3
    )


def test_wan_encoder_cache_stores_and_reuses_posteriors_and_prompts(tiny_wan, tmp_path):
    family, components = tiny_wan
    family = backbone("tiny_wan", "model.cache.enabled=true", f"model.cache.dir={tmp_path / 'cache'}")
    family.bind(components)
    assert family.cache.fingerprint["family"] == "wan"
    frames, height, width = family.geometry
    video = torch.rand(2, 3, frames, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    first = family.clip_posteriors(video, ["a", "b"])
    again = family.clip_posteriors(video * 0, ["a", "b"])  # served from the cache, not re-encoded
    assert family.cache.stats["written"] == 2 and family.cache.stats["hits"] == 2
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    embeds = family.prompt_embeddings(["a test"])
    assert torch.equal(embeds, family.prompt_embeddings(["a test"])) and family.cache.stats["hits"] == 3
    assert torch.equal(embeds, family.encode_prompts(["a test"], torch.device("cpu")))
    other = backbone("tiny", "model.cache.enabled=true", f"model.cache.dir={tmp_path / 'cache'}")
    other.components = family.components  # same modules, other family: another namespace
    assert other.cache_fingerprint() != family.cache.fingerprint


def test_cogvideox_loss_on_first_frame_switch(tmp_path):
    family = backbone("tiny")
    family.bind(family.load())
    frames, height, width = family.geometry
    batch = {"frames": torch.rand(1, frames, 3, height, width), "prompt": ["a test"]}
    with torch.no_grad():
        full = family.training_loss(batch, torch.Generator().manual_seed(0))
        family.config.loss_on_first_frame = False
        partial = family.training_loss(batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(full) and torch.isfinite(partial) and not torch.equal(full, partial)


def test_tiny_wan_trains_validates_and_restores_on_cpu(tmp_path):
    """python -m src.train model=tiny_wan task=lowlight, then src.restore from its LoRA export and
    from its Lightning checkpoint: the same frames both ways."""
    from tests.conftest import run_module

    run = tmp_path / "run"
    result = run_module(
        "src.train", "model=tiny_wan", "task=lowlight", "debug=fast", f"hydra.run.dir={run}", timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "frame_metrics.json").read_text())
    assert len(metrics["psnr"]) == 9 and metrics["task"] == "lowlight"
    assert json.loads((run / "lora" / "lora_config.json").read_text())["model"] == "tiny_wan"
    image = tmp_path / "input.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    outputs = []
    for name, ckpt in (("export", run), ("ckpt", run / "checkpoints" / "last.ckpt")):
        out = tmp_path / name
        restored = run_module(
            "src.restore", f"input={image}", f"ckpt={ckpt}", f"out_dir={out}", f"hydra.run.dir={out}_run"
        )
        assert restored.returncode == 0, restored.stderr[-3000:]
        outputs.append((out / "input" / "restored.png").read_bytes())
    assert outputs[0] == outputs[1]
