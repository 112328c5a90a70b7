"""The end of a pretraining: the weights file (with its record in the metadata) and the record
of the run (data, settings, losses, PSNRs, minutes) written to ``--record``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from src.models.codec import is_codec_config
from src.models.tiny import save_tiny
from src.pretrain.data import GRAY_PHOTOS, VAL_HOLDOUT
from src.pretrain.measurements import identity_psnr, identity_set5
from src.pretrain.state import vae_stats
from src.utils.config import PROJECT_ROOT


def relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def finish(components, state, record, photos, all_photos, held_out, arch, fingerprint, args) -> None:
    arch["vae"].update(vae_stats(components.vae))
    if is_codec_config(arch["vae"]) and "fit" in record.get("vae", {}):
        arch["vae"]["fit"] = record["vae"]["fit"]
    if is_codec_config(arch["vae"]) and args.deblock is not None:
        arch["vae"]["deblock"] = args.deblock
        components.vae.register_to_config(deblock=args.deblock)
    record.update(
        {
            "seed": args.seed,
            "args": {k: relative(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "photos": {
                "colour": sorted(photos),
                "gray_tinted": list(GRAY_PHOTOS),
                "count": len(all_photos),
                "sha256": fingerprint["photos_sha256"],
            },
            "held_out": list(VAL_HOLDOUT),
            "identity_psnr_db_per_frame": identity_psnr(
                components, held_out, arch, args.seed, model=args.model
            ),
            **identity_set5(components, arch, args),
            "minutes": state.data.get("minutes_before", 0.0) + (time.time() - state.started) / 60,
            "torch": torch.__version__,
            "architecture": arch,
        }
    )
    save_tiny(components, args.out, arch, {"pretrain": json.dumps(record)})
    record["file"] = relative(args.out)
    record["megabytes"] = args.out.stat().st_size / 1e6
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    print(
        json.dumps({k: record[k] for k in ("minutes", "identity_psnr_db_per_frame", "megabytes")}, indent=2)
    )
