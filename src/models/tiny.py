"""The embedded tiny CogVideoX image-to-video model: the real diffusers transformer class
(``CogVideoXTransformer3DModel``), a T5 encoder with the download-free ``ByT5Tokenizer``, and a
frozen autoencoder with CogVideoX's latent geometry (4x spatial, 4x temporal with a causal first
frame, 16 channels), small enough to train on a 2-core CPU.

The autoencoder is the linear latent codec (:mod:`src.models.codec`) by default
(``TINY_ARCHITECTURE``; ``model=tiny``), or a learned tiny ``AutoencoderKLCogVideoX``
(``TINY_LEARNED_VAE_ARCHITECTURE``; ``model=tiny_learned_vae``), the earlier default, whose
reconstructions (23.7 dB on Set5) stayed below the degraded inputs the model must beat.

Its pretrained base (``src/models/pretrained/tiny_cogvideox_i2v.safetensors``, made by
``python -m src.pretrain_tiny``) plays the part of the pretrained video model the paper starts
from: the codec fit (or the VAE training), then the transformer together with the T5 encoder,
trained on identity-preserving clips of still photographs (static or gently moving camera,
exposure ramps, focus pulls), each described in words; see :mod:`src.pretrain_tiny` and
``experiments/tiny_pretrain.json``. One file format holds both families' tiny models
(:func:`save_tiny`, :func:`load_tiny`); the architecture in its metadata says which autoencoder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from src.models.codec import CODEC_GEOMETRY, build_codec, codec_config, is_codec_config
from src.models.family import I2VComponents  # noqa: F401 (the tiny models' components)
from src.utils.cli import InputError, MissingFileError

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_WEIGHTS = PRETRAINED_DIR / "tiny_cogvideox_i2v.safetensors"
LEARNED_VAE_WEIGHTS = PRETRAINED_DIR / "tiny_cogvideox_i2v_learned_vae.safetensors"

# Architecture of the tiny model with its learned VAE (model=tiny_learned_vae). Height/width are the pixel resolution it was pretrained at
# (multiples of vae_scale * patch = 8); frames must be 4k+1 (the VAE compresses time by 4).
TINY_LEARNED_VAE_ARCHITECTURE: dict = {
    "height": 64,
    "width": 112,
    "frames": 9,
    "vae": {
        "down_block_types": ["CogVideoXDownBlock3D"] * 3,
        "up_block_types": ["CogVideoXUpBlock3D"] * 3,
        "block_out_channels": [16, 32, 64],
        "latent_channels": 16,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "temporal_compression_ratio": 4,
        "sample_height": 64,
        "sample_width": 112,
        "scaling_factor": 1.0,  # replaced by 1/std of the pretrained latents (as CogVideoX's 1.15258426)
    },
    "transformer": {
        "num_attention_heads": 4,
        "attention_head_dim": 32,
        "in_channels": 32,  # noisy video latents + first-frame image latents (I2V channel concat)
        "out_channels": 16,
        "time_embed_dim": 128,
        "text_embed_dim": 128,
        "num_layers": 4,
        "sample_width": 28,  # latent width  = 112 / 4
        "sample_height": 16,  # latent height = 64 / 4
        "sample_frames": 9,
        "patch_size": 2,
        "temporal_compression_ratio": 4,
        "max_text_seq_length": 160,
        "use_rotary_positional_embeddings": True,
        "use_learned_positional_embeddings": False,
    },
    "text_encoder": {
        "vocab_size": 384,  # ByT5: 256 bytes + 3 specials + 125 extra ids
        "d_model": 128,
        "d_kv": 32,
        "d_ff": 256,
        "num_layers": 2,
        "num_heads": 4,
        "seed": 0,
    },
    "max_sequence_length": 160,  # prompt tokens (bytes for ByT5); CogVideoX-5B uses 226
    # CogVideoX-5B-I2V's scheduler_config.json
    "scheduler": {
        "_class_name": "CogVideoXDDIMScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": True,
        "set_alpha_to_one": True,
        "snr_shift_scale": 1.0,
        "steps_offset": 0,
        "timestep_spacing": "trailing",
    },
}


def with_codec(architecture: dict, family: str) -> dict:
    """``architecture`` with its VAE replaced by the linear codec of ``family``'s geometry."""
    arch = copy.deepcopy(architecture)
    arch["vae"] = codec_config(**CODEC_GEOMETRY[family])
    return arch


# The default tiny CogVideoX (model=tiny): the same transformer and T5 over the linear codec.
TINY_ARCHITECTURE: dict = with_codec(TINY_LEARNED_VAE_ARCHITECTURE, "tiny")


def build_scheduler(config: dict):
    from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

    classes = {
        "CogVideoXDDIMScheduler": CogVideoXDDIMScheduler,
        "CogVideoXDPMScheduler": CogVideoXDPMScheduler,
    }
    config = dict(config)
    cls = classes[config.pop("_class_name", "CogVideoXDDIMScheduler")]
    return cls.from_config(config)


def assemble_tiny(
    arch: dict, text_encoder_factory, vae_cls, transformer_cls, scheduler, name: str
) -> I2VComponents:
    """Randomly initialised tiny components of any family: the text encoder from its fixed seed
    without touching the global RNG, then the VAE and the transformer from the global RNG (in that
    order), every module in eval mode, the download-free ``ByT5Tokenizer``. A codec config
    (:func:`src.models.codec.is_codec_config`) builds the linear codec (unfitted, no random draw)
    instead of ``vae_cls``."""
    from transformers import ByT5Tokenizer

    text_cfg = dict(arch["text_encoder"])
    seed = text_cfg.pop("seed", 0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        text_encoder = text_encoder_factory(text_cfg)
    vae = build_codec(arch["vae"]) if is_codec_config(arch["vae"]) else vae_cls(**arch["vae"])
    transformer = transformer_cls(**arch["transformer"])
    # eval mode, as diffusers' from_pretrained returns models: T5 has dropout, which in train
    # mode would randomise every prompt embedding (and draw from the global RNG)
    for module in (text_encoder, vae, transformer):
        module.eval()
    return I2VComponents(
        tokenizer=ByT5Tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
        max_sequence_length=int(arch["max_sequence_length"]),
        name=name,
    )


def build_tiny_components(architecture: dict | None = None) -> I2VComponents:
    """Randomly initialised tiny CogVideoX components (the text encoder from its fixed seed)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    arch = copy.deepcopy(architecture or TINY_ARCHITECTURE)
    return assemble_tiny(
        arch,
        lambda cfg: T5EncoderModel(T5Config(**cfg)),
        AutoencoderKLCogVideoX,
        CogVideoXTransformer3DModel,
        build_scheduler(arch["scheduler"]),
        "tiny",
    )


def save_tiny(
    components: I2VComponents, path: Path, architecture: dict, extra_metadata: dict | None = None
) -> None:
    """One safetensors file with the three models' weights (fp16 to stay small; a codec's basis
    in fp32, its few thousand numbers are the whole autoencoder) and, in its metadata, the
    architecture so the file is self-describing."""
    from safetensors.torch import save_file

    tensors = {}
    for prefix, module in (
        ("vae", components.vae),
        ("transformer", components.transformer),
        ("text_encoder", components.text_encoder),
    ):
        dtype = torch.float32 if prefix == "vae" and is_codec_config(architecture["vae"]) else torch.float16
        for key, value in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = value.detach().to(dtype).contiguous()
    metadata = {
        "architecture": json.dumps(architecture),
        **{k: str(v) for k, v in (extra_metadata or {}).items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def _check_weights_file(path: Path) -> None:
    if not path.is_file():
        raise MissingFileError(
            f"tiny model weights {path} are missing; regenerate them with `python -m src.pretrain_tiny` "
            "(about 32 minutes on a 2-core CPU, resumable) or pass model.weights=<file>"
        )


def _unreadable(path: Path, err: Exception) -> InputError:
    return InputError(
        f"tiny model weights {path} cannot be read ({type(err).__name__}): truncated, damaged or not "
        "a tiny-model file; pass model.weights=<file> of python -m src.pretrain_tiny, or drop the override"
    )


def read_tiny_architecture(path: str | Path | None = None) -> dict:
    """The architecture a tiny-model file records in its metadata (header only, no tensors)."""
    from safetensors import safe_open

    path = Path(path) if path else DEFAULT_WEIGHTS
    _check_weights_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return json.loads((handle.metadata() or {})["architecture"])
    except Exception as err:  # noqa: BLE001 - any failure to parse the file: not usable weights
        raise _unreadable(path, err) from None


def load_tiny(path: str | Path | None = None, build=None) -> tuple[I2VComponents, dict]:
    """(components with the pretrained tiny base, the file's metadata). Weights load as fp32.
    ``build`` makes the components of the file's architecture (the tiny CogVideoX's
    :func:`build_tiny_components` by default; the tiny Wan passes its own): one file format."""
    from safetensors import safe_open

    path = Path(path) if path else DEFAULT_WEIGHTS
    _check_weights_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key).float() for key in handle.keys()}
        architecture = json.loads(metadata["architecture"])
    except Exception as err:  # noqa: BLE001 - any failure to parse the file: not usable weights
        raise _unreadable(path, err) from None
    components = (build or build_tiny_components)(architecture)
    for prefix, module in (
        ("vae", components.vae),
        ("transformer", components.transformer),
        ("text_encoder", components.text_encoder),
    ):
        state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        missing, unexpected = module.load_state_dict(state, strict=False)
        # T5's tied/shared embedding appears under two names; anything else missing is an error.
        missing = [k for k in missing if not k.endswith("embed_tokens.weight")]
        if missing or unexpected:
            raise InputError(
                f"{path}: {prefix} weights do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    return components, metadata
