"""Writing videos (see :mod:`src.video.io`): H.264 at the exact rational frame rate, the source's
audio carried over, and the small synthetic test clip of the tests and benchmarks."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from src.video.reading import _fraction, _reason

log = logging.getLogger(__name__)


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
