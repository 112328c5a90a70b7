"""The training stream (src/data/stream.py): global positions across ranks, a new seeded order
every pass over a fixed dataset, and a position saved in checkpoints so resumes replay nothing."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from src.data.stream import StreamSampler
from src.models.module import ProgressiveI2VModule

from .conftest import TASK_CFGS, datamodule_kwargs


def test_fixed_dataset_passes_are_permutations_each_different_and_split_across_ranks():
    length, batch, world = 10, 2, 2
    samplers = [StreamSampler(length, batch, 7, True, rank, world) for rank in range(world)]
    assert len(samplers[0]) == 2 * 3  # ceil(10 / (2 x 2)) = 3 full batches per rank
    drawn = []
    for epoch in range(4):
        for sampler in samplers:
            sampler.start = epoch * sampler.batches * batch * world
        drawn += [(p, s.index(p)) for s in samplers for p in s.positions()]
    positions = [p for p, _ in sorted(drawn)]
    assert positions == list(range(len(drawn))), "the ranks together draw every position once"
    order = [i for _, i in sorted(drawn)]
    passes = [sorted(order[k * length : (k + 1) * length]) for k in range(len(order) // length)]
    assert all(p == list(range(length)) for p in passes), "every pass visits every clip once"
    orders = [tuple(samplers[0].index(p) for p in range(k * length, (k + 1) * length)) for k in range(3)]
    assert len(set(orders)) == 3, "each pass its own order"
    again = StreamSampler(length, batch, 7, True)
    assert [again.index(p) for p in range(30)] == [samplers[1].index(p) for p in range(30)], "seeded"


class _Recorder(L.LightningModule):
    """The real module's stream hooks around one parameter: records the clip indices it trains on."""

    on_train_start = ProgressiveI2VModule.on_train_start
    on_train_epoch_start = ProgressiveI2VModule.on_train_epoch_start
    on_train_batch_start = ProgressiveI2VModule.on_train_batch_start
    on_train_end = ProgressiveI2VModule.on_train_end
    _sync_clip_numbering = ProgressiveI2VModule._sync_clip_numbering
    _datamodule_call = ProgressiveI2VModule._datamodule_call

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        self.seen += batch["index"].tolist()
        return (self.weight - batch["frames"].mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(datamodule, max_steps, tmp_path, ckpt_path=None):
    recorder = _Recorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(recorder, datamodule=datamodule, ckpt_path=ckpt_path)
    return recorder, trainer


@pytest.fixture(scope="module")
def built_dataset(tmp_path_factory):
    from src.data.builder import BuildSpec, build_dataset

    out = tmp_path_factory.mktemp("stream") / "ds"
    spec = BuildSpec(task="lowlight", out_dir=out, width=224, height=128, clips_per_image=1)
    build_dataset(spec, TASK_CFGS["lowlight"], "uniform", num_workers=0, progress=False)
    return out


@pytest.mark.parametrize("stop", [3, 4])  # at an epoch end and in the middle of an epoch
def test_resumed_dataset_run_continues_the_shuffle_instead_of_replaying_epoch_0(
    built_dataset, tmp_path, stop
):
    from src.data.datamodule import ProgressionDataModule

    kwargs = datamodule_kwargs(
        "lowlight", "uniform", source="dataset", dataset_dir=str(built_dataset), batch_size=2, seed=5
    )
    straight, _ = _fit(ProgressionDataModule(**kwargs), 10, tmp_path / "a")
    first, trainer = _fit(ProgressionDataModule(**kwargs), stop, tmp_path / "b")
    checkpoint = tmp_path / "stop.ckpt"
    trainer.save_checkpoint(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["ProgressionDataModule"]
    assert state["stream_samples"] == stop * 2, "the data module's position is in the checkpoint"
    resumed, _ = _fit(ProgressionDataModule(**kwargs), 10, tmp_path / "c", ckpt_path=checkpoint)
    assert first.seen + resumed.seen == straight.seen
    module = ProgressionDataModule(**kwargs)
    module.setup()
    n = len(module.train_set)
    assert sorted(straight.seen[:n]) == list(range(n)) and straight.seen[:n] != straight.seen[n : 2 * n]


def test_corrupt_clips_read_in_worker_processes_are_counted(built_dataset, tmp_path):
    """A clip that fails to decode inside a DataLoader worker reaches run_summary.json's count
    (a list kept in the worker's copy of the dataset never came back: 0 with num_workers > 0)."""
    import shutil

    from src.data.datamodule import ProgressionDataModule

    root = tmp_path / "ds"
    shutil.copytree(built_dataset, root)
    kwargs = datamodule_kwargs("lowlight", "uniform", source="dataset", dataset_dir=str(root), batch_size=2)
    module = ProgressionDataModule(**kwargs)
    module.setup()
    broken = module.train_set.entries[-1]["video"]
    (root / broken).write_bytes(b"\x00" * 64)
    datamodule = ProgressionDataModule(**{**kwargs, "num_workers": 2})
    recorder, trainer = _fit(datamodule, 2 * len(module.train_set), tmp_path / "w")
    skipped = datamodule.skipped_clips()
    assert len(skipped) == 1 and skipped[0].startswith(broken), skipped
    assert len(module.train_set) - 1 not in recorder.seen and 0 in recorder.seen
    trainer.save_checkpoint(tmp_path / "w.ckpt")
    state = torch.load(tmp_path / "w.ckpt", map_location="cpu", weights_only=False)["ProgressionDataModule"]
    assert state["skipped_clips"] == datamodule.skipped_clips(), "a resumed run keeps the count"


def test_a_restored_position_counts_samples_so_another_world_size_continues_at_the_next_one():
    """The checkpoint says how many samples all ranks drew (not this rank's batches): a 2-rank run
    stopped after 3 batches of 2 per rank (12 samples) resumed on 1 rank starts at sample 12."""
    from src.data.datamodule import ProgressionDataModule

    module = ProgressionDataModule(**datamodule_kwargs("sr", "uniform", val_source_dir=None, batch_size=2))
    module.setup()
    module.load_state_dict({"stream_samples": 12, "skipped_clips": ["a.mp4: bad"]})
    module.set_batches_done(3, 1)  # Lightning's restored counter: 3 batches of this (new) rank
    assert next(iter(module.train_sampler())) == 12
    module.set_batches_done(5, 1)  # two batches later, one rank of batch 2
    assert module.train_sampler().start == 12 + 2 * 2
    assert module.skipped_clips() == ["a.mp4: bad"]
    assert module.state_dict()["stream_samples"] == 16
