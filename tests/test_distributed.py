"""Training on several processes: torchrun + DistributedDataParallel (gloo) on 127.0.0.1.

The unit tests need no process group. The launch tests start
`python -m torch.distributed.run --standalone --nproc_per_node 2` on a tiny
`rnnkit train imdb` over generated reviews (a few seconds each), through a small
worker script that runs the real command line and reports, per rank, its exit
code, its stderr, the files it wrote under --out (seen by an audit hook) and
its final weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from rnnkit.errors import ConfigError, TrainingError
from rnnkit.training import distributed
from rnnkit.training.distributed import SINGLE, Launch, launch_from_env, shard

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                    "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", "GROUP_RANK", "ROLE_RANK")


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Each test starts as a plain process, whatever launched pytest."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def gloo_missing() -> str | None:
    try:
        import torch.distributed as dist
    except ImportError:
        return "torch is not installed"
    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if not dist.is_gloo_available():
        return "this torch build has no gloo backend"
    return None


needs_gloo = pytest.mark.skipif(gloo_missing() is not None, reason=f"needs torch.distributed with gloo: "
                                f"{gloo_missing()}")


# --------------------------------------------------------------------------- launch_from_env


def test_launch_from_env_defaults_to_one_process():
    assert launch_from_env({}) == Launch(1, 0, 0, 1)
    assert launch_from_env({"WORLD_SIZE": " ", "RANK": ""}) == Launch(1, 0, 0, 1)


def test_launch_from_env_reads_what_torchrun_sets():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert launch_from_env(env) == Launch(world_size=4, rank=3, local_rank=1, local_world_size=2)
    assert launch_from_env({"WORLD_SIZE": "2", "RANK": "1"}) == Launch(2, 1, 1, 2)  # one machine by default


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
    ({"WORLD_SIZE": "2", "RANK": "1.5"}, "RANK='1.5' is not a whole number"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 WORLD_SIZE=2: the rank must be in 0..WORLD_SIZE-1"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "the rank must be in 0..WORLD_SIZE-1"),
    ({"WORLD_SIZE": "0"}, "the rank must be in 0..WORLD_SIZE-1"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
     "LOCAL_RANK=2 LOCAL_WORLD_SIZE=2: the local rank must be in 0..LOCAL_WORLD_SIZE-1"),
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "0"}, "the local rank must be in"),
])
def test_launch_from_env_refuses_bad_values(env, message):
    with pytest.raises(ConfigError, match="torchrun") as info:
        launch_from_env(env)
    assert message in str(info.value)


# --------------------------------------------------------------------------- one process: nothing changes


def test_one_process_is_single_and_imports_no_torch():
    code = ("import sys; from rnnkit.training import Trainer, distributed; "
            "assert distributed.setup('numpy') is distributed.SINGLE; "
            "assert distributed.setup('torch') is distributed.SINGLE; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_single_group_is_the_identity():
    batches = [object() for _ in range(5)]
    assert SINGLE.shard(batches) == batches and not SINGLE.active and SINGLE.is_main
    assert SINGLE.wrap(batches) is batches
    assert SINGLE.sum_counts({"seen": 3, "loss": 1.5}) == {"seen": 3, "loss": 1.5}
    assert SINGLE.on_main(lambda a, b: a + b, 2, 3) == 5
    assert SINGLE.all_gather("x") == ["x"]
    assert SINGLE.agree_step(0.5, None) == (0.5, None, None)
    loss, rank, stop = SINGLE.agree_step(float("nan"), signal.SIGTERM)
    assert np.isnan(loss) and rank == 0 and stop == signal.SIGTERM


# --------------------------------------------------------------------------- shard


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("count", [0, 1, 2, 5, 6, 13, 64])
def test_shard_gives_every_rank_an_equal_contiguous_share_of_all_batches(count, world_size):
    batches = list(range(count))
    shares = [shard(batches, rank, world_size) for rank in range(world_size)]
    per_rank = -(-count // world_size)
    assert all(len(share) == per_rank for share in shares)  # same number of steps on every rank
    assert set().union(*map(set, shares)) == set(batches)  # every batch is trained
    joined = [b for share in shares for b in share]
    assert joined == [batches[i % count] for i in range(per_rank * world_size)] if count else joined == []
    # padding repeats the epoch's first batches, as DistributedSampler does, and only as much as needed
    assert len(joined) - count < world_size or count == 0


def test_shard_of_one_process_is_everything_in_order():
    assert shard(["a", "b", "c"], 0, 1) == ["a", "b", "c"]


def test_shard_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        shard([1, 2, 3], 2, 2)


def test_group_shard_uses_its_rank():
    group = object.__new__(distributed.Group)  # no process group needed for the arithmetic
    group.rank, group.world_size = 1, 2
    assert group.shard(list("abcde")) == ["d", "e", "a"]


# --------------------------------------------------------------------------- per-rank checkpoint state


def test_checkpoint_rank_view_gives_each_rank_its_own_rng_and_carry():
    from rnnkit.training.trainer import Trainer

    a = np.zeros(1)
    tensors = {"model.w": a, "best.w": a, "optim.0.m": a, "rng.torch": np.array([0]), "carry.h": np.array([0]),
               "rank1.rng.torch": np.array([1]), "rank1.carry.h": np.array([1]), "rank12.rng.torch": np.array([12])}
    view0, own0 = Trainer._rank_view(tensors, 0)
    assert own0 and sorted(view0) == ["best.w", "carry.h", "model.w", "optim.0.m", "rng.torch"]
    assert view0["rng.torch"][0] == 0
    view1, own1 = Trainer._rank_view(tensors, 1)
    assert own1 and sorted(view1) == ["best.w", "carry.h", "model.w", "optim.0.m", "rng.torch"]
    assert view1["rng.torch"][0] == 1 and view1["carry.h"][0] == 1
    view3, own3 = Trainer._rank_view(tensors, 3)  # a rank the checkpoint's run did not have
    assert not own3 and sorted(view3) == ["best.w", "model.w", "optim.0.m"]


# --------------------------------------------------------------------------- refusals, before any data is read


def test_numpy_engine_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(TrainingError, match="the numpy engine trains in one process; WORLD_SIZE=2"):
        distributed.setup("numpy")


def test_numpy_engine_backend_refuses_a_process_group():
    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.numpy_engine import build_model
    from rnnkit.training.backends import make_backend

    model = build_model(ModelConfig(vocab_size=10, embedding_dim=4, hidden_size=4, bidirectional=False))
    fake_group = types.SimpleNamespace(active=True, world_size=3, rank=0)
    with pytest.raises(TrainingError, match="WORLD_SIZE=3"):
        make_backend(model, TrainConfig(), 0, fake_group)


def test_cli_numpy_engine_under_world_size_2_is_one_clear_line_without_torch(tmp_path):
    code = ("import sys; from rnnkit.cli import main; "
            f"code = main(['train', 'imdb', '--engine', 'numpy', '--out', {str(tmp_path / 'run')!r}]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)")
    env = {**{k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}, "WORLD_SIZE": "2", "RANK": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("rnnkit: error: the numpy engine trains in one process; WORLD_SIZE=2")
    assert "--engine torch" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_cli_bad_launch_environment_is_one_clear_line(tmp_path, capsys, monkeypatch):
    from rnnkit.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    assert main(["train", "imdb", "--out", str(tmp_path / "run")]) == 2
    assert "RANK=5 WORLD_SIZE=2: the rank must be in 0..WORLD_SIZE-1; let torchrun set them" in capsys.readouterr().err


@needs_gloo
def test_world_size_without_a_launcher_says_how_to_launch(monkeypatch, tmp_path, capsys):
    from rnnkit.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")  # MASTER_ADDR/MASTER_PORT unset: torchrun did not start this process
    assert main(["train", "imdb", "--out", str(tmp_path / "run")]) == 3
    err = capsys.readouterr().err
    assert "WORLD_SIZE=2 but the process group could not start" in err
    assert "torchrun --standalone --nproc_per_node 2 -m rnnkit.cli train" in err


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA GPU, so --device cuda is valid here")
@pytest.mark.parametrize("command", [
    ["train", "imdb"],
    ["train", "charlm", "--text", "unused.txt"],
    ["train", "seq2seq", "--task", "reverse"],
])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_device_cuda_without_cuda_is_one_clear_line(command, device, tmp_path, capsys):
    from rnnkit.cli import main

    assert main([*command, "--device", device, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rnnkit: error: --device {device} asks for a GPU, but ")
    assert "train with --device cpu" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device, message", [
    ("banana", "--device 'banana' is not a device; use cpu, cuda or cuda:N"),
    ("meta", "--device meta: rnnkit trains on cpu or cuda (cuda:N); use one of those"),
])
def test_device_that_is_not_cpu_or_cuda_is_refused(device, message, tmp_path, capsys):
    from rnnkit.cli import main

    assert main(["train", "imdb", "--device", device, "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"rnnkit: error: {message}\n"


def test_numpy_engine_on_a_gpu_is_refused(tmp_path, capsys):
    from rnnkit.cli import main

    assert main(["train", "imdb", "--engine", "numpy", "--device", "cuda", "--out", str(tmp_path / "run")]) == 2
    assert "the numpy engine runs on the CPU; leave out --device or use --engine torch" in capsys.readouterr().err


# --------------------------------------------------------------------------- two real processes

WORKER = r'''
"""One rank of a test run: the real `rnnkit` command line, watched.

Writes to $REPORT: code-rankR (exit code), stderr-rankR.txt, writes-rankR.json (files it
created or replaced under $OUT) and weights-rankR.npz (the weights `fit` ended with).
$FAULT "sigterm:N" or "nan:N": rank 1 sends itself SIGTERM, or returns a NaN loss, at step N.
"""
import json, os, signal, sys

import numpy as np

rank = int(os.environ["RANK"])
report = os.environ["REPORT"]
out = os.path.realpath(os.environ["OUT"])
fault, _, at = os.environ.get("FAULT", "").partition(":")
sys.stderr = open(os.path.join(report, f"stderr-rank{rank}.txt"), "w", buffering=1)
writes = []


def under_out(path):
    if isinstance(path, int) or path is None:
        return False
    path = os.path.realpath(os.fsdecode(path))
    return (path == out or path.startswith(out + os.sep)) and ".rnnkit-write-test-" not in path


def audit(event, args):
    if event == "open" and isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        if under_out(args[0]):
            writes.append(os.path.relpath(os.path.realpath(os.fsdecode(args[0])), out))
    elif event == "os.rename" and under_out(args[1]):
        writes.append(os.path.relpath(os.path.realpath(os.fsdecode(args[1])), out))


from rnnkit.training import trainer as trainer_module

original_fit = trainer_module.Trainer.fit


def fit(self, batches, step, validate, rng, resume=False):
    def faulty(model, batch):
        loss, count, metrics = step(model, batch)
        if rank == 1 and self.state.global_step + 1 == int(at):
            if fault == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            elif fault == "nan":
                loss = loss * float("nan")
        return loss, count, metrics

    history = original_fit(self, batches, faulty if fault else step, validate, rng, resume)
    np.savez(os.path.join(report, f"weights-rank{rank}.npz"), **self.backend.snapshot())
    return history


trainer_module.Trainer.fit = fit
sys.addaudithook(audit)
from rnnkit.cli import main

# torchrun SIGTERMs the other ranks once one has exited: this rank must still report. Ignored from the start,
# not only after main() returns: training installs its own handler (the fault above) and puts this one back,
# so there is no moment between the end of training and the report when torchrun's SIGTERM kills it.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = main(sys.argv[1:])
with open(os.path.join(report, f"writes-rank{rank}.json"), "w") as f:
    json.dump(writes, f)
with open(os.path.join(report, f"code-rank{rank}"), "w") as f:
    f.write(str(code))
sys.stderr.flush()
sys.exit(code)
'''


class Ranks:
    """What each rank of a finished launch reported."""

    def __init__(self, report: Path, proc: subprocess.CompletedProcess) -> None:
        self.report, self.proc = report, proc

    def code(self, rank: int) -> int | None:
        path = self.report / f"code-rank{rank}"
        return int(path.read_text()) if path.exists() else None

    def stderr(self, rank: int) -> str:
        path = self.report / f"stderr-rank{rank}.txt"
        return path.read_text() if path.exists() else ""

    def writes(self, rank: int) -> list[str]:
        return json.loads((self.report / f"writes-rank{rank}.json").read_text())

    def weights(self, rank: int) -> dict[str, np.ndarray]:
        with np.load(self.report / f"weights-rank{rank}.npz") as data:  # plain arrays; allow_pickle is off
            return {k: data[k] for k in data.files}

    def explain(self) -> str:
        return (f"torchrun exit {self.proc.returncode}\n--- torchrun stderr ---\n{self.proc.stderr[-4000:]}\n"
                + "".join(f"--- rank {r} (exit {self.code(r)}) ---\n{self.stderr(r)[-3000:]}\n" for r in (0, 1)))


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """launch(out, *options, fault="") runs 2 ranks of `rnnkit train imdb` on a small generated IMDB."""
    from rnnkit.data.synthetic import write_imdb_layout

    root = tmp_path_factory.mktemp("distributed")
    worker = root / "worker.py"
    worker.write_text(textwrap.dedent(WORKER))
    data = write_imdb_layout(root / "aclImdb_v1.tar.gz", per_split=160)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    env.update(RNNKIT_CACHE=str(root / "cache"), MPLCONFIGDIR=str(root / "mpl"), OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    launches = iter(range(1000))
    train = ["train", "imdb", "--data", str(data), "--vocab-size", "0", "--maxlen", "40", "--hidden", "8",
             "--embedding-dim", "8", "--batch-size", "16", "--lr", "0.01", "--epochs", "2", "--quiet"]

    def run(out: Path, *options: str, fault: str = "") -> Ranks:
        report = root / f"report{next(launches)}"
        report.mkdir()
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "--monitor-interval", "0.1", str(worker), *train, "--out", str(out), "--threads", "1",
                   "--deterministic", *options]
        proc = subprocess.Popen(command, env={**env, "REPORT": str(report), "OUT": str(out), "FAULT": fault},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and the ranks it started: a new session of our own
            stdout, stderr = proc.communicate()
            pytest.fail(f"the ranks did not finish within 180 s (a collective waiting for a rank?)\n{stderr[-4000:]}")
        return Ranks(report, subprocess.CompletedProcess(command, proc.returncode, stdout, stderr))

    run.train, run.cache = train, root / "cache"  # the same training in one process
    return run


@pytest.fixture(scope="module")
def finished(launch, tmp_path_factory):
    """An uninterrupted two-process run (the reference for the resume test)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    return out, launch(out)


@needs_gloo
def test_two_processes_train_and_only_rank_0_writes(finished):
    out, ranks = finished
    assert ranks.proc.returncode == 0 and ranks.code(0) == 0 and ranks.code(1) == 0, ranks.explain()
    assert "Traceback" not in ranks.stderr(0) + ranks.stderr(1), ranks.explain()
    written = set(ranks.writes(0))
    assert {"model.safetensors", "config.json", "vocab.json", "history.json", "loss.png",
            "checkpoint/state.safetensors"} <= written, written
    assert ranks.writes(1) == [], "rank 1 wrote under --out"
    assert "best validation accuracy" in ranks.proc.stdout  # rank 0's summary; rank 1 prints nothing
    assert ranks.proc.stdout.count("best validation accuracy") == 1
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]


@needs_gloo
def test_two_processes_end_with_identical_weights_and_a_bundle_that_predicts(finished):
    import rnnkit

    out, ranks = finished
    assert ranks.code(0) == 0, ranks.explain()
    w0, w1 = ranks.weights(0), ranks.weights(1)
    assert w0.keys() == w1.keys() and all(np.array_equal(w0[k], w1[k]) for k in w0)
    model = rnnkit.load(out)
    # rank 0 saved the best epoch, which every rank ends with (the bundle names its tensors its own way)
    from rnnkit.torch_engine import build_model, load_tensors

    saved = {k: v.numpy() for k, v in load_tensors(build_model(model.bundle.config), model.bundle.tensors)
             .state_dict().items()}
    assert saved.keys() == w0.keys() and all(np.array_equal(saved[k], w0[k]) for k in w0)
    predictions = model.predict(["A wonderful, moving film.", "A boring mess."])
    assert [p["label"] in ("positive", "negative") for p in predictions] == [True, True]


@needs_gloo
def test_sigterm_on_one_rank_stops_both_after_one_checkpoint_and_resume_matches(launch, finished, tmp_path,
                                                                                capsys, monkeypatch):
    from rnnkit.cli import main

    reference_out, reference = finished
    out = tmp_path / "run"
    stopped = launch(out, fault="sigterm:2")
    assert stopped.code(0) == stopped.code(1) == 128 + signal.SIGTERM, stopped.explain()
    for rank in (0, 1):  # both stopped in the same step
        assert "stopped by SIGTERM at epoch 1, batch 2 (step 2)" in stopped.stderr(rank), stopped.explain()
    assert (out / "checkpoint" / "state.safetensors").exists() and stopped.writes(1) == []

    from rnnkit.training import checkpoint

    progress, _, _ = checkpoint.load_checkpoint(out, "torch")
    assert (progress.world_size, progress.epoch, progress.batch, progress.global_step) == (2, 1, 2, 2)
    # mid-epoch, the checkpoint needs as many processes as wrote it
    monkeypatch.setenv("RNNKIT_CACHE", str(launch.cache))
    assert main([*launch.train, "--out", str(out), "--resume"]) == 3
    assert ("the checkpoint was written in the middle of epoch 1 by 2 process(es); resume it with 2 "
            "(torchrun --nproc_per_node/--nnodes), not 1") in capsys.readouterr().err

    resumed = launch(out, "--resume")
    assert resumed.code(0) == resumed.code(1) == 0, resumed.explain()
    expected, w0, w1 = reference.weights(0), resumed.weights(0), resumed.weights(1)
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert all(np.array_equal(w0[k], expected[k]) for k in expected), "resumed weights differ from an unbroken run"


@needs_gloo
def test_non_finite_loss_on_one_rank_stops_every_rank(launch, tmp_path):
    out = tmp_path / "run"
    ranks = launch(out, fault="nan:2")
    assert ranks.code(0) == ranks.code(1) == 3, ranks.explain()
    for rank in (0, 1):
        assert "the loss became nan on rank 1 at epoch 1, batch 1 (step 2)" in ranks.stderr(rank), ranks.explain()
    assert ranks.writes(1) == []
