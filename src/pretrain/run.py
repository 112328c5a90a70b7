"""One pretraining from its options: the photos, the resumable state (its fingerprint, resume or
``--init-from``), the stages not done yet, and the finished base with its record."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

from src.data.images import Source, load_image
from src.data.latent_cache import file_hash
from src.models.codec import is_codec_config
from src.models.tiny import load_tiny
from src.pretrain.data import VAL_HOLDOUT, gray_photos, training_photos
from src.pretrain.families import FAMILY
from src.pretrain.options import RESULT_ARGS, PretrainOptions
from src.pretrain.record import finish, relative
from src.pretrain.stages import STAGES, run_stages
from src.pretrain.state import Paused, State, training_architecture, vae_stats
from src.utils.cli import ConfigError, MissingFileError
from src.utils.config import PROJECT_ROOT
from src.utils.seeding import stable_seed


def pretrain(args: PretrainOptions) -> None:
    """Run (or resume) the pretraining ``args`` describe; see :mod:`src.pretrain_tiny`."""
    if args.threads:
        torch.set_num_threads(args.threads)
    photos_dir = None if args.photos_dir.lower() == "none" else Path(args.photos_dir).expanduser()
    if photos_dir is not None and not photos_dir.is_dir():
        raise MissingFileError(
            f"--photos-dir {photos_dir} does not exist: point it at the McMaster photographs "
            "(../shared/data/mcmaster or $PROGRESTORE_SHARED/data/mcmaster), or pass --photos-dir none"
        )
    photos = training_photos(photos_dir)
    all_photos = {**photos, **gray_photos()}
    family = FAMILY[args.model]
    arch = json.loads(json.dumps(family.architecture(args.autoencoder)))
    init = None
    if args.init_from is not None:  # its architecture (and fitted autoencoder) replace the default
        init, init_metadata = load_tiny(args.init_from, build=family.load_build)
        arch = json.loads(init_metadata["architecture"])
        if is_codec_config(arch["vae"]) != (args.autoencoder == "codec"):
            raise ConfigError(
                f"--init-from {args.init_from} has another autoencoder than --autoencoder {args.autoencoder}"
            )
    data_digest = hashlib.sha256()
    for key in sorted(all_photos):
        data_digest.update(key.encode() + all_photos[key].tobytes())
    fingerprint = {
        **{name: getattr(args, name) for name in RESULT_ARGS},
        "architecture": training_architecture(arch),
        "photos_sha256": data_digest.hexdigest(),
        "init_sha256": None if args.init_from is None else file_hash(args.init_from),
    }
    name = family.state_name(args.seed, args.autoencoder)
    if args.init_from is not None:
        name += f"_from_{fingerprint['init_sha256'][:12]}"
    state_dir = args.state_dir or PROJECT_ROOT / "outputs" / "pretrain_tiny" / name
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    state = State(state_dir, fingerprint, args.checkpoint_minutes, args.budget_minutes)
    # the initial weights come from the seed too (a fresh process's torch seed is random)
    with torch.random.fork_rng():
        torch.manual_seed(stable_seed(args.seed, "pretrain", "init"))
        components = family.build(arch)
    if init is not None:
        for name in ("vae", "transformer", "text_encoder"):
            getattr(components, name).load_state_dict(getattr(init, name).state_dict())
        components.vae.register_to_config(**vae_stats(init.vae))
        state.data["done"] = state.data["done"] or ["vae"]  # the autoencoder comes with the file
        state.data["record"].setdefault(
            "init_from", {"file": relative(args.init_from), "sha256": fingerprint["init_sha256"]}
        )
    if state.load():
        state.restore_models(components)
        print(
            f"resuming {state.path}: done {state.data['done']}, at {state.data.get('current') and {k: v for k, v in state.data['current'].items() if k in ('stage', 'step')}}",
            file=sys.stderr,
        )
    record = state.data["record"]
    held_out = {key: load_image(Source(key)) for key in VAL_HOLDOUT}
    try:
        run_stages(components, state, record, photos, all_photos, held_out, arch, args)
    except Paused as where:
        print(
            f"paused at {where} after {args.budget_minutes} min; state in {state.path}; "
            "rerun the same command to continue",
            file=sys.stderr,
        )
        return
    if args.stop_after and args.stop_after != STAGES[-1]:
        return
    finish(components, state, record, photos, all_photos, held_out, arch, fingerprint, args)
