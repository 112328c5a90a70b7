"""The training order of every data source: one endless stream of global sample positions.

Position ``p`` = 0, 1, 2, ... counts the training samples that *all* ranks have drawn so far.
An epoch that starts at position ``s`` gives rank ``r`` of ``W`` its batch ``b`` as positions
``s + (b * W + r) * B + [0, B)`` (``B`` the batch size): each rank a contiguous block (one batch,
one curriculum step), the ranks together every position exactly once, and every batch full.

A position becomes a dataset index by :meth:`StreamSampler.index`: itself for sources that make
a sample from its number (synthetic clips, V-Bridge pair crops: a pure function of (seed,
number)), or for a fixed dataset (built clips) the ``p mod n``-th entry of the ``p div n``-th
seeded permutation, so every pass is a new shuffle and a resumed run replays none.

Where the stream stands is a number of samples: :class:`StreamState` puts it in every Lightning
checkpoint (the data module's ``state_dict``), so a resume continues at the very next sample,
mid-epoch or not, with the same or another number of ranks. The same state carries the corrupt
clips skipped so far: they are reported by the batches that met them (in whichever worker or
rank), collected on every rank and gathered across ranks for ``run_summary.json``.
"""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data.distributed import DistributedSampler

from src.utils.seeding import stable_seed


class StreamSampler(DistributedSampler):
    """This rank's share of the stream from ``start`` on, one epoch long. A DistributedSampler,
    so that Lightning keeps it under DDP instead of wrapping it in one of its own."""

    def __init__(
        self, length: int, batch_size: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1
    ):
        super().__init__(range(max(1, length)), num_replicas=world_size, rank=rank, shuffle=False, seed=seed)
        self.length, self.batch_size, self.shuffle = int(length), int(batch_size), bool(shuffle)
        self.stream_seed, self.start = int(seed), 0
        # ceil: an epoch covers every sample at least once; the last batch runs into the next pass
        self.batches = max(1, math.ceil(self.length / (self.batch_size * self.num_replicas)))
        self._order: tuple[int, np.ndarray | None] = (-1, None)  # (pass, its permutation)

    def index(self, position: int) -> int:
        if not self.shuffle:
            return int(position)
        rounds, offset = divmod(int(position), self.length)
        if self._order[0] != rounds:  # one pass's permutation at a time (passes come in order)
            rng = np.random.default_rng(stable_seed(self.stream_seed, "order", rounds))
            self._order = (rounds, rng.permutation(self.length))
        return int(self._order[1][offset])

    def positions(self) -> list[int]:
        """This rank's stream positions of the epoch that starts at ``start``."""
        block, world = self.batch_size, self.num_replicas
        return [
            self.start + (b * world + self.rank) * block + i
            for b in range(self.batches)
            for i in range(block)
        ]

    def __iter__(self):
        # read at the first draw (after on_train_epoch_start / on_train_start moved ``start``)
        for position in self.positions():
            yield self.index(position)

    def __len__(self) -> int:
        return self.batches * self.batch_size


class StreamState:
    """The stream's position (samples drawn by all ranks) and the corrupt clips met so far."""

    def __init__(self):
        self.restored_samples: int | None = None  # from a checkpoint
        self.restored_at_batch: int | None = None  # this rank's batch counter when it was restored
        self.skipped: set[str] = set()

    def samples(self, batches: int, batch_size: int, world_size: int) -> int:
        """Samples drawn after ``batches`` batches of each rank (Lightning's restored counter)."""
        if self.restored_samples is None:  # a fresh run, or a checkpoint from before this state
            return int(batches) * int(batch_size) * int(world_size)
        if self.restored_at_batch is None:
            self.restored_at_batch = int(batches)
        return self.restored_samples + (int(batches) - self.restored_at_batch) * int(batch_size) * int(
            world_size
        )

    def state_dict(self, samples: int) -> dict:
        return {"stream_samples": int(samples), "skipped_clips": sorted(self.skipped)}

    def load_state_dict(self, state: dict) -> None:
        if "stream_samples" in state:
            self.restored_samples, self.restored_at_batch = int(state["stream_samples"]), None
        self.skipped |= set(state.get("skipped_clips", []))

    def record(self, batch) -> None:
        if isinstance(batch, dict):
            self.skipped |= set(batch.get("skipped") or [])

    def gather(self) -> None:
        """Union of every rank's skipped clips (a collective: every rank calls it)."""
        from src.utils.distributed import gather_objects

        for names in gather_objects(sorted(self.skipped)):
            self.skipped |= set(names or [])


class StreamingTrainData:
    """Mixin of the LightningDataModules: the training loader draws from the stream; the
    position and the skipped clips live in checkpoints. Needs ``train_set``, ``batch_size`` and
    ``seed``; ``_stream_shuffle`` says whether the dataset is fixed (shuffled by pass)."""

    _stream_shuffle = False

    def _stream(self) -> StreamState:
        if not hasattr(self, "_stream_state"):
            self._stream_state = StreamState()
        return self._stream_state

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def train_sampler(self) -> StreamSampler:
        rank, world = self._world()
        sampler = StreamSampler(
            len(self.train_set), self.batch_size, self.seed, self._stream_shuffle, rank, world
        )
        sampler.start = getattr(self, "_stream_start", 0)
        self._train_sampler = sampler
        if hasattr(self.train_set, "world_size"):  # curriculum steps count every rank's batches
            self.train_set.world_size = world
        return sampler

    def set_batches_done(self, batches: int, world_size: int = 1) -> None:
        """Continue the stream after ``batches`` training batches of each of ``world_size``
        ranks (or at the checkpoint's position, after a resume)."""
        self._stream_start = self._stream().samples(batches, self.batch_size, world_size)
        if getattr(self, "_train_sampler", None) is not None:
            self._train_sampler.start = self._stream_start

    def state_dict(self) -> dict:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return self._stream().state_dict(getattr(self, "_stream_start", 0))
        batches = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        return self._stream().state_dict(self._stream().samples(batches, self.batch_size, trainer.world_size))

    def load_state_dict(self, state: dict) -> None:
        self._stream().load_state_dict(state)

    def record_skipped(self, batch) -> None:
        self._stream().record(batch)

    def gather_skipped(self) -> None:
        self._stream().gather()

    def stream_skipped(self) -> list[str]:
        return sorted(self._stream().skipped)
