"""Training on several processes or machines: torchrun + DistributedDataParallel, one loop for 1 or N.

    torchrun --standalone --nproc_per_node 2 -m rnnkit.cli train imdb --data PATH --out runs/imdb --threads 1

torchrun starts N copies of the command and tells each one, through its
environment, who it is: WORLD_SIZE (processes in the job), RANK (this
process, 0..WORLD_SIZE-1), LOCAL_RANK / LOCAL_WORLD_SIZE (the same on this
machine) and MASTER_ADDR / MASTER_PORT (where the processes meet). `setup`
reads them, joins the process group (gloo on the CPU, nccl for --device cuda)
and returns a `Group`; the `Trainer` asks it, and nothing else, about the
other processes:

    wrap(model)              DistributedDataParallel around the model: gradients are averaged
                             over the ranks during backward, so every rank makes the same update
    shard(batches)           this rank's equal share of the epoch's batches
    agree_step(loss, signal) every rank learns every rank's loss and stop signal before the update
    sum_counts(sums)         the epoch's example-weighted sums over all ranks
    on_main(fn, ...)         fn runs on rank 0 only (validation, bundle, history, plots, checkpoint
                             file) and its result, or its failure, reaches every rank
    all_gather(obj)          one object from every rank (per-rank RNG and carried state for checkpoints)

Without torchrun (WORLD_SIZE unset or 1) `setup` returns `SINGLE`, whose
methods do nothing and import nothing (the numpy engine needs no torch), so a
single process runs exactly what it ran before.

Every decision is taken the same way on every rank: validation metrics come
from rank 0, so the best epoch and early stopping agree; a non-finite loss or
a SIGINT/SIGTERM on any rank is known to all ranks in the same step, so they
all stop together, after one checkpoint, and no rank is left waiting in a
collective for a rank that has gone. Objects that travel between ranks go
through torch's object collectives, in memory, between the processes of one
job; nothing read from disk is ever unpickled.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from rnnkit.errors import ConfigError, TrainingError

NUMPY_ENGINE_ALONE = ("the numpy engine trains in one process; WORLD_SIZE={world} says this command was started "
                      "by torchrun (or another launcher) as one of {world} processes. Run it as a plain command "
                      "(or with torchrun --nproc_per_node 1), or train with --engine torch")


@dataclass(frozen=True)
class Launch:
    """What the launcher (torchrun) told this process through its environment."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1


def launch_from_env(environ: dict | None = None) -> Launch:
    """The Launch described by WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE (all optional; default one process)."""
    env = os.environ if environ is None else environ

    def number(name: str, default: int) -> int:
        raw = env.get(name, "")
        if raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number; torchrun sets it for each process, "
                              f"so start the command with torchrun or unset {name}") from None

    world = number("WORLD_SIZE", 1)
    rank = number("RANK", 0)
    local_rank = number("LOCAL_RANK", rank)
    local_world = number("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} WORLD_SIZE={world}: the rank must be in 0..WORLD_SIZE-1; "
                          "let torchrun set them")
    if local_world < 1 or not 0 <= local_rank < local_world:
        raise ConfigError(f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_world}: the local rank must be in "
                          "0..LOCAL_WORLD_SIZE-1; let torchrun set them")
    return Launch(world, rank, local_rank, local_world)


def resolve_device(name: str):
    """The torch.device for --device `name` ("cpu", "cuda" or "cuda:N"), or a ConfigError naming the fix.

    Under torchrun, "cuda" means the GPU of this process's LOCAL_RANK (one GPU per
    process), and "cuda:N" is refused when several processes share the machine.
    """
    try:
        import torch
    except ImportError:
        raise ConfigError("the torch engine needs PyTorch: pip install torch==2.13.0 (or use --engine numpy)") from None

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(f"--device {name}: rnnkit trains on cpu or cuda (cuda:N); use one of those")
    if not torch.cuda.is_available():
        why = ("this torch was built without CUDA (a CPU-only wheel)" if torch.version.cuda is None
               else "no CUDA GPU is visible (check the driver, nvidia-smi and CUDA_VISIBLE_DEVICES)")
        raise ConfigError(f"--device {name} asks for a GPU, but {why}; train with --device cpu, or install a "
                          "CUDA build of torch on a machine with a GPU")
    count, launch = torch.cuda.device_count(), launch_from_env()
    if device.index is None:
        index = launch.local_rank if launch.world_size > 1 else torch.cuda.current_device()
    elif launch.world_size > 1 and launch.local_world_size > 1:
        raise ConfigError(f"--device {name}: {launch.local_world_size} processes on this machine cannot share one "
                          "GPU; give --device cuda and each process takes the GPU of its LOCAL_RANK")
    else:
        index = device.index
    if index >= count:
        raise ConfigError(f"--device {name}: this process needs GPU {index}, but {count} GPU(s) are visible "
                          f"(cuda:0..cuda:{count - 1}); start at most {count} processes per machine")
    return torch.device("cuda", index)


def shard(batches: Sequence, rank: int, world_size: int) -> list:
    """This rank's contiguous block of `batches`: ceil(len/world) batches, the same count on every rank.

    This is torch.utils.data.DistributedSampler's recipe with the batch, not
    the example, as the unit. DistributedSampler has every rank draw the same
    permutation from a shared seed, pads it to a multiple of the world size by
    repeating its start, and gives each rank its own part. Here every rank
    draws the same bucketed batches from the same seeded numpy Generator (the
    one checkpoints save, so a resumed run redraws them), the list is padded
    the same way, and each rank takes its own part. Sampling examples instead
    would break the length buckets (a rank's batch would mix short and long
    reviews) and charlm's carried state (consecutive chunks of the same
    streams must run in order on one rank), so each rank takes a contiguous
    block; the batch order is already shuffled, so a block is as random as a
    stride. Equal counts mean every rank runs the same number of steps, so
    none waits at an all-reduce for a rank that has finished its epoch.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    if not batches:
        return []
    per_rank = -(-len(batches) // world_size)
    start = rank * per_rank
    return [batches[i % len(batches)] for i in range(start, start + per_rank)]


class Single:
    """One process: every method is the identity, and nothing imports torch."""

    world_size, rank, is_main, active = 1, 0, True, False

    def wrap(self, model):
        return model

    def shard(self, batches: Sequence) -> list:
        return list(batches)

    def agree_step(self, loss: float, signal: int | None) -> tuple[float, int | None, int | None]:
        """(the first non-finite loss of any rank, else this rank's loss; the rank it came from; a stop signal)."""
        return loss, None if math.isfinite(loss) else 0, signal

    def sum_counts(self, sums: dict) -> dict:
        return dict(sums)

    def on_main(self, fn: Callable, *args) -> Any:
        return fn(*args)

    def all_gather(self, obj: Any) -> list:
        return [obj]

    def check_same_weights(self, snapshot: dict[str, np.ndarray]) -> None:
        pass


SINGLE = Single()


class Group(Single):
    """This process as one rank of a torch.distributed process group (gloo on the CPU, nccl on GPUs)."""

    active = True

    def __init__(self, launch: Launch, backend: str) -> None:
        import torch
        import torch.distributed as dist

        self.torch, self.dist, self.backend = torch, dist, backend
        self.world_size, self.rank, self.is_main = launch.world_size, launch.rank, launch.rank == 0
        self.local_rank = launch.local_rank
        # the tensors of small collectives live where the backend can send them (nccl: the GPU)
        self.comm_device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

    def wrap(self, model):
        """DistributedDataParallel around `model`; its parameters stay the module's (plain names for bundles)."""
        from torch.nn.parallel import DistributedDataParallel

        device = next((p.device for p in model.parameters()), None)
        return DistributedDataParallel(model, device_ids=[device] if device is not None and device.type == "cuda" else None)

    def shard(self, batches: Sequence) -> list:
        """This rank's contiguous block of `batches` (see the module-level `shard`)."""
        return shard(batches, self.rank, self.world_size)

    def agree_step(self, loss: float, signal: int | None) -> tuple[float, int | None, int | None]:
        values = self._all_gather_floats([loss, float(signal or 0)])
        signals = [int(s) for _, s in values if s]
        stop = signals[0] if signals else None
        for rank, (value, _) in enumerate(values):
            if not math.isfinite(value):
                return value, rank, stop
        return loss, None, stop

    def sum_counts(self, sums: dict) -> dict:
        total: dict = {}
        for part in self.all_gather(dict(sums)):
            for key, value in part.items():
                total[key] = total.get(key, 0) + value
        return total

    def on_main(self, fn: Callable, *args) -> Any:
        """Run fn(*args) on rank 0; every rank gets its result, or a TrainingError when it failed there."""
        box: list = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn(*args))
            except BaseException as exc:
                self.dist.broadcast_object_list([("error", f"{type(exc).__name__}: {exc}")], src=0)
                raise
            self.dist.broadcast_object_list(box, src=0)
            return box[0][1]
        self.dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise TrainingError(f"rank 0 stopped the run ({value}); see its message")
        return value

    def all_gather(self, obj: Any) -> list:
        gathered: list = [None] * self.world_size
        self.dist.all_gather_object(gathered, obj)
        return gathered

    def check_same_weights(self, snapshot: dict[str, np.ndarray]) -> None:
        """Refuse to finish if the ranks' weights differ (a step that bypassed DDP would cause it)."""
        digest = hashlib.sha256()
        for name in sorted(snapshot):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(snapshot[name]).tobytes())
        digests = self.all_gather(digest.hexdigest())
        if len(set(digests)) != 1:
            differ = [rank for rank, d in enumerate(digests) if d != digests[0]]
            raise TrainingError(f"the weights of rank(s) {differ} differ from rank 0's after training; the "
                                "task's step must call the model it is given (the DDP wrapper)")

    def _all_gather_floats(self, values: list[float]) -> list[list[float]]:
        torch = self.torch
        mine = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        self.dist.all_gather(parts, mine)
        return torch.stack(parts).cpu().tolist()


_group: Group | None = None


def setup(engine: str = "torch", device: str = "cpu") -> Single:
    """This process's place in the run: SINGLE, or (under torchrun) a joined `Group`. Safe to call again.

    The numpy engine under WORLD_SIZE > 1 is a TrainingError. With --device cuda the
    process takes the GPU of its LOCAL_RANK (torch.cuda.set_device) and talks over
    nccl; otherwise over gloo.
    """
    global _group
    launch = launch_from_env()
    if launch.world_size == 1:
        return SINGLE
    if engine != "torch":
        raise TrainingError(NUMPY_ENGINE_ALONE.format(world=launch.world_size))
    if _group is not None:
        return _group
    target = resolve_device(device)  # imports torch, or says how to install it
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise TrainingError("this torch build has no torch.distributed, so it cannot train on several processes; "
                            "run one process, or install a standard torch wheel")
    if target.type == "cuda":
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, init_method="env://", world_size=launch.world_size, rank=launch.rank)
        except (ValueError, RuntimeError) as exc:
            raise TrainingError(f"WORLD_SIZE={launch.world_size} but the process group could not start ({exc}); "
                                "launch with torchrun, e.g. torchrun --standalone --nproc_per_node "
                                f"{launch.world_size} -m rnnkit.cli train ...") from None
        atexit.register(teardown)
    elif dist.get_world_size() != launch.world_size:
        raise TrainingError(f"the process group has {dist.get_world_size()} processes but WORLD_SIZE says "
                            f"{launch.world_size}")
    _group = Group(launch, dist.get_backend())
    return _group


def teardown() -> None:
    """Leave the process group (at exit; safe to call when none was joined)."""
    global _group
    _group = None
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
