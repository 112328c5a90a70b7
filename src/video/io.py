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

Reading lives in :mod:`src.video.reading`, writing and audio in :mod:`src.video.writing`; import
them from here.
"""

from __future__ import annotations

from src.video.reading import (
    DEFAULT_FOLDER_FPS,
    MAX_FRAME_PIXELS,
    VIDEO_SUFFIXES,
    VideoInfo,
    is_video_file,
    iter_frames,
    probe_video,
    read_all_frames,
)
from src.video.writing import VideoWriter, ffmpeg_exe, make_test_clip, mux_audio

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "MAX_FRAME_PIXELS",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoWriter",
    "ffmpeg_exe",
    "is_video_file",
    "iter_frames",
    "make_test_clip",
    "mux_audio",
    "probe_video",
    "read_all_frames",
]
