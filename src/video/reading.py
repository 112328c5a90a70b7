"""Reading videos (see :mod:`src.video.io`): probe a video file or a folder of frames before any
model loads (one clear error per bad input), stream its frames in batches, or read a short clip
whole."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.utils.cli import InputError, MissingFileError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# 8K UHD. A frame above it is refused before decoding (one 8K RGB frame is ~100 MB; restoring
# it tile by tile on CPU would take hours); raise it with max_frame_pixels=... if you mean it.
MAX_FRAME_PIXELS = 7680 * 4320
# The frame rate of a folder of frames when none is given (fps=...).
DEFAULT_FOLDER_FPS = Fraction(24)


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a video input holds. ``kind`` is ``file`` or ``frames`` (a folder of images)."""

    path: Path
    kind: str
    width: int
    height: int
    frames: int
    fps: Fraction
    has_audio: bool = False
    audio_codec: str | None = None
    codec: str | None = None
    frame_files: tuple[Path, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.fps)

    def as_dict(self) -> dict:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "duration_s": round(self.duration_s, 6),
            "has_audio": self.has_audio,
            "audio_codec": self.audio_codec,
            "codec": self.codec,
        }


def _fraction(value, what: str) -> Fraction:
    """A frame rate from 24, 29.97, "30000/1001" or a Fraction; 29.97 means 30000/1001."""
    try:
        rate = Fraction(str(value)) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{what}={value} is not a frame rate (e.g. 24, 25, 30000/1001)") from None
    if rate <= 0:
        raise InputError(f"{what}={value} must be positive")
    for ntsc in (24, 30, 60):  # the NTSC rates written as decimals
        if abs(float(rate) - ntsc * 1000 / 1001) < 0.006:
            return Fraction(ntsc * 1000, 1001)
    return rate.limit_denominator(1001)


def _check_size(path: Path, width: int, height: int, max_frame_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InputError(
            f"{path}: the video stream has no frame size ({width}x{height}); the file is damaged"
        )
    if width * height > max_frame_pixels:
        raise InputError(
            f"{path}: frames are {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{max_frame_pixels:,}; downscale the video first (e.g. ffmpeg -vf scale=1920:-2) "
            "or raise max_frame_pixels=..."
        )


def probe_video(path: str | Path, fps=None, max_frame_pixels: int = MAX_FRAME_PIXELS) -> VideoInfo:
    """Check the video at ``path`` (a file or a folder of frames) and say what it holds.

    The frame count of a file is counted from its packets (a container's own count is often
    missing or wrong), and the first frame is decoded, so a damaged file fails here, before any
    model loads. ``fps`` sets the rate of a folder of frames (default 24) and overrides a file's.
    """
    import av

    path = Path(str(path)).expanduser()
    if not path.exists():
        raise MissingFileError(f"input={path} does not exist")
    if path.is_dir():
        return _probe_folder(path, fps, max_frame_pixels)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise InputError(
            f"{path} cannot be opened as a video ({_reason(err)}); the file is damaged, truncated or not a video"
        ) from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            if not kinds:
                raise InputError(f"{path} holds no frames (no stream at all): a zero-frame or empty video")
            raise InputError(f"{path} has no video stream (it holds: {', '.join(kinds)})")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_size(path, width, height, max_frame_pixels)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if fps is not None:
            rate = _fraction(fps, "fps")
        elif not rate:
            raise InputError(f"{path} does not say its frame rate; give it with fps=...")
        else:
            rate = _fraction(rate, "the file's frame rate")
        audio = container.streams.audio[0] if container.streams.audio else None
        codec = stream.codec_context.name
        promised = int(stream.frames or 0)  # the container's count (mp4: from its index)
        frames = 0
        first_error = None
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    frames += 1
                elif packet.size and packet.dts is not None:
                    frames += 1
        except av.error.FFmpegError as err:
            first_error = err
    if frames == 0:
        raise InputError(f"{path} has a video stream with no frames")
    _decode_first(path, max_frame_pixels)
    if first_error is not None:
        raise InputError(f"{path} is damaged after {frames} frames ({_reason(first_error)})")
    if promised > frames:
        raise InputError(
            f"{path} is truncated: its index lists {promised} frames but only {frames} are in the file"
        )
    return VideoInfo(
        path=path,
        kind="file",
        width=width,
        height=height,
        frames=frames,
        fps=rate,
        has_audio=audio is not None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        codec=codec,
    )


def _reason(err: BaseException) -> str:
    return " ".join(str(getattr(err, "strerror", None) or err).split())


def _decode_first(path: Path, max_frame_pixels: int) -> None:
    import av

    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                return
    except av.error.FFmpegError as err:
        raise InputError(
            f"{path}: its first frame cannot be decoded ({_reason(err)}); the file is damaged"
        ) from None
    raise InputError(f"{path}: no frame of its video stream can be decoded; the file is damaged or truncated")


def _probe_folder(path: Path, fps, max_frame_pixels: int) -> VideoInfo:
    from PIL import Image, UnidentifiedImageError

    from src.data.images import IMAGE_EXTENSIONS

    files = tuple(
        p
        for p in sorted(path.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise InputError(
            f"input={path} is a folder with no frames (image files: {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{files[0]} (the first frame of {path}) cannot be read: {_reason(err)}") from None
    _check_size(path, width, height, max_frame_pixels)
    rate = _fraction(fps if fps is not None else DEFAULT_FOLDER_FPS, "fps")
    return VideoInfo(
        path=path, kind="frames", width=width, height=height, frames=len(files), fps=rate, frame_files=files
    )


def iter_frames(info: VideoInfo, batch: int = 8):
    """Yield (B, H, W, 3) uint8 RGB batches of the video, in order (the last may be shorter).
    A frame that cannot be decoded, or a folder frame of another size, raises InputError."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    pending: list[np.ndarray] = []
    for frame in _frames(info):
        if frame.shape[:2] != (info.height, info.width):
            raise InputError(
                f"{info.path}: a frame is {frame.shape[1]}x{frame.shape[0]}, the first is "
                f"{info.width}x{info.height}; every frame of a video must have one size"
            )
        pending.append(frame)
        if len(pending) == batch:
            yield np.stack(pending)
            pending = []
    if pending:
        yield np.stack(pending)


def _frames(info: VideoInfo):
    if info.kind == "frames":
        from src.data.images import Source, load_image

        for file in info.frame_files:
            yield load_image(Source(key=file.stem, path=file))
        return
    import av

    decoded = 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                decoded += 1
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as err:
        raise InputError(f"{info.path} is damaged after {decoded} frames ({_reason(err)})") from None
    if decoded == 0:
        raise InputError(f"{info.path}: no frame could be decoded")


def read_all_frames(path: str | Path, fps=None, max_frame_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray:
    """(N, H, W, 3) uint8: every frame (for short evaluation clips; restoring streams instead)."""
    info = probe_video(path, fps=fps, max_frame_pixels=max_frame_pixels)
    return np.concatenate(list(iter_frames(info, batch=64)))
