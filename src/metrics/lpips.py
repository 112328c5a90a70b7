"""LPIPS (Zhang et al. 2018), AlexNet trunk, version 0.1, in plain torch (torchvision is not needed).

The computation is that of richzhang/PerceptualSimilarity's ``LPIPS(net="alex", version="0.1")``:

1. Inputs RGB in [-1, 1] go through the v0.1 scaling layer ``(x - shift) / scale`` with
   shift (-0.030, -0.088, -0.188) and scale (0.458, 0.448, 0.450).
2. The AlexNet convolution trunk (torchvision's ``alexnet().features`` layout) gives five feature maps,
   taken after each of its five ReLUs.
3. Each map is normalised over channels: ``f / (sqrt(sum_c f^2) + 1e-10)``.
4. The squared difference of the two normalised maps goes through a 1x1 convolution without bias
   (the learnt "lin" head of the tap, 1 output channel), then is averaged over space.
5. The five averages are summed: one distance per image pair.

Weights (never bundled with the project; see ``load_lpips``):

- the AlexNet trunk: a torchvision-format state dict with ``features.{0,3,6,8,10}.{weight,bias}``
  (torchvision's ``alexnet-owt-7be5be79.pth`` or a file holding just those keys);
- the five linear heads: LPIPS's ``weights/v0.1/alex.pth`` (keys ``lin{0..4}.model.1.weight``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from src.utils.cli import InputError

log = logging.getLogger(__name__)

ALEXNET_ENV = "PROGRESTORE_ALEXNET_WEIGHTS"
LIN_ENV = "PROGRESTORE_LPIPS_LIN_WEIGHTS"
ALEXNET_HUB_FILE = "alexnet-owt-7be5be79.pth"
CHANNELS = (64, 192, 384, 256, 256)
# Indices in ``features`` of the five ReLUs whose outputs are the LPIPS taps.
TAP_INDICES = (1, 4, 7, 9, 11)
NORM_EPS = 1e-10


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` (same indices, so its state dict keys load as they are)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # 0
        nn.ReLU(),  # 1 -> tap 0
        nn.MaxPool2d(kernel_size=3, stride=2),  # 2
        nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3
        nn.ReLU(),  # 4 -> tap 1
        nn.MaxPool2d(kernel_size=3, stride=2),  # 5
        nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6
        nn.ReLU(),  # 7 -> tap 2
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8
        nn.ReLU(),  # 9 -> tap 3
        nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10
        nn.ReLU(),  # 11 -> tap 4
    )


def normalize_channels(feat_bchw: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Unit L2 norm over channels at each position, ``f / (||f||_2 + eps)`` (LPIPS's normalize_tensor)."""
    return feat_bchw / (torch.sqrt(torch.sum(feat_bchw**2, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS(alex, v0.1) distance; frozen and in eval mode.

    ``forward(a_bchw, b_bchw)`` takes two RGB batches (B, 3, H, W) in **[0, 1]** (they are mapped to
    [-1, 1] inside, the range the LPIPS weights expect) and returns the distances (B,) (0 for identical
    images, larger is more different). H and W should be at least 32 for the AlexNet trunk.
    """

    def __init__(self, alexnet_state: dict[str, torch.Tensor], lin_state: dict[str, torch.Tensor]):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.features = alexnet_features()
        # A full torchvision AlexNet checkpoint also holds the classifier: keep the trunk only.
        trunk = {
            k.removeprefix("features."): v for k, v in alexnet_state.items() if k.startswith("features.")
        }
        if not trunk:
            raise InputError(
                "no AlexNet trunk weights (keys 'features.{0,3,6,8,10}.{weight,bias}') in the state dict"
            )
        self.features.load_state_dict(trunk, strict=True)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        for k, lin in enumerate(self.lins):
            key = f"lin{k}.model.1.weight"
            if key not in lin_state:
                raise InputError(f"LPIPS linear weights lack {key!r} (is this LPIPS v0.1 alex.pth?)")
            lin.weight.data.copy_(lin_state[key].float().view_as(lin.weight))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        # Frozen metric: always behaves as in eval (there is no dropout/batchnorm to toggle anyway).
        return super().train(False)

    def taps(self, x_bchw: torch.Tensor) -> list[torch.Tensor]:
        """The five ReLU outputs of the trunk for an input already in the scaled [-1, 1] space."""
        out = []
        for i, layer in enumerate(self.features):
            x_bchw = layer(x_bchw)
            if i in TAP_INDICES:
                out.append(x_bchw)
        return out

    def forward(self, a_bchw: torch.Tensor, b_bchw: torch.Tensor) -> torch.Tensor:
        if a_bchw.shape != b_bchw.shape or a_bchw.ndim != 4 or a_bchw.shape[1] != 3:
            raise ValueError(f"expected two RGB batches (B, 3, H, W), got {a_bchw.shape} and {b_bchw.shape}")
        dtype = self.shift.dtype
        a = (2 * a_bchw.to(self.shift.device, dtype) - 1 - self.shift) / self.scale
        b = (2 * b_bchw.to(self.shift.device, dtype) - 1 - self.shift) / self.scale
        total = torch.zeros(a.shape[0], dtype=dtype, device=a.device)
        for lin, fa, fb in zip(self.lins, self.taps(a), self.taps(b), strict=True):
            diff = (normalize_channels(fa) - normalize_channels(fb)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


def default_alexnet_path() -> Path:
    """Where training finds the trunk (``metrics.alexnet_weights``' default):
    ``<shared>/weights/lpips/alexnet_features.pth`` when it exists, else torch hub's
    ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` (TORCH_HOME defaults to ~/.cache/torch)."""
    from src.utils.config import shared_dir

    shared = shared_dir() / "weights" / "lpips" / "alexnet_features.pth"
    if shared.is_file():
        return shared
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / ALEXNET_HUB_FILE


def default_lin_path() -> Path | None:
    """``weights/v0.1/alex.pth`` inside the installed ``lpips`` package, found without importing it
    (importing lpips imports torchvision); None if the package is not installed."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "alex.pth"


def resolve_weight_paths(
    alexnet_path: str | os.PathLike | None = None, lin_path: str | os.PathLike | None = None
) -> tuple[Path, Path | None]:
    """Argument, else environment variable, else the default location, for each of the two files."""
    alex = Path(alexnet_path or os.environ.get(ALEXNET_ENV) or default_alexnet_path()).expanduser()
    lin_arg = lin_path or os.environ.get(LIN_ENV)
    lin = Path(lin_arg).expanduser() if lin_arg else default_lin_path()
    return alex, lin


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch file; ValueError naming the file if it cannot be read."""
    try:
        # Safe loading only (the LPIPS heads' legacy pickle reads this way too); a file it rejects
        # is refused, never retried unsafely.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to parse an untrusted file
        raise InputError(
            f"cannot read weights file {path} ({type(err).__name__}): it is damaged or not a plain "
            "state dict of tensors; point to another file"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path} does not hold a state dict")
    return state


def load_lpips(
    alexnet_path: str | os.PathLike | None = None, lin_path: str | os.PathLike | None = None
) -> LPIPS | None:
    """LPIPS(alex, v0.1) from the two weight files, or None (with one warning) if a file is missing.

    Each path: the argument, else the environment variable (``PROGRESTORE_ALEXNET_WEIGHTS``,
    ``PROGRESTORE_LPIPS_LIN_WEIGHTS``), else the default location (torch hub's AlexNet checkpoint;
    the installed ``lpips`` package's ``weights/v0.1/alex.pth``). A file that exists but cannot be
    read raises.
    """
    alex, lin = resolve_weight_paths(alexnet_path, lin_path)
    missing = []
    if not alex.is_file():
        missing.append(
            f"AlexNet trunk weights not found at {alex} (pass alexnet_path / --alexnet, or set "
            f"{ALEXNET_ENV} to a torchvision-format AlexNet state dict such as {ALEXNET_HUB_FILE})"
        )
    if lin is None or not lin.is_file():
        where = str(lin) if lin is not None else "the lpips package (not installed)"
        missing.append(
            f"LPIPS v0.1 linear heads not found at {where} (pass lin_path / --lpips-lin, set {LIN_ENV}, "
            f"or `pip install --no-deps lpips==0.1.4`, whose weights/v0.1/alex.pth is used)"
        )
    if missing:
        message = "LPIPS unavailable: " + "; ".join(missing)
        warnings.warn(message, stacklevel=2)
        return None
    assert lin is not None
    return LPIPS(_load_state(alex), _load_state(lin))
