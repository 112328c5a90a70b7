"""src.video.io: exact frame rates, audio carried over, even sizes, one clear error per bad input."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import numpy as np
import pytest

from src.utils.cli import InputError, MissingFileError
from src.video import io as vio


def _ffmpeg(*args: str) -> None:
    subprocess.run([vio.ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def _stream_seconds(path, kind: str) -> float:
    import av

    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return float(stream.duration * stream.time_base)


def test_ntsc_rate_and_audio_survive_a_write_and_mux(tmp_path):
    clip = vio.make_test_clip(
        tmp_path / "ntsc.mp4", frames=36, width=64, height=48, fps="30000/1001", audio=True
    )
    info = vio.probe_video(clip)
    assert info.fps == Fraction(30000, 1001) and info.frames == 36 and info.has_audio
    silent = tmp_path / "silent.mp4"
    with vio.VideoWriter(silent, info.width, info.height, info.fps) as writer:
        for batch in vio.iter_frames(info, batch=8):
            writer.write(255 - batch)
    record = vio.mux_audio(silent, clip, tmp_path / "out.mp4")
    assert record["audio"] == "copied" and record["audio_codec"] == "aac"
    assert not silent.exists()
    out = vio.probe_video(tmp_path / "out.mp4")
    assert out.fps == Fraction(30000, 1001) and out.as_dict()["fps"] == "30000/1001"
    assert out.frames == 36 and out.has_audio
    assert abs(_stream_seconds(tmp_path / "out.mp4", "video") - 36 * 1001 / 30000) < 1 / 29.97
    assert abs(_stream_seconds(tmp_path / "out.mp4", "audio") - _stream_seconds(clip, "audio")) < 1e-3
    # The frames written are the frames read (inverted), in order, up to H.264 4:2:0 loss (the
    # test texture is per-pixel noise, its worst case: measured 7.9 mean error, vs 58.7 against the
    # next frame).
    original, restored = vio.read_all_frames(clip).astype(int), vio.read_all_frames(tmp_path / "out.mp4")
    same = np.abs((255 - original) - restored).mean(axis=(1, 2, 3))
    shifted = np.abs((255 - original[1:]) - restored[:-1]).mean(axis=(1, 2, 3))
    assert same.mean() < 12 and (same[:-1] < shifted).all()


@pytest.mark.parametrize("rate", ["24", "25", "29.97", "60000/1001"])
def test_frame_rates_are_kept_exactly(tmp_path, rate):
    clip = vio.make_test_clip(tmp_path / "c.mp4", frames=5, fps=rate)
    expected = {"24": Fraction(24), "25": Fraction(25), "29.97": Fraction(30000, 1001)}.get(
        rate, Fraction(60000, 1001)
    )
    assert vio.probe_video(clip).fps == expected


def test_odd_sizes_are_padded_to_even_and_recorded(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 33, 47, 3), dtype=np.uint8)
    with vio.VideoWriter(tmp_path / "odd.mp4", 47, 33, 24) as writer:
        writer.write(frames)
    assert writer.padded_size == (48, 34)
    assert (vio.probe_video(tmp_path / "odd.mp4").width, vio.probe_video(tmp_path / "odd.mp4").height) == (
        48,
        34,
    )


def test_writer_removes_its_file_on_error(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with vio.VideoWriter(path, 64, 48, 24) as writer:
            writer.write(np.zeros((50, 48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert not path.exists()
    with pytest.raises(ValueError, match=r"takes \(B, 48, 64, 3\) uint8"):
        with vio.VideoWriter(path, 64, 48, 24) as writer:
            writer.write(np.zeros((1, 48, 63, 3), np.uint8))
    assert not path.exists()


def test_frames_stream_in_batches_and_one_frame_clips_work(tmp_path):
    info = vio.probe_video(vio.make_test_clip(tmp_path / "c.mp4", frames=20))
    assert [len(b) for b in vio.iter_frames(info, batch=8)] == [8, 8, 4]
    one = vio.probe_video(vio.make_test_clip(tmp_path / "one.mp4", frames=1))
    assert one.frames == 1 and vio.read_all_frames(one.path).shape == (1, 48, 64, 3)


def test_a_folder_of_frames_is_a_video(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(folder / f"f{i:03d}.png")
    (folder / "notes.txt").write_text("ignored")
    info = vio.probe_video(folder)
    assert (info.kind, info.frames, info.width, info.height, info.fps) == ("frames", 4, 30, 20, Fraction(24))
    assert vio.probe_video(folder, fps=29.97).fps == Fraction(30000, 1001)
    frames = vio.read_all_frames(folder)
    assert frames.shape == (4, 20, 30, 3) and frames[3, 0, 0, 0] == 120
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(folder / "f999.png")
    with pytest.raises(InputError, match="every frame of a video must have one size"):
        vio.read_all_frames(folder)


def test_audio_the_mp4_cannot_hold_is_reencoded_never_dropped(tmp_path):
    clip = vio.make_test_clip(tmp_path / "a.mp4", frames=24, audio=True)
    vorbis = tmp_path / "a.mkv"
    _ffmpeg("-i", str(clip), "-c:v", "copy", "-c:a", "libvorbis", str(vorbis))
    info = vio.probe_video(vorbis)
    with vio.VideoWriter(tmp_path / "v.mp4", info.width, info.height, info.fps) as writer:
        for batch in vio.iter_frames(info):
            writer.write(batch)
    record = vio.mux_audio(tmp_path / "v.mp4", vorbis, tmp_path / "out.mp4")
    assert record["audio"] in ("copied", "reencoded")
    assert vio.probe_video(tmp_path / "out.mp4").has_audio


def test_each_bad_input_gets_one_clear_message(tmp_path):
    good = vio.make_test_clip(tmp_path / "good.mp4", frames=60, width=64, height=48, audio=True)
    data = good.read_bytes()
    cases = {}
    (tmp_path / "junk.mp4").write_bytes(b"not a video " * 100)
    cases["junk.mp4"] = "cannot be opened as a video"
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])  # the index (moov) is at the end
    cases["cut.mp4"] = "cannot be opened as a video"
    _ffmpeg("-i", str(good), "-c", "copy", "-movflags", "+faststart", str(tmp_path / "fast.mp4"))
    fast = (tmp_path / "fast.mp4").read_bytes()
    (tmp_path / "cut_fast.mp4").write_bytes(fast[: len(fast) * 6 // 10])  # index first, samples cut
    cases["cut_fast.mp4"] = "is truncated: its index lists 60 frames"
    _ffmpeg("-i", str(good), "-vn", "-c:a", "copy", str(tmp_path / "sound.mp4"))
    cases["sound.mp4"] = r"has no video stream \(it holds: audio\)"
    (tmp_path / "empty").mkdir()
    cases["empty"] = "is a folder with no frames"
    for name, message in cases.items():
        with pytest.raises(InputError, match=message):
            vio.probe_video(tmp_path / name)
    with pytest.raises(MissingFileError, match="does not exist"):
        vio.probe_video(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="above the limit of 3,000"):
        vio.probe_video(good, max_frame_pixels=3000)


def test_a_zero_frame_clip_is_refused(tmp_path):
    import av

    path = tmp_path / "zero.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(InputError, match="no frames"):
        vio.probe_video(path)
