"""One home per model: the backbone-family interface (the idea of finetrainers'
``ModelSpecification``, kept small).

A *family* (CogVideoX I2V 1.0/1.5 in :mod:`src.models.cogvideox`, Wan2.2-TI2V in
:mod:`src.models.wan`) is one object, chosen by ``_target_`` in ``conf/model/*.yaml`` and built
with :func:`build_backbone`. It owns everything that differs between families:

- the typed config schema :class:`ModelConfig` (the same keys in every ``conf/model/*.yaml``;
  defaults live in the YAML files, none in code; in :mod:`src.models.model_config`);
- loading, tiny (``model.weights``) or real (``model.path``: a diffusers directory or hub id),
  with one clear error naming the model, where it looked and how to fetch it; the published
  architectures on the meta device (``src.model_report``);
- geometry checks at config time (before any weight loads) and against loaded components;
- the positional-embedding policy (CogVideoX 1.0's learned table);
- clip and prompt encoding, with the encoder cache inside;
- the training loss of a batch, trajectory generation through the family's diffusers pipeline;
- LoRA export and load (plain ``<Pipeline>.load_lora_weights`` reads the export), or, for full
  fine-tuning (``lora=none``, tiny models only), the whole transformer's
  (:mod:`src.models.trained_weights`);
- the figures the memory plan needs (tokens per sample, hidden size, depth).

Users: the LightningModule (only Lightning concerns are left there), the restorer, ``src.eval``,
``src.model_report``, ``src.pretrain`` and the benchmarks.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from src.models.model_config import ModelConfig, validate_model_config
from src.models.trained_weights import TrainedWeights
from src.utils.cli import ConfigError, UserError

log = logging.getLogger(__name__)


def build_backbone(model_cfg: dict) -> Backbone:
    """The family object a model config names with ``_target_`` (e.g.
    ``src.models.cogvideox.CogVideoXI2V``), validated against :class:`ModelConfig`."""
    import hydra

    config = dict(model_cfg)
    target = config.get("_target_")
    if not target:
        raise ConfigError(
            f"model config {config.get('name', '?')} has no _target_ naming its family "
            "(e.g. src.models.cogvideox.CogVideoXI2V or src.models.wan.WanTI2V)"
        )
    try:
        cls = hydra.utils.get_class(str(target))
    except Exception as err:  # noqa: BLE001 - a typo in _target_: one line
        raise ConfigError(f"model._target_={target} cannot be imported ({type(err).__name__})") from None
    if not (isinstance(cls, type) and issubclass(cls, Backbone)):
        raise ConfigError(f"model._target_={target} is not a backbone family (src.models.family.Backbone)")
    return cls(config)


class ModelWeightsMissing(UserError, FileNotFoundError):
    """The real model's weights are not on this machine; the message says where we looked and
    how to fetch them."""


@dataclass
class I2VComponents:
    """The parts of an image-to-video model, as the family's diffusers pipeline takes them."""

    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    transformer: torch.nn.Module
    scheduler: object
    max_sequence_length: int = 226
    name: str = "tiny"


class Backbone(TrainedWeights):
    """The interface every family implements; shared logic (cache, prompts, generators) here.

    Built from a config (:func:`build_backbone`), then ``bind(components)`` to the loaded modules
    (``load()``, or components made elsewhere: a test, the pretraining script). The modules stay
    owned by whoever registers them (the LightningModule); the backbone keeps references.
    """

    family = "base"
    required_subfolders: tuple[str, ...] = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
    published: dict = {}
    vae_decode_gib = 3.0  # memory-plan assumption (see src.model_report), per family
    vae_dtype: str | None = None  # None: the VAE in model.dtype
    report_geometries: tuple[
        tuple[int, int, int], ...
    ] = ()  # (frames, height, width) src.model_report also counts

    def __init__(self, config: dict):
        self.raw = {k: v for k, v in dict(config).items()}
        self.config: ModelConfig = validate_model_config(self.raw)
        self.check_options()
        self.components: I2VComponents | None = None
        self.cache = None
        self.positional_embedding = "none"

    # -- identity -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def is_tiny(self) -> bool:
        return self.config.weights is not None

    @property
    def supports_full_finetune(self) -> bool:
        """Whether ``lora=none`` (every transformer weight trained, fp32 weights + grads + AdamW
        state) fits one device: the tiny models only; a 5B transformer needs its weights and
        optimizer state sharded across GPUs (trainer=fsdp)."""
        return self.is_tiny

    def check_finetune_mode(self, lora_cfg, sharded: bool = False) -> None:
        """Config time: refuse full fine-tuning (lora=none) of a model it does not fit
        (``sharded``: the trainer's strategy shards the weights, so any model is allowed)."""
        from src.models.lora import is_full_finetune

        if is_full_finetune(lora_cfg) and not (self.supports_full_finetune or sharded):
            raise ConfigError(
                f"lora=none (full fine-tuning) of {self.name} does not fit one GPU: shard it with "
                "trainer=fsdp (FSDP2 per transformer block) or trainer=deepspeed, or use LoRA (lora=default / lora=attn_ff), "
                "or a tiny model (model=tiny / model=tiny_wan)"
            )

    @property
    def source(self) -> str:
        """What the base weights are (recorded in LoRA exports and cache fingerprints)."""
        return str(self.config.weights or self.config.path)

    # -- config time (no weights read) ----------------------------------------------------------
    def check_options(self) -> None:
        """Family-specific meaning of the shared keys (e.g. ``shift`` only for flow matching)."""
        c = self.config
        if (c.weights is None) == (c.path is None):
            raise ConfigError(
                f"model {c.name}: set exactly one of model.weights (a tiny model file) and model.path "
                f"(a diffusers directory or hub id); got weights={c.weights}, path={c.path}"
            )
        if not 0.0 <= c.condition_probability <= 1.0:
            raise ConfigError(f"model.condition_probability must be in [0, 1], got {c.condition_probability}")

    def architecture(self) -> dict:
        """{"vae": ..., "transformer": ...} configs without loading weights (published, or the
        tiny file's metadata)."""
        raise NotImplementedError

    def check_config(self) -> None:
        """Everything checkable before a weight loads: geometry against the architecture and,
        for a real model, that its weights are on this machine."""
        arch = self.architecture()
        self.check_geometry(arch["vae"], arch["transformer"])
        if not self.is_tiny:
            self.resolve_weights()

    def check_geometry(self, vae_config, transformer_config) -> None:
        raise NotImplementedError

    def size_multiple(self, vae_config=None, transformer_config=None) -> int:
        """Pixels per token side (VAE spatial factor x transformer patch): heights, widths and
        curriculum crop sizes are multiples of it. From the architecture when not given."""
        raise NotImplementedError

    def check_stage_sizes(self, sizes) -> None:
        """One ConfigError if the model cannot train at an r x r crop of a curriculum stage (the
        family's geometry check at each size, before any weight loads)."""
        arch = self.architecture()
        for size in sizes:
            stage = type(self)({**self.raw, "height": int(size), "width": int(size)})
            try:
                stage.check_geometry(arch["vae"], arch["transformer"])
            except ConfigError as err:
                raise ConfigError(f"curriculum stage {size}x{size}: {err}") from None

    def resolve_weights(self) -> Path:
        """The directory holding the diffusers layout: ``model.path`` itself when it is a
        directory, else a hub id looked up in the local HF cache (downloaded only when
        ``model.download``). Raises :class:`ModelWeightsMissing`."""
        import os

        c = self.config
        repo = self.published.get(c.name, {}).get("repo", c.path)
        hint = (
            f"fetch them on a machine with network access with `huggingface-cli download {repo}` "
            f"(the HF cache is {os.environ.get('HF_HOME', '~/.cache/huggingface')}), or "
            f"`git lfs clone https://huggingface.co/{repo}` and pass model.path=<that dir>; "
            "model.download=true lets this run download it"
        )
        candidate = Path(os.path.expanduser(str(c.path)))
        if candidate.is_dir():
            directory = candidate
        else:
            try:
                from huggingface_hub import snapshot_download

                directory = Path(
                    snapshot_download(str(c.path), revision=c.revision, local_files_only=not c.download)
                )
            except Exception as err:  # offline, not cached, no network, unknown repo: one message
                raise ModelWeightsMissing(
                    f"model {c.name}: weights not found (no directory {candidate}; hub id {c.path!r} not in "
                    f"the local Hugging Face cache ({type(err).__name__})). {hint}"
                ) from None
        missing = [sub for sub in self.required_subfolders if not (directory / sub).is_dir()]
        if missing or not (directory / "model_index.json").is_file():
            raise ModelWeightsMissing(
                f"model {c.name}: {directory} is not a complete diffusers {self.family} directory "
                f"(missing {missing or ['model_index.json']}). {hint}"
            )
        return directory

    # -- loading ----------------------------------------------------------------------------------
    def load(self) -> I2VComponents:
        return self.load_tiny() if self.is_tiny else self.load_pretrained()

    def load_tiny(self) -> I2VComponents:
        raise NotImplementedError

    def load_pretrained(self) -> I2VComponents:
        raise NotImplementedError

    def meta_models(self) -> dict[str, torch.nn.Module]:
        """Transformer, VAE and text encoder without weights: the published architecture on the
        meta device, or the tiny architecture (CPU-sized, randomly initialised)."""
        if self.is_tiny:
            components = self.build_tiny(self.architecture())
            return {k: getattr(components, k) for k in ("transformer", "vae", "text_encoder")}
        return self.build_meta(self.name)

    def build_tiny(self, architecture: dict) -> I2VComponents:
        """Randomly initialised tiny components of ``architecture``."""
        raise NotImplementedError

    def build_meta(self, name: str) -> dict[str, torch.nn.Module]:
        """The published models of ``name`` on the meta device."""
        raise NotImplementedError

    def published_or_local_architecture(self) -> dict:
        """A real model's {"vae", "transformer"} configs: published, or those of its directory."""
        import json

        if self.name in self.published:
            return self.published[self.name]
        directory = self.resolve_weights()
        return {
            part: json.loads((directory / part / "config.json").read_text())
            for part in ("vae", "transformer")
        }

    def components_of(self, pipeline) -> I2VComponents:
        """The loaded pipeline's parts, with ``model.vae_slicing`` / ``model.vae_tiling`` applied."""
        if self.config.vae_slicing:
            pipeline.vae.enable_slicing()
        if self.config.vae_tiling:
            pipeline.vae.enable_tiling()
        return I2VComponents(
            tokenizer=pipeline.tokenizer,
            text_encoder=pipeline.text_encoder,
            vae=pipeline.vae,
            transformer=pipeline.transformer,
            scheduler=pipeline.scheduler,
            max_sequence_length=int(self.config.max_sequence_length),
            name=self.name,
        )

    # -- binding to loaded modules ----------------------------------------------------------------
    def bind(self, components: I2VComponents, cache: bool = True) -> Backbone:
        """Use these modules from now on: checks the geometry against them, applies the
        positional-embedding policy and opens the encoder cache (training; inference passes
        ``cache=False`` and encodes its prompts directly)."""
        self.components = components
        self.check_geometry(dict(components.vae.config), dict(components.transformer.config))
        self.positional_embedding = self.configure_transformer(
            components.transformer, self.config.positional_embedding
        )
        self.cache = self._open_cache() if cache else None
        self.__dict__.pop("pipeline", None)
        return self

    def configure_transformer(self, transformer, mode: str) -> str:
        """The family's positional-embedding policy on a transformer; the effective mode."""
        return "rotary-only"

    @property
    def geometry(self) -> tuple[int, int, int]:
        return self.config.frames, self.config.height, self.config.width

    @property
    def device(self) -> torch.device:
        return self.components.transformer.device

    @functools.cached_property
    def pipeline(self):
        """The family's diffusers pipeline over the bound components (references, no copy):
        it follows them across devices and weight loads."""
        return self.make_pipeline(self.components)

    def make_pipeline(self, components):
        raise NotImplementedError

    @property
    def pipeline_class(self):
        raise NotImplementedError

    # -- encoder cache ----------------------------------------------------------------------------
    def cache_fingerprint(self) -> dict:
        from src.data.latent_cache import cache_fingerprint, file_hash

        c = self.components
        frames, height, width = self.geometry
        fingerprint = cache_fingerprint(
            {**self.raw, "path": self.source}, c.vae.config, c.text_encoder.config, height, width, frames
        )
        fingerprint["family"] = self.family
        if self.is_tiny and Path(self.config.weights).is_file():  # a regenerated base: new entries
            fingerprint["weights_sha256"] = file_hash(self.config.weights)
        return fingerprint

    def _open_cache(self):
        from src.data.latent_cache import LatentCache

        if not self.config.cache.enabled:
            return None
        return LatentCache(self.config.cache.dir, self.cache_fingerprint())

    def encode_posterior(self, video_bcfhw: torch.Tensor):
        from src.models import recipe

        return recipe.encode_posterior(self.components.vae, video_bcfhw)

    def clip_posteriors(self, video_bcfhw: torch.Tensor, clip_ids: list[str] | None):
        """(mean, logvar) of each clip, (B, C', F', h, w), from the cache when it has them, else
        from the VAE (and stored). Without a cache or clip ids (synthetic clips): the VAE."""
        if self.cache is None or clip_ids is None:
            return self.encode_posterior(video_bcfhw)
        means, logvars = [], []
        for index, clip_id in enumerate(clip_ids):
            entry = self.cache.load_posterior(clip_id)
            if entry is None:
                mean, logvar = self.encode_posterior(video_bcfhw[index : index + 1])
                entry = (mean[0], logvar[0])
                self.cache.save_posterior(clip_id, *entry)
            means.append(entry[0])
            logvars.append(entry[1])
        device, dtype = video_bcfhw.device, video_bcfhw.dtype
        return torch.stack(means).to(device, dtype), torch.stack(logvars).to(device, dtype)

    def encode_prompts(self, prompts: list[str], device) -> torch.Tensor:
        """Text embeddings (B, L, D) through the pipeline's own prompt encoder."""
        raise NotImplementedError

    @torch.no_grad()
    def prompt_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """(B, L, D) on the transformer's device, through the cache when there is one. The text
        encoder runs wherever it is (on the CPU once offloaded)."""
        device = self.device
        if self.cache is None:
            return self.encode_prompts(prompts, device)
        rows = []
        for prompt in prompts:
            embeds = self.cache.load_prompt(prompt)
            if embeds is None:
                embeds = self.encode_prompts([prompt], self.components.text_encoder.device)[0]
                self.cache.save_prompt(prompt, embeds)
            rows.append(embeds)
        return torch.stack(rows).to(device)

    def offload_text_encoder(self) -> None:
        """Move the text encoder to the CPU once every prompt is cached (frees ~9.5 GB for T5-XXL
        and ~11 GB for UMT5-XXL in bf16)."""
        encoder = self.components.text_encoder
        if encoder.device.type != "cpu":
            encoder.to("cpu")
            log.info("text encoder offloaded to the CPU: prompts come from the cache")

    # -- training and sampling --------------------------------------------------------------------
    def training_loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """The family's training loss of a batch (frames (B, F, C, H, W) in [0, 1], prompts,
        optional clip ids); every random draw from ``generator``."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self,
        first_frames_bchw: torch.Tensor,
        prompts: list[str],
        generators: list[torch.Generator],
        use_cache: bool = True,
    ) -> torch.Tensor:
        """(B, F, C, H, W) in [0, 1] from first frames (B, C, H, W) in [0, 1] with the family's
        diffusers pipeline and ``model.sampling``: the one trajectory generation shared by
        validation, the restorer, src.eval and the benchmarks. With a cache the pipeline gets
        cached prompt embeddings (the text encoder may be offloaded)."""
        guidance = float(self.config.sampling.guidance_scale)
        embeds = negative = None
        if use_cache and self.cache is not None:
            dtype = self.components.transformer.dtype
            embeds = self.prompt_embeddings(list(prompts)).to(dtype)
            if guidance > 1.0:
                negative = self.prompt_embeddings([""] * len(prompts)).to(dtype)
        frames, height, width = self.geometry
        return self.sample(
            first_frames_bchw.to(self.device),
            list(prompts),
            generators,
            height,
            width,
            frames,
            int(self.config.sampling.num_inference_steps),
            guidance,
            int(self.config.max_sequence_length),
            embeds,
            negative,
        )

    def sample(self, *args, **kwargs) -> torch.Tensor:
        """The family's pipeline call (a pure recipe function); see :meth:`generate`."""
        raise NotImplementedError

    # -- adapters: export_trained, export_lora, export_transformer, load_transformer, load_lora and
    # apply_exported_policy come from TrainedWeights (src/models/trained_weights.py)

    # -- memory plan ------------------------------------------------------------------------------
    block_list = "transformer_blocks"  # the transformer's ModuleList of blocks (FSDP's units)

    def blocks(self, transformer) -> torch.nn.ModuleList:
        """The transformer blocks, each one FSDP unit under trainer=fsdp."""
        return getattr(transformer, self.block_list)

    def tokens_per_sample(
        self, vae_config: dict, transformer_config: dict, frames: int, height: int, width: int
    ) -> dict:
        """Latent frames, token grid, video + text tokens of one sample."""
        raise NotImplementedError

    def transformer_shape(self, transformer_config: dict) -> tuple[int, int]:
        """(hidden size, number of blocks) of the transformer."""
        raise NotImplementedError
