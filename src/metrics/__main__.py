"""PSNR, SSIM and LPIPS of one image pair, as one JSON object on stdout.

    python -m src.metrics A.png B.png [--crop-border N] [--y-channel] [--alexnet PATH] [--lpips-lin PATH]

Images are read with PIL and converted to 8-bit RGB. PSNR/SSIM follow ``src.metrics.image`` (BasicSR's
conventions); LPIPS is LPIPS(alex, v0.1) from ``src.metrics.lpips`` on the RGB images (after the same
border crop; never on Y), or null with a warning on stderr when its weight files are missing. A PSNR
of null means identical images (infinite PSNR; JSON has no infinity). Errors (missing file, unreadable
image, different sizes, unreadable weights) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from src.utils.cli import ArgumentParser, UserError, report_user_error

EXIT_USAGE = 2


class CliError(UserError):
    """A user-facing error: printed as one line, exit status 2."""


def read_rgb(path: str) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB."""
    from src.data.images import Source, SourceError, load_image

    p = Path(path)
    if not p.exists():
        raise CliError(f"file not found: {path}")
    if not p.is_file():
        raise CliError(f"not a file: {path}")
    try:  # the one image convention of every tool (16-bit, palette, CMYK, alpha, grayscale)
        return load_image(Source(key=p.stem, path=p))
    except SourceError as err:
        raise CliError(f"cannot read image {path}: {err}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m src.metrics",
        description="PSNR / SSIM (BasicSR conventions) and LPIPS(alex, v0.1) of two images, as JSON.",
    )
    parser.add_argument("a", help="first image (e.g. the restored one)")
    parser.add_argument("b", help="second image (e.g. the ground truth)")
    parser.add_argument("--crop-border", type=int, default=0, help="pixels removed on each side (default 0)")
    parser.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on BT.601 luma Y instead of RGB")
    parser.add_argument(
        "--alexnet",
        help="AlexNet trunk weights (else $PROGRESTORE_ALEXNET_WEIGHTS, else where training finds them: "
        "<shared>/weights/lpips/alexnet_features.pth, else torch hub)",
    )
    parser.add_argument(
        "--lpips-lin",
        help="LPIPS v0.1 alex linear heads (else $PROGRESTORE_LPIPS_LIN_WEIGHTS, lpips package)",
    )
    args = parser.parse_args(argv)
    if args.crop_border < 0:
        parser.error(f"--crop-border must be >= 0, got {args.crop_border}")
    return args


def compute_lpips(
    a: np.ndarray, b: np.ndarray, alexnet: str | None, lin: str | None
) -> tuple[float | None, dict]:
    """LPIPS of two uint8 (H, W, 3) images and a description of what was used (or why it is null)."""
    import torch

    from src.metrics.lpips import load_lpips, resolve_weight_paths
    from src.utils.frames import to_float_tensor

    alex_path, lin_path = resolve_weight_paths(alexnet, lin)
    info = {"net": "alex", "version": "0.1", "input": "RGB [0, 1] mapped to [-1, 1]"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = load_lpips(alex_path, lin_path)
        except Exception as err:  # a weight file that exists but cannot be used
            raise CliError(f"cannot load LPIPS weights ({alex_path}, {lin_path}): {err!s}") from None
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if model is None:
        info["unavailable"] = "; ".join(str(w.message) for w in caught) or "weights missing"
        return None, info
    info.update(alexnet_weights=str(alex_path), lin_weights=str(lin_path))

    try:
        with torch.no_grad():
            value = float(model(to_float_tensor(a[None]), to_float_tensor(b[None]))[0])
    except RuntimeError as err:  # images too small for the AlexNet trunk's strides and pools
        print(f"warning: LPIPS not computed for {a.shape[1]}x{a.shape[0]} images: {err}", file=sys.stderr)
        info["unavailable"] = f"image too small for the AlexNet trunk ({a.shape[1]}x{a.shape[0]})"
        return None, info
    return value, info


def run(argv: list[str] | None = None) -> dict:
    from src.metrics.image import conventions, psnr, ssim

    args = parse_args(argv)
    a, b = read_rgb(args.a), read_rgb(args.b)
    if a.shape != b.shape:
        raise CliError(
            f"image sizes differ: {args.a} is {a.shape[1]}x{a.shape[0]}, {args.b} is {b.shape[1]}x{b.shape[0]}"
        )
    crop = args.crop_border
    if min(a.shape[:2]) - 2 * crop < 11:
        raise CliError(
            f"images of {a.shape[1]}x{a.shape[0]} are too small for SSIM after --crop-border {crop}"
        )
    p = psnr(a, b, crop_border=crop, y_channel=args.y_channel)
    s = ssim(a, b, crop_border=crop, y_channel=args.y_channel)
    a_c, b_c = (a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]) if crop else (a, b)
    lp, lpips_info = compute_lpips(a_c, b_c, args.alexnet, args.lpips_lin)
    conv = conventions(crop_border=crop, y_channel=args.y_channel, quantize=True)
    conv["psnr_null"] = "identical images (infinite PSNR)"
    conv["lpips"] = {**lpips_info, "crop_border": crop, "channels": "RGB"}
    return {
        "psnr": p if math.isfinite(p) else None,
        "ssim": s,
        "lpips": lp,
        "conventions": conv,
        "images": {"a": args.a, "b": args.b, "height": a.shape[0], "width": a.shape[1]},
    }


def main(argv: list[str] | None = None) -> int:
    try:
        result = run(argv)
    except Exception as err:  # the one user-error policy (src/utils/cli.py); bugs keep their traceback
        if report_user_error(err) is None:
            raise
        return EXIT_USAGE
    print(json.dumps(result, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
