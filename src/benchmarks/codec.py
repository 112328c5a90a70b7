"""Benchmark of the tiny models' autoencoders (`make bench-codec`).

    python -m src.benchmarks.codec [--steps 25]

For the tiny CogVideoX (4x4 x 4 frames -> 16 channels) and the tiny Wan2.2 (8x8 x 4 -> 48):

1. the shipped linear codec against the learned tiny VAE it replaced: round-trip PSNR of
   progression clips of the held-out Set5 photographs (sr, deblur, lowlight at the paper's
   schedules): frames 2-9, frame 1, the clean last frame, the worst clip, the largest per-frame
   mean-colour error;
2. the fit: a refit from the recorded seed and clip count (its minutes, and that it gives the
   shipped basis);
3. block edges: static trajectories sampled by the shipped base from each Set5 photo (the
   pretraining's identity measurement), decoded with the codec's ``deblock`` filter at several
   strengths: PSNR and LPIPS per frame against the still photo, and :func:`blockiness` (1 = no
   grid; the clean photos' own value is listed).

Writes experiments/benchmarks/codec.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from src.benchmarks.codec_measure import OUT, bench_family, load_lpips, markdown
from src.benchmarks.common import machine_info


def main(argv=None) -> None:
    from src.data.images import list_sources, load_image
    from src.pretrain.data import set5_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=25, help="sampling steps of the static trajectories")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    set5 = {s.key: load_image(s) for s in list_sources(set5_dir())[0]}
    lpips = load_lpips()
    records = {}
    for name in ("tiny", "tiny_wan"):
        records[name] = bench_family(name, set5, args.steps, lpips)
        print(f"{name}: {json.dumps(records[name]['round_trip_set5']['codec'])}")
    machine = machine_info()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec.json").write_text(json.dumps({"machine": machine, **records}, indent=2) + "\n")
    (args.out / "codec.md").write_text(markdown(records, machine))
    print(markdown(records, machine))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
