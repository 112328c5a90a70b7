"""Video files and folders of frames: probe, stream, write, carry audio over (PyAV, FFmpeg).

The one home of the video I/O rules every video path uses (src.restore, src.eval data=video,
src.demo, the benchmarks):

* ``probe_video`` checks an input before any model loads and raises one clear
  :class:`~src.utils.cli.InputError` (or ``MissingFileError``) per bad input: missing, damaged or
  truncated, no video stream, no frames, frames above ``MAX_FRAME_PIXELS``, an empty folder.
* ``iter_frames`` streams (B, H, W, 3) uint8 batches, so memory does not grow with the clip.
* ``VideoWriter`` writes H.264 (yuv420p) at the exact rational frame rate: frame ``i`` has
  ``pts = i`` in a time base of ``1/fps``, so 30000/1001 stays 30000/1001 (not 30). 4:2:0 needs
  even sizes: odd widths/heights are padded by one edge-replicated row/column (recorded as
  ``padded_size``). A writer that fails deletes its partial file.
* ``mux_audio`` copies the source's audio stream packet for packet (no re-encode); only when the
  output container cannot hold that codec it is re-encoded to AAC, and the record says so. Audio
  is never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.utils.cli import InputError, MissingFileError

log = logging.getLogger(__name__)

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


class VideoWriter:
    """Write (B, H, W, 3) uint8 batches as H.264 at the exact frame rate ``fps`` (a Fraction).

    A context manager: on success the file is finished; on an error it is deleted, so no
    half-written video is left looking complete."""

    def __init__(self, path, width: int, height: int, fps, crf: int = 18, codec: str = "libx264"):
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.fps = _fraction(fps, "fps")
        self.crf, self.codec = int(crf), codec
        even = (self.width + self.width % 2, self.height + self.height % 2)
        self.padded_size = even if even != (self.width, self.height) else None
        self.frames = 0
        self._container = None

    def __enter__(self) -> VideoWriter:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height = self.padded_size or (self.width, self.height)
        stream.pix_fmt = "yuv420p"
        # Frames carry pts = index in 1/fps. Keep that time base here: the muxer replaces the
        # stream's own time_base after the first packet (mp4: 1/12288 at 24 fps), and frames
        # stamped with the replaced one collapse to pts 0 (measured: mux fails at frame 41).
        self._time_base = Fraction(self.fps.denominator, self.fps.numerator)
        stream.time_base = self._time_base
        stream.codec_context.time_base = self._time_base
        stream.options = {"crf": str(self.crf), "preset": "medium"}
        self._stream = stream
        return self

    def write(self, frames_bhwc: np.ndarray) -> None:
        import av

        frames_bhwc = np.asarray(frames_bhwc)
        if frames_bhwc.ndim == 3:
            frames_bhwc = frames_bhwc[None]
        if frames_bhwc.shape[1:] != (self.height, self.width, 3) or frames_bhwc.dtype != np.uint8:
            raise ValueError(
                f"VideoWriter({self.path.name}) takes (B, {self.height}, {self.width}, 3) uint8, "
                f"got {frames_bhwc.shape} {frames_bhwc.dtype}"
            )
        if self.padded_size:
            pad_h, pad_w = self.padded_size[1] - self.height, self.padded_size[0] - self.width
            frames_bhwc = np.pad(frames_bhwc, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for image in frames_bhwc:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            frame.time_base = self._time_base
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self.frames += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
            if exc_type is not None:
                self.path.unlink(missing_ok=True)


def mux_audio(video_path, source_path, out_path) -> dict:
    """``out_path``: the video stream of ``video_path`` with the audio stream of ``source_path``.

    Audio packets are copied unchanged; a codec the output container cannot hold is re-encoded
    to AAC. Without audio in the source the video is moved to ``out_path``. Returns
    ``{"audio": "none" | "copied" | "reencoded", "audio_codec": ..., "audio_note": ...}``."""
    import av

    video_path, out_path = Path(video_path), Path(out_path)
    source = Path(source_path)
    has_audio = False
    if source.is_file():
        try:
            with av.open(str(source)) as probe:
                has_audio = bool(probe.streams.audio)
        except av.error.FFmpegError:
            has_audio = False
    if not has_audio:
        video_path.replace(out_path)
        return {"audio": "none", "audio_codec": None, "audio_note": "the input has no audio stream"}
    try:
        codec = _mux(video_path, source, out_path, reencode=False)
        record = {"audio": "copied", "audio_codec": codec, "audio_note": "copied packet for packet"}
    except (av.error.FFmpegError, ValueError) as err:
        out_path.unlink(missing_ok=True)
        log.warning("audio cannot be copied into %s (%s); re-encoding it to AAC", out_path.name, _reason(err))
        codec = _mux(video_path, source, out_path, reencode=True)
        record = {
            "audio": "reencoded",
            "audio_codec": "aac",
            "audio_note": f"the source's {codec} audio does not fit {out_path.suffix}; re-encoded to AAC",
        }
    video_path.unlink(missing_ok=True)
    return record


def _mux(video_path: Path, source: Path, out_path: Path, reencode: bool) -> str:
    import av

    try:
        with (
            av.open(str(video_path)) as video_in,
            av.open(str(source)) as audio_in,
            av.open(str(out_path), mode="w") as out,
        ):
            video_stream = video_in.streams.video[0]
            audio_stream = audio_in.streams.audio[0]
            codec = audio_stream.codec_context.name
            v_out = out.add_stream_from_template(video_stream)
            if reencode:
                a_out = out.add_stream("aac", rate=audio_stream.codec_context.sample_rate or 48000)
            else:
                a_out = out.add_stream_from_template(audio_stream)
            # The source's first video frame is time 0 of the output: shift the audio with it.
            v_src = audio_in.streams.video[0] if audio_in.streams.video else None
            offset_s = float(v_src.start_time * v_src.time_base) if v_src and v_src.start_time else 0.0
            for packet in video_in.demux(video_stream):
                if packet.dts is None:
                    continue
                packet.stream = v_out
                out.mux(packet)
            shift = round(offset_s / audio_stream.time_base) if audio_stream.time_base else 0
            if reencode:
                for frame in audio_in.decode(audio_stream):
                    frame.pts = None
                    for packet in a_out.encode(frame):
                        out.mux(packet)
                for packet in a_out.encode():
                    out.mux(packet)
            else:
                for packet in audio_in.demux(audio_stream):
                    if packet.dts is None:
                        continue
                    packet.pts = None if packet.pts is None else packet.pts - shift
                    packet.dts = packet.dts - shift
                    packet.stream = a_out
                    out.mux(packet)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return codec


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg ships (no system ffmpeg is assumed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_test_clip(
    path, frames: int = 24, width: int = 64, height: int = 48, fps="24", audio: bool = False, seed: int = 0
) -> Path:
    """A small synthetic clip (a textured pattern panning right), with a 440 Hz AAC tone over the
    clip's duration when ``audio``; for tests and benchmarks. Deterministic given ``seed``."""
    import av

    path = Path(path)
    rate = _fraction(fps, "fps")
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(height, width * 2 + frames, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:height, 0 : width * 2 + frames]
    texture = (
        (texture.astype(np.int32) + 64 * np.sin(xs / 5.0)[..., None] + 2 * ys[..., None]) % 256
    ).astype(np.uint8)
    target = path if not audio else path.with_name(f".{path.stem}.video{path.suffix}")
    with VideoWriter(target, width, height, rate, crf=12) as writer:
        for i in range(frames):
            writer.write(texture[:, i : i + width][None])
    if not audio:
        return path
    sample_rate = 44100
    tone_path = path.with_name(f".{path.stem}.audio.m4a")
    with av.open(str(tone_path), mode="w") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        samples = int(round(frames / float(rate) * sample_rate))
        t = np.arange(samples) / sample_rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        chunk = 1024
        for start in range(0, samples, chunk):
            part = wave[start : start + chunk][None]
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    try:
        _mux(target, tone_path, path, reencode=False)
    finally:
        target.unlink(missing_ok=True)
        tone_path.unlink(missing_ok=True)
    return path
