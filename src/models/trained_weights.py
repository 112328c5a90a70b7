"""What training changed, exported and loaded back for a backbone family: a diffusers-format LoRA
(plain ``<Pipeline>.load_lora_weights`` reads it) or, for full fine-tuning (``lora=none``), the
whole transformer (``save_pretrained``). :class:`TrainedWeights` is a base of
:class:`src.models.family.Backbone`; the file formats live in :mod:`src.models.lora`."""

from __future__ import annotations

from pathlib import Path


class TrainedWeights:
    """The export and load methods of :class:`src.models.family.Backbone` (they use its ``name``,
    ``family``, ``source``, ``config``, ``positional_embedding`` and ``pipeline_class``)."""

    def _export_metadata(self, extra: dict | None) -> dict:
        """What an export records beside its weights: the model, geometry and this family's
        positional-embedding choice, then ``extra`` (task, prompt, seed)."""
        return {
            "model": self.name,
            "family": self.family,
            "model_weights": self.source,
            "frames": self.config.frames,
            "height": self.config.height,
            "width": self.config.width,
            "positional_embedding": self.positional_embedding,
            **(extra or {}),
        }

    def export_trained(
        self,
        transformer,
        run_dir: Path,
        lora_cfg: dict,
        extra: dict | None = None,
        state_dict: dict | None = None,
    ) -> Path:
        """The end-of-run export of what training changed: ``<run_dir>/lora`` (a LoRA,
        :meth:`export_lora`) or, for full fine-tuning (lora=none), ``<run_dir>/transformer``
        (:meth:`export_transformer`). Returns the directory written."""
        from src.models.lora import is_full_finetune

        if is_full_finetune(lora_cfg):
            return self.export_transformer(transformer, Path(run_dir) / "transformer", extra, state_dict)
        return self.export_lora(transformer, Path(run_dir) / "lora", lora_cfg, extra, state_dict)

    def export_lora(
        self,
        transformer,
        directory: Path,
        lora_cfg: dict,
        extra: dict | None = None,
        state_dict: dict | None = None,
    ) -> Path:
        """A diffusers-format LoRA export that ``<family pipeline>.load_lora_weights`` reads, with
        the run's settings (and this family's positional-embedding choice) in lora_config.json."""
        from src.models.lora import export_lora

        return export_lora(
            transformer,
            directory,
            lora_cfg["rank"],
            lora_cfg["alpha"],
            list(lora_cfg["target_modules"]),
            extra=self._export_metadata(extra),
            pipeline_class=self.pipeline_class,
            state_dict=state_dict,
        )

    def export_transformer(
        self, transformer, directory: Path, extra: dict | None = None, state_dict: dict | None = None
    ) -> Path:
        """A fully fine-tuned transformer (lora=none): diffusers ``save_pretrained`` (safetensors;
        ``<TransformerClass>.from_pretrained`` reads it) plus finetune_config.json with the
        settings lora_config.json holds for a LoRA (no rank/alpha/target_modules; ``full: true``)."""
        from src.models.lora import export_transformer

        return export_transformer(transformer, directory, self._export_metadata(extra), state_dict)

    def load_transformer(self, transformer, directory: Path) -> dict:
        """A :meth:`export_transformer` directory's weights into ``transformer`` (before
        :meth:`bind`, which applies the positional-embedding policy). Returns finetune_config.json."""
        from src.models.lora import load_exported_transformer

        return load_exported_transformer(transformer, directory)

    def load_lora(self, pipeline, directory: Path) -> dict:
        """An export into a pipeline of this family exactly as training used it (adapter at scale
        1; the export's positional-embedding choice). Returns the export's lora_config.json."""
        from src.models.lora import load_exported_lora

        config = load_exported_lora(pipeline, directory)
        self.apply_exported_policy(pipeline, config)
        return config

    def apply_exported_policy(self, pipeline, export_config: dict) -> None:
        """What an export's lora_config.json says the transformer needs beyond its weights (the
        CogVideoX positional-embedding choice); nothing by default."""
