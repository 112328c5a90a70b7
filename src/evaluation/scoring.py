"""Scores of one image against its clean target, as ``python -m src.eval`` and its video
evaluation report them: PSNR and SSIM (BasicSR conventions, src/metrics/image.py), LPIPS and the
mask-weighted scores of ReLoBlur's blurred regions."""

from __future__ import annotations


def score_image(
    image, clean, mask, lpips_model, crop_border: int, y_channel: bool, ssim_y_channel: bool | None = None
) -> dict:
    """PSNR, SSIM (BasicSR conventions; SSIM on Y when ``ssim_y_channel``, as FoundIR scores it),
    LPIPS (None without weights) and, with a mask, the mask-weighted PSNR/SSIM of one (H, W, 3)
    uint8 image against the clean one."""
    from src.metrics.image import masked_psnr_ssim, psnr, ssim

    scores = {
        "psnr": psnr(image, clean, crop_border, y_channel),
        "ssim": ssim(image, clean, crop_border, y_channel if ssim_y_channel is None else ssim_y_channel),
        "lpips": None,
    }
    if lpips_model is not None:
        import torch

        from src.utils.frames import to_float_tensor

        with torch.no_grad():
            scores["lpips"] = float(
                lpips_model(to_float_tensor(image[None]), to_float_tensor(clean[None]))[0]
            )
    if mask is not None:
        scores["masked_psnr"], scores["masked_ssim"] = masked_psnr_ssim(image, clean, mask)
    return scores
