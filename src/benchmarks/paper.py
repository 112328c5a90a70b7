"""The paper in miniature (`make bench-paper`): its Fig. 2 and its prompt comparison on CPU, with
error bars; then the LoRA rank.

    python -m src.benchmarks.paper [--sweeps paper_miniature rank_sweep] [--seeds 0 1 2] [--threads N]

Two sweeps, each a Hydra multirun preset (``conf/experiment/<sweep>.yaml``):

- ``paper_miniature``: the default run (``python -m src.train``) of each task x prompt mode
  (uniform, adaptive) x seed;
- ``rank_sweep``: LoRA rank 4 / 16 / 64 x seed, low light, adaptive prompts (its rank-16 jobs
  are the ``paper_miniature`` jobs of the same seed, not trained twice).

Each job runs as ``python -m src.train -m experiment=<sweep> <its overrides>`` (a multirun of one
job in ``outputs/bench_paper/<sweep>/<job>/job``; the preset names the W&B group), then
``python -m src.eval ckpt=<job> data=synthetic seed=<seed>`` on the held-out Set5 photographs
(the seed draws the evaluation's degradations and sampling noise too). The job's record (per
image and frame PSNR / SSIM / LPIPS, the degraded input, the classical baseline, minutes) is
written to ``experiments/benchmarks/paper_runs/<sweep>/<job>.record.json`` and committed: a
rerun, in this session or on a fresh clone, skips every job that has a record made on the
current tiny base (its sha256 is in the record), so the bench continues where it stopped, and a
new base reruns everything. Seeds can run side by side in separate processes
(``--seeds 0`` and ``--seeds 1 2`` with ``--threads 1`` on 2 cores).

Then :mod:`src.analysis.sweep` summarises each sweep (per-frame means with 95 % bootstrap
intervals over images x seeds, the last frame against the input and the baseline, paired
sign-flip tests at matched (image, seed) units) into ``experiments/benchmarks/<sweep>.{md,json}``
and the figure ``<sweep>.png`` (``python -m src.report --sweep`` gives the same offline from a
sweep directory). ``paper_miniature.md`` ends with a probe of the shipped base alone
(``prompt_probe.json``, :func:`prompt_probe`): does it keep a still scene as well when the
prompt carries the photo's scene caption, and better than with another photo's caption?
"""

from __future__ import annotations

import argparse

from src.benchmarks.paper_jobs import OUT, SEEDS, SWEEPS, jobs, recorded, run_job, shared_job, write_summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweeps", nargs="+", choices=tuple(SWEEPS), default=list(SWEEPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS of each job (default: inherited)"
    )
    parser.add_argument("--summarize-only", action="store_true", help="no training: tables from the records")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after training this many jobs")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    trained = 0
    for sweep in args.sweeps:
        for overrides in jobs(sweep, tuple(args.seeds)):
            if args.summarize_only:
                break
            fresh = recorded(sweep, overrides) is None
            if fresh and args.max_jobs is not None and trained >= args.max_jobs:
                break
            run_job(sweep, overrides, args.threads)
            trained += int(fresh and shared_job(sweep, overrides) is None)
        summary = write_summary(sweep)
        if summary:
            print(f"{sweep}: {summary['jobs']} of {summary['jobs_expected']} jobs -> {OUT / (sweep + '.md')}")


if __name__ == "__main__":
    main()
