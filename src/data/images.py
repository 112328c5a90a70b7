"""Clean source images: folders of photographs (DIV2K style) or the colour photographs bundled
with scikit-image, loaded robustly and fitted to the clip size.

Fitting: centre-crop to the output aspect ratio (W/H), then resize to (W, H) (antialiased
bicubic when shrinking, bicubic when enlarging). Nothing is letterboxed or stretched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from src.utils.cli import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

# The colour photographs that ship inside the scikit-image wheel (no download), with scene
# captions written by us for the scene-adaptive prompt mode.
BUNDLED_PHOTOS: dict[str, str] = {
    "astronaut": "a smiling astronaut in an orange flight suit beside an American flag and a space shuttle model",
    "chelsea": "a close-up of a tabby cat with green eyes and long white whiskers",
    "coffee": "a cup of espresso on a red saucer with a spoon on a wooden table",
    "rocket": "a rocket on its launch pad between lightning towers under a deep blue evening sky",
    "hubble_deep_field": "a deep field of distant galaxies and stars scattered across black space",
    "retina": "a fundus photograph of a human retina with branching red blood vessels",
    "immunohistochemistry": "a microscope slide of tissue stained brown and blue",
    "motorcycle": "a red motorcycle parked in a garage in front of shelves and cardboard boxes",
}

# Bundled photographs that scikit-image exposes under another loader name.
_BUNDLED_LOADERS = {"motorcycle": lambda data: data.stereo_motorcycle()[0]}


class SourceError(InputError):
    """A source image that cannot be used; the message says why."""


@dataclass(frozen=True)
class Source:
    """One clean image: ``key`` names it in metadata and clip names; ``path`` is None for bundled."""

    key: str
    path: Path | None = None

    @property
    def clip_stem(self) -> str:
        return self.key.replace("/", "__").replace(" ", "_")


def bundled_sources() -> list[Source]:
    return [Source(key=name) for name in BUNDLED_PHOTOS]


def list_sources(source_dir: str | Path | None) -> tuple[list[Source], list[tuple[str, str]]]:
    """(image sources sorted by relative path, [(file, reason)] of files that were ignored).

    ``None`` means the bundled photographs. Raises :class:`SourceError` for a missing or empty
    directory, before any work starts.
    """
    if source_dir is None:
        return bundled_sources(), []
    root = Path(source_dir).expanduser()
    if not root.exists():
        raise SourceError(f"source_dir {root} does not exist")
    if not root.is_dir():
        raise SourceError(f"source_dir {root} is not a directory")
    sources, ignored = [], []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        relative = path.relative_to(root).as_posix()
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            sources.append(Source(key=str(Path(relative).with_suffix("")), path=path))
        else:
            ignored.append((relative, f"not an image file extension ({path.suffix or 'none'})"))
    keys = [s.key for s in sources]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise SourceError(
            f"several files in {root} share a name apart from the extension: {duplicates[:5]}; "
            "rename them so every clip name is unique"
        )
    if not sources:
        raise SourceError(f"source_dir {root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return sources, ignored


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any decoded image array -> (H, W, 3) uint8 RGB.

    Grayscale is replicated, alpha is composited over white (transparent regions would otherwise
    turn black), 16-bit and float images are rescaled, not clipped.
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise SourceError(f"unsupported image layout {array.shape}")
    if array.dtype == np.uint8 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.dtype == np.uint8:
        data = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        data = array.astype(np.float32) / 65535.0
    elif array.dtype in (np.int32, np.uint32):
        # PIL's 'I' mode holds 16-bit PNGs as int32 values in [0, 65535].
        data = array.astype(np.float32) / (65535.0 if array.max() > 255 else 255.0)
    elif np.issubdtype(array.dtype, np.floating):
        data = array.astype(np.float32)
    else:
        raise SourceError(f"unsupported pixel type {array.dtype}")
    channels = data.shape[2]
    if channels in (2, 4):
        color, alpha = data[..., :-1], data[..., -1:]
        data = color * alpha + (1.0 - alpha)
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    return np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8)


def load_image(source: Source) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a source; raises :class:`SourceError` with the reason."""
    if source.path is None:
        import skimage.data

        if source.key not in BUNDLED_PHOTOS:
            raise SourceError(f"unknown bundled photograph {source.key!r}")
        loader = _BUNDLED_LOADERS.get(source.key, lambda data: getattr(data, source.key)())
        return to_rgb_uint8(loader(skimage.data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source.path) as image:
                image.load()
                if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                    array = np.array(image, dtype=np.uint16)
                elif image.mode == "F":  # 32-bit float pixels hold 0..255 like 8-bit ones
                    array = np.clip(np.asarray(image, dtype=np.float32) / 255.0, 0.0, 1.0)
                elif image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                    array = np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))
                else:
                    array = np.asarray(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise SourceError(f"not a readable image ({type(err).__name__})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise SourceError(f"corrupt or truncated image ({err})") from None
    return to_rgb_uint8(array)


def center_crop_box(height: int, width: int, out_height: int, out_width: int) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) of the largest centred crop with the output aspect."""
    target_aspect = out_width / out_height
    if width / height > target_aspect:
        crop_h, crop_w = height, max(1, round(height * target_aspect))
    else:
        crop_h, crop_w = max(1, round(width / target_aspect)), width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def fit_to_output(image: np.ndarray, out_height: int, out_width: int) -> tuple[np.ndarray, dict]:
    """Centre-crop to the output aspect and resize to (out_height, out_width).

    Returns ``(frame (H, W, 3) uint8, info)`` where info records the crop and whether the image
    had to be enlarged (smaller than the output).
    """
    height, width = image.shape[:2]
    top, left, crop_h, crop_w = center_crop_box(height, width, out_height, out_width)
    cropped = image[top : top + crop_h, left : left + crop_w]
    info = {
        "source_size": [width, height],
        "crop_box": [left, top, crop_w, crop_h],
        "upscaled": bool(crop_w < out_width or crop_h < out_height),
    }
    if (crop_h, crop_w) == (out_height, out_width):
        return np.ascontiguousarray(cropped), info
    # PIL's bicubic filter widens its support when shrinking (antialiasing), like MATLAB imresize.
    resized = Image.fromarray(np.ascontiguousarray(cropped)).resize(
        (out_width, out_height), Image.Resampling.BICUBIC
    )
    return np.asarray(resized), info
