"""What the training loop needs from an engine: one update step, snapshots and resumable state.

The `Trainer` runs the same loop for both engines; a backend owns the model,
its optimizer and learning-rate schedule:

    TorchBackend   an nn.Module; the task's step returns (loss tensor, count, metrics)
                   and the backend runs backward, clipping and the optimizer step.
    NumpyBackend   a numpy_engine model; the task's step runs forward, loss and the
                   hand-written backward and returns (loss, count, metrics, grads);
                   the backend clips and applies the optimizer (rnnkit.numpy_engine.optim).

Frozen parameters (e.g. pretrained embeddings kept fixed) are left out of the
optimizer on both engines, so no update and no weight decay touches them, and
their gradients are not clipped with the others': torch, those with
requires_grad False; numpy, the names in the model's `frozen` set.

Both follow `TrainConfig`: adam (decoupled weight decay, as AdamW), rmsprop
(Keras' rho 0.9, eps 1e-7), sgd (momentum); clipping by global norm; the
learning rate of each step and the layers that train in each epoch from
`rnnkit.training.schedule` (`set_position`, called before every step): warm-up,
exponential/linear/cosine decay, discriminative rates per layer, gradual
unfreezing. A layer not yet unfrozen takes no step (no update, no weight decay,
its Adam step count waits), on both engines alike. Resumable state is
plain arrays (saved as safetensors) plus JSON, never pickle. torch is imported
only by TorchBackend, so numpy training runs without it.

Under torchrun (`rnnkit.training.distributed`) TorchBackend wraps the model in
DistributedDataParallel: the task's step gets the wrapper (so backward
averages the gradients over the ranks), while snapshots, checkpoints and
bundles read the plain module, whose parameter names are the bundle's. Each
rank draws its own dropout masks (a torch seed derived from the run's seed and
the rank; rank 0 keeps the single-process stream). The numpy engine runs in
one process only.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any, Callable, Iterator

import numpy as np

from rnnkit.config import TrainConfig
from rnnkit.training import schedule


class NonFiniteLoss(Exception):
    """The step's loss is NaN or infinite; nothing was updated."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


def engine_of(model: Any) -> str:
    """"torch" for an nn.Module, "numpy" for a numpy_engine model."""
    torch = sys.modules.get("torch")
    return "torch" if torch is not None and isinstance(model, torch.nn.Module) else "numpy"


def make_backend(model: Any, config: TrainConfig, seed: int = 0, group=None):
    """The backend for `model`: TorchBackend for an nn.Module, NumpyBackend for a numpy_engine model.

    `group` is the run's `rnnkit.training.distributed` group (None: one process).
    """
    from rnnkit.training.distributed import NUMPY_ENGINE_ALONE, SINGLE

    group = group or SINGLE
    if engine_of(model) == "torch":
        return TorchBackend(model, config, group)
    if group.active:
        from rnnkit.errors import TrainingError

        raise TrainingError(NUMPY_ENGINE_ALONE.format(world=group.world_size))
    return NumpyBackend(model, config, np.random.default_rng([seed, 1]))


class TorchBackend:
    """An nn.Module with its torch optimizer (one param group per layer depth when the schedule needs it),
    and DDP under torchrun.

    `model` is the plain module (snapshots, checkpoints, bundles); `train_model`
    is what the task's step calls: the module itself, or its DistributedDataParallel
    wrapper when `group` is a process group.
    """

    engine = "torch"

    def __init__(self, model, config: TrainConfig, group=None) -> None:
        import torch

        from rnnkit.training.distributed import SINGLE

        self.torch, self.model, self.config, self.group = torch, model, config, group or SINGLE
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.train_model = self.group.wrap(model)
        self.optimizer = make_torch_optimizer(model, config)
        self.frozen_now: list = []  # parameters gradual unfreezing has not reached yet
        self.trainable_below: int | None | str = "unset"
        if self.group.rank:
            self.seed_rank(0)

    def seed_rank(self, salt: int) -> None:
        """Give this rank (> 0) its own torch RNG stream: its dropout masks differ from the other ranks'."""
        seed = np.random.SeedSequence([self.config.seed, self.group.rank, salt]).generate_state(1)[0]
        self.torch.manual_seed(int(seed))

    def step(self, step: Callable, batch, agree: Callable[[float], float] | None = None) -> tuple[float, int, dict]:
        """step(model, batch) -> (loss tensor, count, metric sums); backward + clip + update.

        `agree(loss)` (several processes) returns the first non-finite loss of any
        rank, else this one's: all ranks then skip the update and stop together.
        """
        loss, count, metrics = step(self.train_model, batch)
        value = loss.item()
        checked = agree(value) if agree is not None else value
        if not math.isfinite(checked):
            raise NonFiniteLoss(checked)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in self.frozen_now:  # (under DDP they still get gradients) no step, no weight decay
            p.grad = None
        if self.config.clip_norm:
            self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.optimizer.step()
        return value, count, metrics

    def train_mode(self) -> None:
        self.train_model.train()

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        self.model.eval()
        with self.torch.no_grad():
            yield

    def set_position(self, epoch: int, step: int, total_steps: int) -> None:
        """The learning rates of step `step` (0-based, of the run) in `epoch`, and the layers that train."""
        lr = schedule.learning_rate(self.config, epoch, step, total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        below = schedule.trainable_below(self.config, epoch)
        if below != self.trainable_below:
            self.trainable_below = below
            self.frozen_now = [p for group in self.optimizer.param_groups if below is not None
                               and group.get("depth", 0) >= below for p in group["params"]]
            if not self.group.active:  # one process: frozen layers skip backward; DDP needs a fixed set
                for group in self.optimizer.param_groups:
                    for p in group["params"]:
                        p.requires_grad_(below is None or group.get("depth", 0) < below)

    @property
    def learning_rate(self) -> float:
        """The top layer's learning rate at the last step."""
        return self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0].get("lr_scale", 1.0)

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the model's weights (state_dict names), as numpy arrays."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def restore(self, snapshot: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict({k: self.torch.from_numpy(np.asarray(v)) for k, v in snapshot.items()})

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Model, optimizer tensors and torch RNG as arrays; optimizer hyper-parameters and schedule as JSON."""
        tensors = {f"model.{k}": v for k, v in self.snapshot().items()}
        meta = {"param_groups": self.optimizer.state_dict()["param_groups"], "scalars": {}}
        for index, entry in self.optimizer.state_dict()["state"].items():
            for name, value in entry.items():
                if self.torch.is_tensor(value):
                    tensors[f"optim.{index}.{name}"] = value.detach().cpu().numpy().copy()
                else:
                    meta["scalars"][f"{index}.{name}"] = value
        tensors["rng.torch"] = self.torch.get_rng_state().numpy().copy()
        if self.device.type == "cuda":  # dropout on a GPU draws from that GPU's generator
            tensors["rng.cuda"] = self.torch.cuda.get_rng_state(self.device).numpy().copy()
        return tensors, meta

    def load_state(self, tensors: dict[str, np.ndarray], meta: dict) -> None:
        torch = self.torch
        self.restore(_strip(tensors, "model."))
        state: dict[int, dict] = {}
        for key, value in _strip(tensors, "optim.").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = torch.from_numpy(value)
        for key, value in meta["scalars"].items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        if "rng.torch" in tensors:  # absent only for a rank the checkpoint's run did not have
            torch.set_rng_state(torch.from_numpy(tensors["rng.torch"]))
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(tensors["rng.cuda"]), self.device)


def make_torch_optimizer(model, config: TrainConfig):
    """The torch optimizer `config` names, over the model's trainable parameters.

    With discriminative rates or gradual unfreezing, one param group per layer depth (top first), each
    with its "depth" and "lr_scale"; else one group.
    """
    import torch

    trainable = {name: p for name, p in _bundle_names(model).items() if p.requires_grad}
    params: list = list(trainable.values())
    if schedule.uses_layers(config):
        depths = schedule.layer_depths(list(trainable))
        params = [{"params": [trainable[n] for n in trainable if depths[n] == depth], "depth": depth,
                   "lr_scale": schedule.lr_scale(config, depth)} for depth in sorted(set(depths.values()))]
    if config.optimizer == "adam":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":  # Keras' RMSprop: rho 0.9, eps 1e-7
        return torch.optim.RMSprop(params, lr=config.learning_rate, alpha=0.9, eps=1e-7,
                                   weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum,
                           weight_decay=config.weight_decay)


class NumpyBackend:
    """A numpy_engine model (parameters in `model.params`) with a numpy optimizer.

    `rng` drives dropout: the backend hands it to every step and saves and
    restores it on resume, so a resumed run draws the same dropout masks.
    """

    engine = "numpy"

    def __init__(self, model, config: TrainConfig, rng: np.random.Generator) -> None:
        from rnnkit.numpy_engine import optim

        self.optim, self.model, self.config, self.rng = optim, model, config, rng
        self.frozen = frozenset(getattr(model, "frozen", ()))  # as requires_grad=False: never updated
        self.optimizer = make_numpy_optimizer({k: v for k, v in model.params.items() if k not in self.frozen},
                                              config)
        self.depths = schedule.layer_depths(list(self.optimizer.params))
        if schedule.uses_layers(config):
            self.optimizer.lr_scale = {k: schedule.lr_scale(config, d) for k, d in self.depths.items()}
        self.trainable_below: int | None = None
        if config.threads:  # --threads N: numpy's BLAS (the input projections and weight gradients use it)
            from rnnkit.numpy_engine import blas

            blas.set_threads(config.threads)

    def step(self, step: Callable, batch, agree: Callable[[float], float] | None = None) -> tuple[float, int, dict]:
        """step(model, batch, rng) -> (loss, count, metric sums, grads); clip + update in place."""
        loss, count, metrics, grads = step(self.model, batch, self.rng)
        value = float(loss)
        if not math.isfinite(agree(value) if agree is not None else value):
            raise NonFiniteLoss(value)
        below = self.trainable_below
        grads = {k: g for k, g in grads.items()
                 if k not in self.frozen and (below is None or self.depths[k] < below)}
        if self.config.clip_norm:
            self.optim.clip_grad_norm(grads, self.config.clip_norm)
        self.optimizer.step(grads)
        return value, count, metrics

    def train_mode(self) -> None:
        pass  # numpy models take train=True/False per call

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        yield

    def set_position(self, epoch: int, step: int, total_steps: int) -> None:
        """The learning rate of step `step` (0-based, of the run) in `epoch`, and the layers that train."""
        self.optimizer.lr = schedule.learning_rate(self.config, epoch, step, total_steps)
        self.trainable_below = schedule.trainable_below(self.config, epoch)

    @property
    def learning_rate(self) -> float:
        """The top layer's learning rate at the last step."""
        return self.optimizer.lr

    def snapshot(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.model.params.items()}

    def restore(self, snapshot: dict[str, np.ndarray]) -> None:
        for name, value in snapshot.items():
            self.model.params[name][...] = value  # in place: layers hold the arrays by reference

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        tensors = {f"model.{k}": v for k, v in self.snapshot().items()}
        for name, slots in self.optimizer.state.items():
            tensors.update({f"optim.{name}.{slot}": value.copy() for slot, value in slots.items()})
        meta = {"steps": dict(self.optimizer.steps), "lr": self.optimizer.lr, "rng": self.rng.bit_generator.state}
        return tensors, meta

    def load_state(self, tensors: dict[str, np.ndarray], meta: dict) -> None:
        self.restore(_strip(tensors, "model."))
        for key, value in _strip(tensors, "optim.").items():
            name, slot = key.rsplit(".", 1)
            self.optimizer.state[name][slot] = value.copy()
        # "t": a checkpoint from before per-parameter step counts, when every parameter took every step
        steps = meta["steps"] if "steps" in meta else dict.fromkeys(self.optimizer.steps, meta["t"])
        self.optimizer.steps.update({k: int(v) for k, v in steps.items() if k in self.optimizer.steps})
        self.optimizer.lr = meta["lr"]
        self.rng.bit_generator.state = meta["rng"]


def _bundle_names(model) -> dict:
    """name -> parameter, named as in bundles (`shared_parameters`, rnnkit.params) where the module says so: its
    attribute names can differ (a wrapper around nn.LSTM), and layer depths are read from the bundle's names."""
    shared = {id(p): name for name, p in model.shared_parameters().items()} if hasattr(model, "shared_parameters") \
        else {}
    return {shared.get(id(p), name): p for name, p in model.named_parameters()}


def make_numpy_optimizer(params: dict[str, np.ndarray], config: TrainConfig):
    """The numpy optimizer `config` names, with the same hyper-parameters as make_torch_optimizer."""
    from rnnkit.numpy_engine import optim

    if config.optimizer == "adam":
        return optim.Adam(params, config.learning_rate, weight_decay=config.weight_decay, decoupled=True)
    if config.optimizer == "rmsprop":
        return optim.RMSprop(params, config.learning_rate, alpha=0.9, eps=1e-7, weight_decay=config.weight_decay)
    return optim.SGD(params, config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay)


def _strip(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
