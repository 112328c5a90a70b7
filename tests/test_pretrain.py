"""The tiny base's pretraining data and tool (the shipped weights are its output)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from src.data.images import Source, load_image
from src.data.motion import (
    EFFECT_PHRASES,
    MOTION_PHRASES,
    STATIC_PHRASES,
    natural_motion_clip,
    pretraining_clip,
)
from src.utils.cli import ConfigError


@pytest.fixture(scope="module")
def photo():
    return load_image(Source("astronaut"))


def test_motion_clips_are_gentle_and_often_static(photo):
    rng = np.random.default_rng(0)
    phrases = []
    for _ in range(60):
        frames, phrase = natural_motion_clip(photo, rng, 9, 64, 112)
        assert frames.shape == (9, 64, 112, 3) and frames.dtype == np.uint8
        phrases.append(phrase)
        if phrase == MOTION_PHRASES["static"]:
            # a static camera changes at most the exposure: frames stay aligned
            corr = np.corrcoef(frames[0].ravel().astype(float), frames[-1].ravel().astype(float))[0, 1]
            assert corr > 0.99
    assert 0.25 < phrases.count(MOTION_PHRASES["static"]) / len(phrases) < 0.6


def test_camera_effects_change_frames_inside_a_latent_group(photo):
    """Exposure ramps and focus pulls vary frames 2-5 and 6-9 (each one VAE latent frame)."""
    rng = np.random.default_rng(1)
    spreads = []
    for _ in range(40):
        frames, _ = natural_motion_clip(photo, rng, 9, 64, 112, camera_effects=True)
        means = frames.reshape(9, -1).mean(1)
        spreads.append(abs(means[4] - means[1]))
    assert max(spreads) > 20, "some clips brighten or darken strongly within a group"


def sharpness(frame: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_pretraining_clips_do_what_their_description_says(photo):
    """Every change in a pretraining clip is named; a clip that names none keeps frame 1."""
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(120):
        frames, text, drawn = pretraining_clip(photo, rng, 9, 64, 112)
        assert frames.shape == (9, 64, 112, 3) and frames.dtype == np.uint8
        luma = frames.reshape(9, -1).mean(1)
        if drawn.get("exposure") == "brighten":
            assert EFFECT_PHRASES["brighten"] in text and luma[-1] > luma[0] + 5
        if drawn.get("exposure") == "darken":
            assert EFFECT_PHRASES["darken"] in text and luma[-1] < luma[0] - 5
        if drawn.get("focus") == "in" and "exposure" not in drawn:
            assert EFFECT_PHRASES["focus_in"] in text and sharpness(frames[-1]) > sharpness(frames[0])
        if drawn.get("focus") == "out" and "exposure" not in drawn:
            assert EFFECT_PHRASES["focus_out"] in text and sharpness(frames[-1]) < sharpness(frames[0])
        if drawn["camera"] in STATIC_PHRASES and "exposure" not in drawn and "focus" not in drawn:
            assert text in STATIC_PHRASES
            assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).max() <= 1, "static and unchanged"
        seen |= {drawn.get("exposure"), drawn.get("focus"), drawn["camera"] in STATIC_PHRASES}
    assert {"brighten", "darken", "in", "out", True, False} <= seen


def test_pretraining_clips_are_a_function_of_the_seed(photo):
    a = pretraining_clip(photo, np.random.default_rng(7), 9, 64, 112)
    b = pretraining_clip(photo, np.random.default_rng(7), 9, 64, 112)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]


TINY_RUN = ["--vae-steps", "3", "--vae-batch", "2", "--bank-clips", "8", "--transformer-steps", "3"]
TINY_RUN += ["--transformer-batch", "2", "--photos-dir", "none", "--fit-clips", "16"]


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("autoencoder", ["codec", "learned"])
def test_pretraining_writes_a_loadable_base_and_resumes_exactly(tmp_path, capsys, autoencoder):
    """An uninterrupted run, and the same run paused mid-VAE (learned) or after the codec fit,
    after the bank and mid-transformer and rerun each time, write the same weights; the record
    says what the base was made of."""
    from src.models.codec import LinearVideoCodec
    from src.models.tiny import load_tiny
    from src.pretrain_tiny import main

    def run(name, *extra):
        main(
            [
                *TINY_RUN,
                "--autoencoder",
                autoencoder,
                "--state-dir",
                str(tmp_path / name),
                "--out",
                str(tmp_path / f"{name}.safetensors"),
                "--record",
                str(tmp_path / f"{name}.json"),
                *extra,
            ]
        )

    run("whole")
    if autoencoder == "learned":
        run("pieces", "--budget-minutes", "0")  # pauses after VAE step 1
        assert "paused at vae step 1/3" in capsys.readouterr().err
    else:
        run("pieces", "--stop-after", "vae")  # the fit is one step: it stops after it
        assert "stopped after vae" in capsys.readouterr().err
    assert not (tmp_path / "pieces.safetensors").exists()
    run("pieces", "--stop-after", "bank")
    run("pieces", "--budget-minutes", "0")  # pauses after transformer step 1
    assert "paused at transformer step 1/3" in capsys.readouterr().err
    run("pieces")
    whole, pieces = weights(tmp_path / "whole.safetensors"), weights(tmp_path / "pieces.safetensors")
    assert whole.keys() == pieces.keys()
    assert all(np.array_equal(whole[k].numpy(), pieces[k].numpy()) for k in whole)

    components, metadata = load_tiny(tmp_path / "whole.safetensors")
    record = json.loads((tmp_path / "whole.json").read_text())
    assert record["held_out"] == ["coffee", "chelsea"]
    assert not set(record["photos"]["colour"]) & set(record["held_out"])
    assert json.loads(metadata["pretrain"])["seed"] == 0
    assert components.vae.config.scaling_factor == pytest.approx(record["bank"]["scaling_factor"])
    assert len(record["identity_psnr_db_per_frame"]) == 9
    assert set(record["stage_minutes"]) == {"vae", "bank", "transformer"}
    assert isinstance(components.vae, LinearVideoCodec) == (autoencoder == "codec")
    if autoencoder == "codec":  # the fit is recorded with the codec, its seed and clips
        assert components.vae.config.fit["seed"] == 0 and components.vae.config.fit["clips"] == 16
        assert record["vae"]["progression_round_trip"]["held_out"]["frames_2_to_9"] > 25


def test_pretraining_continues_from_a_shipped_base(tmp_path):
    """--init-from: the file's codec is kept (no fit), its transformer and text encoder train on."""
    from src.models.tiny import load_tiny
    from src.pretrain_tiny import main

    first = tmp_path / "first.safetensors"
    common = [*TINY_RUN, "--record", str(tmp_path / "r.json")]
    main([*common, "--state-dir", str(tmp_path / "a"), "--out", str(first)])
    more = tmp_path / "more.safetensors"
    main([*common, "--init-from", str(first), "--state-dir", str(tmp_path / "b"), "--out", str(more)])
    (a, _), (b, meta) = load_tiny(first), load_tiny(more)
    for name, value in a.vae.state_dict().items():
        assert torch.equal(value, b.vae.state_dict()[name])
    moved = [
        not torch.equal(p, q)
        for p, q in zip(a.transformer.parameters(), b.transformer.parameters(), strict=True)
    ]
    assert any(moved)
    record = json.loads(meta["pretrain"])
    assert record["init_from"]["file"].endswith("first.safetensors") and "vae" not in record.get(
        "stage_minutes", {}
    )


def test_pretraining_refuses_to_continue_with_other_settings(tmp_path):
    from src.pretrain_tiny import main

    common = ["--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "o.safetensors")]
    common += ["--record", str(tmp_path / "r.json"), "--stop-after", "vae"]
    main([*TINY_RUN, *common])
    with pytest.raises(ConfigError, match="other settings.*fit_clips"):
        main([*TINY_RUN, *common, "--fit-clips", "24"])


def test_pretraining_never_trains_on_set5(tmp_path):
    from src.pretrain_tiny import main

    with pytest.raises(ConfigError, match="Set5 is the held-out"):
        main([*TINY_RUN[:-4], "--photos-dir", "../shared/data/set5", "--state-dir", str(tmp_path)])


def test_pretraining_prompt_embeddings_are_the_pipelines():
    """Stage 3 tokenizes once and runs T5 with gradients; the embeddings must equal what the
    diffusers pipeline's own prompt encoder gives the transformer in fine-tuning and sampling."""
    import torch

    from src.models import recipe
    from src.models.tiny import build_tiny_components
    from src.pretrain.families import t5_embeddings, tokenize

    components = build_tiny_components()
    prompts = ["The scene gradually brightens.", "", "Nothing moves. " * 20]  # the last one is truncated
    ids = tokenize(components, prompts)
    ours = t5_embeddings(components, ids)
    with torch.no_grad():
        pipeline = recipe.encode_prompts(
            recipe.i2v_pipeline(components), prompts, components.max_sequence_length, torch.device("cpu")
        )
        assert torch.equal(t5_embeddings(components, ids), pipeline), "same ids, same call"
    # with autograd on, torch takes other kernels: measured max difference 3.8e-6
    assert ours.requires_grad and torch.allclose(ours, pipeline, atol=1e-5, rtol=0)


def test_tiny_wan_pretraining_writes_a_base_the_family_loads(tmp_path):
    """--model tiny_wan: the same three stages with Wan's recipe; the weights file records the
    measured per-channel latent statistics and loads through model=tiny_wan model.weights=<file>."""
    import torch

    from src.pretrain_tiny import main
    from tests.conftest import backbone

    out = tmp_path / "wan.safetensors"
    main(
        [*TINY_RUN, "--model", "tiny_wan", "--state-dir", str(tmp_path / "s"), "--out", str(out)]
        + ["--record", str(tmp_path / "wan.json")]
    )
    record = json.loads((tmp_path / "wan.json").read_text())
    assert len(record["bank"]["latents_mean"]) == 48 and len(record["bank"]["latents_std"]) == 48
    assert record["bank"]["latents_std"] != [1.0] * 48  # measured, not the placeholder
    family = backbone("tiny_wan", f"model.weights={out}")
    components = family.load()
    assert list(components.vae.config.latents_std) == pytest.approx(record["bank"]["latents_std"])
    family.bind(components)
    video = family.generate(torch.rand(1, 3, 64, 112), ["x"], [torch.Generator().manual_seed(0)])
    assert video.shape == (1, 9, 3, 64, 112) and len(record["identity_psnr_db_per_frame"]) == 9


def test_tiny_wan_pretraining_prompt_embeddings_are_the_pipelines():
    import torch

    from src.models import wan
    from src.pretrain.families import tokenize, umt5_embeddings

    components = wan.build_tiny_wan_components()
    prompts = ["The scene gradually brightens.", "", "Nothing moves. " * 20]
    ours = umt5_embeddings(components, tokenize(components, prompts))
    with torch.no_grad():
        theirs = wan.encode_prompts(wan.wan_pipeline(components), prompts, 160, torch.device("cpu"))
    assert ours.requires_grad and torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    assert torch.all(theirs[1, 1:] == 0) and torch.all(ours[1, 1:] == 0)  # "" is one token (EOS)
