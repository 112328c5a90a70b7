"""Per-frame image metrics of restoration trajectories (PSNR, SSIM via torchmetrics), used by validation."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def frame_psnr_ssim(
    frames_bfchw: torch.Tensor, target_bchw: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """PSNR and SSIM of every frame against the clean target, each (B, F).

    Inputs in [0, 1]; RGB, data range 1, SSIM with the standard 11x11 Gaussian window.
    """
    batch, num_frames = frames_bfchw.shape[:2]
    preds = frames_bfchw.clamp(0, 1).reshape(batch * num_frames, *frames_bfchw.shape[2:]).float()
    target = target_bchw.clamp(0, 1).float().unsqueeze(1).expand_as(frames_bfchw).reshape_as(preds)
    psnr = peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none")
    return psnr.view(batch, num_frames), ssim.view(batch, num_frames)
