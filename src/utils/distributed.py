"""Multi-process helpers: how Lightning's DDP re-launches a Hydra job, and a check that every rank
ends with the same trained weights.

Lightning's ``strategy=ddp`` starts ranks 1..N-1 by re-running the script. Under Hydra it re-runs
``sys.argv`` (lightning.fabric ``_hydra_subprocess_cmd``): in a multirun (``-m a=1,2``) every
child re-runs the *whole sweep*, each job of it in the wrong directory (a known Lightning/Hydra
problem). :func:`use_job_overrides_for_ddp_children` makes the children run *this job*: its own
overrides (Hydra's ``overrides.task``, the sweep values of this job) in run mode, in this job's
output directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys

# torch is imported inside the functions that use it: src.train reads the strategy facts below
# while checking a config, before anything heavy loads.


def secondary_rank() -> bool:
    """True in rank 1..N-1 of a multi-process run (Lightning's DDP children, torchrun, srun): the
    run dir is rank 0's, so these processes neither claim it nor write its run-level files."""
    for variable in ("LOCAL_RANK", "RANK", "SLURM_PROCID"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return True
    return False


def hydra_child_command(local_rank: int) -> tuple[list[str], str]:
    """(command, cwd) of DDP rank ``local_rank``: this Hydra job, once, in its own directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    import __main__

    hydra_cfg = HydraConfig.get()
    if getattr(__main__, "__spec__", None) is not None:
        command = [sys.executable, "-m", __main__.__spec__.name]
    else:  # a script path
        from hydra.utils import to_absolute_path

        command = [sys.executable, to_absolute_path(sys.argv[0])]
    command += [str(o) for o in hydra_cfg.overrides.task]
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        f"hydra.job.name={hydra_cfg.job.name}_ddp_rank{local_rank}",
        "hydra.output_subdir=null",  # rank 0 wrote the job's .hydra/ configs
    ]
    return command, get_original_cwd()


def use_job_overrides_for_ddp_children() -> None:
    """Route Lightning's Hydra child command through :func:`hydra_child_command`."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = hydra_child_command


def _group_exists() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in this run's process group (1 without one)."""
    import torch.distributed as dist

    return dist.get_world_size() if _group_exists() else 1


def gather_objects(value) -> list:
    """``value`` of every rank, in rank order (a collective: every rank calls it); ``[value]`` in
    one process."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, value)
    return everyone


def trainable_digest(module) -> str:
    """sha256 of every trainable tensor's bytes, in name order (bit-identical weights, same digest)."""
    import torch

    digest = hashlib.sha256()
    for name, parameter in sorted(module.named_parameters()):
        if parameter.requires_grad:
            tensor = parameter.detach()
            if hasattr(tensor, "full_tensor"):  # an FSDP2 shard (DTensor): the whole tensor, a collective
                tensor = tensor.full_tensor()
            digest.update(name.encode())
            digest.update(tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def ranks_in_sync(module) -> dict | None:
    """Every rank's trainable digest (a collective: every rank calls it); None in one process."""
    if world_size() == 1:
        return None
    everyone = gather_objects(trainable_digest(module))
    return {"world_size": len(everyone), "trainable_sha256": everyone, "in_sync": len(set(everyone)) == 1}


# set in the launching process by Lightning's DDP launcher (_call_children_scripts)
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def one_job_of_ranks():
    """One Hydra job's worth of DDP: afterwards the process group is closed and the variables
    Lightning's launcher set in this process are as before. Without it the next job of a
    multirun inherits LOCAL_RANK (Lightning then thinks its ranks were started externally and
    waits for a rank 1 that never comes) and a process group whose peers have exited."""
    before = {name: os.environ.get(name) for name in LAUNCHER_VARIABLES}
    try:
        yield
    finally:
        if _group_exists():
            import torch.distributed as dist

            dist.destroy_process_group()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


SHARDED_STRATEGIES = ("ModelParallelStrategy", "FSDPStrategy", "DeepSpeedStrategy")


def strategy_name(trainer_cfg) -> str:
    """The class name of a ``trainer`` config's strategy (``ddp``, a ``_target_`` node, or "")."""
    return _strategy(trainer_cfg)[0]


def _strategy(trainer_cfg) -> tuple[str, object]:
    strategy = trainer_cfg.get("strategy") if hasattr(trainer_cfg, "get") else None
    target = str(strategy.get("_target_", "")) if hasattr(strategy, "get") else str(strategy or "")
    return target.rsplit(".", 1)[-1], strategy


def shards_weights(trainer_cfg) -> bool:
    """Whether a ``trainer`` config's strategy shards training state across ranks (trainer=fsdp,
    fsdp_cpu, deepspeed): then full fine-tuning (lora=none) of a 5B transformer fits."""
    return strategy_name(trainer_cfg) in SHARDED_STRATEGIES


def sharding(trainer_cfg) -> tuple[int, int]:
    """(ranks sharing the transformer's weights, ranks sharing its trainable state) of a trainer
    config, for the memory plan: FSDP and ZeRO-3 shard both, ZeRO-1/2 the trainable state only."""
    name, strategy = _strategy(trainer_cfg)
    if name not in SHARDED_STRATEGIES:
        return 1, 1
    ranks = int(trainer_cfg.get("devices")) * int(trainer_cfg.get("num_nodes", 1) or 1)
    if name == "DeepSpeedStrategy" and int(strategy.get("stage", 2)) < 3:
        return 1, ranks
    return ranks, ranks


def shard_transformer(transformer, blocks, mesh) -> None:
    """FSDP2 (``fully_shard``) on each block, then the whole transformer. Each unit keeps its
    parameters' own dtypes (a frozen bf16 base beside fp32 LoRA; measured: FSDP2 shards such a
    mixed block on CPU/gloo, where FSDP1 cannot flatten it) and reduces gradients in fp32."""
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=None, reduce_dtype=torch.float32)
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(transformer, mesh=mesh, mp_policy=policy)
