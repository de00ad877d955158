"""Reliability benchmark: faults injected and survived, bad inputs handled, fuzz examples run.

    python bench/reliability.py                   # everything: ~20 minutes on 2 cores (the suite run is ~8)
    python bench/reliability.py --trials 2 --fuzz-examples 50 --suite-runs 0 --busy-reviews 200   # a quick check
    python bench/reliability.py --tasks charlm    # kill trials for one task only

1. kill -9, for each task in --tasks (default both):
     imdb    `rnnkit train imdb` on a generated review tarball;
     charlm  `rnnkit train charlm` on a generated text (a 2-layer LSTM with
             dropout, truncated BPTT with the hidden state carried between chunks),
   each small, --deterministic --threads 1, a checkpoint every step. The run is
   trained once without interruption (the reference). Each trial starts the same
   run and sends SIGKILL at a random point: once the checkpoint of a random step
   still to come is written, plus a random part of a step (so kills land inside
   steps, checkpoint writes and epoch ends). It is resumed with --resume and
   killed again the same way, up to `--kills` times, then resumed to the end.
   After every kill the bundle (once there is one) and the checkpoint must load.
   A trial counts when its final state is bit-identical to the reference's: the
   model and optimizer state in the checkpoint, the carried hidden state
   ("carry.*", charlm) and model.safetensors. Temporary files (*.rnnkit-tmp)
   still in the run's directory after the last resume are counted too.
2. Bad inputs: runs the bad-input cases of the test suite (BAD_INPUT_TESTS: the
   catalogue of ../shared/RELIABILITY.md across the CLI, the Python API and the
   service; a user's files; run directories; every command against every task's
   bundle; labelled-data errors) and counts each case: tried = run (not skipped),
   handled = passed. Hostile bundles (HOSTILE_BUNDLE_TESTS) are counted apart.
3. Fuzzing: runs tests/test_properties.py with RNNKIT_FUZZ_EXAMPLES examples per
   property and adds up hypothesis's count of passing (and failing) examples.
4. Hostile clients (bench/hostile_clients.py): a real `rnnkit serve` of every
   task's bundle gets a catalogue of malformed, oversized and abusive requests;
   `server_500s` counts the answers of 500 (and 5xx other than 503/504).
5. Busy machine: one epoch of the default `rnnkit train imdb` on --busy-reviews
   real reviews, idle and with every core kept busy by another process, with the
   default threads and with a fixed --threads N (the old default);
   `busy_machine_epoch_ratio` = loaded / idle epoch time with the defaults.
6. The whole test suite --suite-runs times with every core kept busy.

Writes bench/results/reliability.json: `kills_injected` and
`kills_resumed_identical` are totals over the tasks, "kill_trials" holds each
task's trials.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reliability.json"
COMMON_ARGS = ["--epochs", "2", "--hidden", "8", "--embedding-dim", "8", "--lr", "0.005", "--patience", "0",
               "--checkpoint-every", "1", "--quiet", "--threads", "1", "--deterministic"]
# bad inputs: (test file, pytest -k expression or None for every case in it)
BAD_INPUT_TESTS = [("tests/test_bad_inputs.py", None), ("tests/test_user_files.py", None),
                   ("tests/test_rundir.py", None), ("tests/test_task_commands.py", None),
                   ("tests/test_labelled_data.py", "ragged or bad or missing or header_only or one_class or non_utf8 "
                                                   "or not_text or refused or errors or fifo or size_limit "
                                                   "or label_warnings or imbalance")]
HOSTILE_BUNDLE_TESTS = [("tests/test_bundle_safety.py", None), ("tests/test_hostile_bundles.py", None)]
SHARED_IMDB = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"
PROPERTY_TESTS = ["tests/test_properties.py"]
TEXT_WORDS = ("the quick brown fox jumps over a lazy dog while rain falls on quiet hills and slow rivers "
              "carry old leaves past seven stone bridges").split()


@dataclass(frozen=True)
class Task:
    """A training command the kill trials run.

    Attributes:
        name: the `rnnkit train` subcommand.
        args: its fixed training options (besides COMMON_ARGS).
        write_data: (folder, options) -> the data options (e.g. ["--text", path]) after writing the data there.
        data: how the data is described in the results, from the options.
        warm_up: train once before the reference (imdb: fills the dataset cache, so the reference's
            timing is not the first run's).
    """

    name: str
    args: tuple[str, ...]
    write_data: Callable[[Path, argparse.Namespace], list[str]]
    data: Callable[[argparse.Namespace], str]
    warm_up: bool = False

    def command(self, data_args: list[str], out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "rnnkit.cli", "train", self.name, *data_args, "--out", str(out),
                *COMMON_ARGS, *self.args, *extra]

    def describe(self, args: argparse.Namespace) -> str:
        return " ".join([f"rnnkit train {self.name}", self.data(args), *COMMON_ARGS, *self.args])


def write_imdb(folder: Path, args: argparse.Namespace) -> list[str]:
    from rnnkit.data.synthetic import write_imdb_layout

    data = folder / "aclImdb_v1.tar.gz"
    write_imdb_layout(data, per_split=args.per_split, seed=args.seed)
    return ["--data", str(data)]


def write_text(folder: Path, args: argparse.Namespace) -> list[str]:
    """A generated text of --text-chars characters: lines of words drawn from a small list, seeded."""
    rng = random.Random(args.seed)
    lines, size = [], 0
    while size < args.text_chars:
        line = " ".join(rng.choice(TEXT_WORDS) for _ in range(rng.randint(4, 10))).capitalize() + "."
        lines.append(line)
        size += len(line) + 1
    path = folder / "text.txt"
    path.write_text("\n".join(lines)[:args.text_chars] + "\n", encoding="utf-8")
    return ["--text", str(path)]


TASKS = {
    "imdb": Task("imdb", ("--batch-size", "16"), write_imdb,
                 lambda args: f"--data GENERATED(per_split={args.per_split})", warm_up=True),
    "charlm": Task("charlm", ("--batch-size", "8", "--seq-len", "32", "--layers", "2", "--precision", "fp32",
                              "--sample-every", "0"), write_text,
                   lambda args: f"--text GENERATED(chars={args.text_chars})"),
}


def final_state(out: Path) -> dict[str, np.ndarray]:
    """Model, optimizer state and carried hidden state ("carry.*", when the task has one) from the
    checkpoint, and the bundle's weights ("bundle.*")."""
    from safetensors.numpy import load_file

    state = load_file(str(out / "checkpoint" / "state.safetensors"))
    weights = {k: v for k, v in state.items() if k.startswith(("model.", "optim.", "carry."))}
    weights.update({f"bundle.{k}": v for k, v in load_file(str(out / "model.safetensors")).items()})
    return weights


def identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def still_loadable(out: Path) -> bool:
    """After a kill: the bundle (once there is one) and the checkpoint load; a temp file is never read."""
    from rnnkit.bundle import load_bundle
    from rnnkit.training.checkpoint import load_checkpoint

    try:
        if (out / "config.json").exists():
            load_bundle(out)
        load_checkpoint(out, "torch")
    except Exception as exc:  # noqa: BLE001 - any failure here is what we are counting
        print(f"    not loadable after the kill: {exc}", file=sys.stderr)
        return False
    return True


def run_kill_trials(task: Task, args, work: Path, env: dict) -> dict:
    """--trials interrupted runs of `task`, each compared with one uninterrupted reference run."""
    work.mkdir(parents=True)
    data = task.write_data(work, args)
    if task.warm_up:
        subprocess.run(task.command(data, work / "warm"), env=env, check=True, capture_output=True)
    reference = work / "reference"
    proc = subprocess.Popen(task.command(data, reference), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_checkpoint = wait_for_checkpoint(proc, reference)
    proc.wait()
    span = time.perf_counter() - first_checkpoint
    if proc.returncode != 0:
        raise SystemExit(f"the {task.name} reference run failed: {proc.stderr.read().decode()[-500:]}")
    expected = final_state(reference)
    total_steps = checkpoint_step(reference)
    carried = sorted(k for k in expected if k.startswith("carry."))
    print(f"{task.name} reference run: {total_steps} steps, training after its first checkpoint takes {span:.1f} s; "
          f"compared: {len(expected)} tensors{' including ' + ', '.join(carried) if carried else ''}")

    rng = random.Random(args.seed)
    step_seconds = span / total_steps
    trials, kills, kills_identical, not_loadable, temp_files = [], 0, 0, 0, 0
    for trial in range(1, args.trials + 1):
        out = work / f"trial{trial}"
        points, done = [], 0
        for attempt in range(args.kills):
            if done >= total_steps - 1:
                break  # nothing left to interrupt
            # a random point: after the checkpoint of a random step still to come, plus part of a step
            step, jitter = rng.randint(done + 1, total_steps - 1), rng.uniform(0.0, step_seconds)
            victim = subprocess.Popen(task.command(data, out, *(["--resume"] if attempt else [])), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for_step(victim, out, step)
            deadline = time.perf_counter() + jitter
            while victim.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.002)
            if victim.poll() is not None:  # it finished first: no kill
                break
            victim.kill()  # SIGKILL: no handler, no cleanup
            victim.wait()
            points.append({"after_step": step, "plus_seconds": round(jitter, 3)})
            not_loadable += not still_loadable(out)
            done = checkpoint_step(out)
        resumed = subprocess.run(task.command(data, out, "--resume"), env=env, capture_output=True)
        ok = resumed.returncode == 0 and identical(final_state(out), expected)
        temp_files += len([p for p in out.rglob("*") if p.name.endswith(".rnnkit-tmp")])
        kills += len(points)
        kills_identical += len(points) if ok else 0
        trials.append({"trial": trial, "kills": points, "resumed_identical": ok, "resume_exit": resumed.returncode})
        moments = [(p["after_step"], p["plus_seconds"]) for p in points]
        print(f"{task.name} trial {trial}: {len(points)} kill(s) at {moments} (step, s); resumed identical: {ok}")
        if resumed.returncode != 0:
            print(resumed.stderr.decode()[-800:], file=sys.stderr)
    return {"kills_injected": kills, "kills_resumed_identical": kills_identical,
            "trials": len(trials), "trials_identical": sum(t["resumed_identical"] for t in trials),
            "states_unloadable_after_a_kill": not_loadable, "temp_files_left_by_kills": temp_files,
            "steps_per_run": total_steps, "seconds_per_step": round(step_seconds, 3),
            "compared": {"tensors": len(expected), "carried_state": carried}, "trial_details": trials,
            "run": task.describe(args)}


def checkpoint_step(out: Path) -> int:
    """Training steps done according to the run's checkpoint."""
    from safetensors import safe_open

    with safe_open(str(out / "checkpoint" / "state.safetensors"), framework="numpy") as handle:
        return int(json.loads(handle.metadata()["checkpoint"])["progress"]["global_step"])


def wait_for_checkpoint(proc: subprocess.Popen, out: Path) -> float:
    """The moment the run has written its first checkpoint."""
    state = out / "checkpoint" / "state.safetensors"
    while proc.poll() is None and not state.exists():
        time.sleep(0.005)
    return time.perf_counter()


def wait_for_step(proc: subprocess.Popen, out: Path, step: int) -> None:
    """Until the run's checkpoint says `step` steps are done (or the run ends)."""
    state = out / "checkpoint" / "state.safetensors"
    seen = None
    while proc.poll() is None:
        if state.exists() and state.stat().st_mtime_ns != seen:
            seen = state.stat().st_mtime_ns
            try:
                if checkpoint_step(out) >= step:
                    return
            except Exception:  # noqa: BLE001 - replaced while we read it: look again
                seen = None
        time.sleep(0.002)


def run_cases(tests: list[tuple[str, str | None]], work: Path, env: dict, what: str) -> dict:
    """Run the test cases of `tests` (file, -k expression); count them: tried (not skipped), handled (passed)."""
    tried = handled = skipped = 0
    unhandled, exits = [], []
    for number, (path, expression) in enumerate(tests):
        report = work / f"{what.replace(' ', '-')}-{number}.xml"
        select = ["-k", expression] if expression else []
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path, *select,
                               f"--junitxml={report}"], cwd=ROOT, env=env, capture_output=True)
        exits.append(proc.returncode)
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = {child.tag for child in case}
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            if "skipped" in outcome and not any(c.get("type") == "pytest.xfail" for c in case.iter("skipped")):
                skipped += 1
                continue
            tried += 1
            if outcome & {"failure", "error", "skipped"}:  # skipped here = xfail: a known, reported hole
                unhandled.append(name)
            else:
                handled += 1
    print(f"{what}: {handled} of {tried} handled ({skipped} skipped)")
    return {"tried": tried, "handled": handled, "skipped": skipped, "unhandled": unhandled,
            "files": [path for path, _ in tests], "exit_codes": exits}


def busy_loops(count: int) -> list[subprocess.Popen]:
    """`count` processes that each keep a core busy (what another user's job does to the machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_all(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.wait()


def run_suite_under_load(runs: int, env: dict) -> dict:
    """The README's test command, `runs` times, with every core kept busy by another process."""
    results = []
    for run in range(runs):
        load = busy_loops(os.cpu_count() or 2)
        started = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                                  env=env, capture_output=True, text=True)
        finally:
            stop_all(load)
        summary = (proc.stdout.strip().splitlines() or [""])[-1]
        failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", summary))
        results.append({"exit": proc.returncode, "failed": failed, "summary": summary,
                        "minutes": round((time.perf_counter() - started) / 60, 1),
                        "failures": re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)})
        print(f"suite under load, run {run + 1} of {runs}: {summary}")
    return {"suite_runs_under_load": runs, "suite_failures_under_load": sum(r["exit"] != 0 for r in results),
            "runs": results}


def small_imdb(folder: Path, reviews: int, seed: int) -> tuple[Path, str]:
    """An aclImdb-layout tarball of `reviews` training reviews (and a few test ones): real IMDB ones when the
    shared data set is here, else generated ones; and what it holds, for the record."""
    from rnnkit.data.synthetic import write_imdb_layout

    target = folder / "imdb-small.tar.gz"
    if not SHARED_IMDB.exists():
        write_imdb_layout(target, per_split=reviews, seed=seed)
        return target, f"{reviews} generated reviews per split ({SHARED_IMDB} not found)"
    import tarfile

    rng = random.Random(seed)
    with tarfile.open(SHARED_IMDB, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        members = [m for m in source.getmembers() if m.isfile() and m.name.count("/") == 3
                   and m.name.split("/")[1] in ("train", "test") and m.name.split("/")[2] in ("pos", "neg")]
        by_split = {split: [m for m in members if m.name.split("/")[1] == split] for split in ("train", "test")}
        chosen = rng.sample(by_split["train"], reviews) + rng.sample(by_split["test"], 200)
        for member in chosen:
            out.addfile(member, source.extractfile(member))
    return target, f"{reviews} IMDB training reviews drawn at random (seed {seed}) from {SHARED_IMDB.name}"


def run_busy_machine(reviews: int, work: Path, env: dict, seed: int) -> dict:
    """Epoch time of the default `rnnkit train imdb` on an idle machine and with every core kept busy."""
    work.mkdir(parents=True, exist_ok=True)
    data, described = small_imdb(work, reviews, seed)
    cores = os.cpu_count() or 2
    runs = {}
    for name, threads, loaded in (("idle_default", [], False), ("loaded_default", [], True),
                                  ("idle_all_cores", ["--threads", str(cores)], False),
                                  ("loaded_all_cores", ["--threads", str(cores)], True)):
        out = work / name
        load = busy_loops(cores) if loaded else []
        try:
            subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", "imdb", "--data", str(data), "--out",
                            str(out), "--epochs", "1", "--quiet", *threads], env=env, check=True)
        finally:
            stop_all(load)
        epoch = json.loads((out / "history.json").read_text())["epochs"][0]
        runs[name] = {"epoch_seconds": epoch["seconds"], "threads_at_epoch_end": epoch.get("threads")}
        print(f"busy machine: {name}: epoch {epoch['seconds']:.1f} s")
    ratio = runs["loaded_default"]["epoch_seconds"] / runs["idle_default"]["epoch_seconds"]
    return {"busy_machine_epoch_ratio": round(ratio, 2),
            "busy_machine_epoch_ratio_all_cores": round(runs["loaded_all_cores"]["epoch_seconds"]
                                                        / runs["idle_all_cores"]["epoch_seconds"], 2),
            "idle_default_vs_all_cores": round(runs["idle_default"]["epoch_seconds"]
                                               / runs["idle_all_cores"]["epoch_seconds"], 2),
            "data": described, "load": f"{cores} processes running `while True: pass`", "runs": runs,
            "command": "rnnkit train imdb --data SMALL --epochs 1 (default settings; all_cores: --threads N)"}


def run_server_catalogue(work: Path, env: dict) -> dict:
    """Hostile clients against a real `rnnkit serve` of every task's bundle (bench/hostile_clients.py)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from hostile_clients import run_hostile_clients

    work.mkdir(parents=True, exist_ok=True)
    return run_hostile_clients(work, env)


def run_fuzz(examples: int, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PROPERTY_TESTS,
                           "--hypothesis-show-statistics", "--hypothesis-seed=0"], cwd=ROOT,
                          env={**env, "RNNKIT_FUZZ_EXAMPLES": str(examples)}, capture_output=True, text=True)
    passing = [int(n) for n in re.findall(r"- (\d+) passing examples", proc.stdout)]
    failing = [int(n) for n in re.findall(r", (\d+) failing examples", proc.stdout)]
    print(f"fuzzing: {sum(passing)} examples passed, {sum(failing)} failed, in {len(passing)} properties")
    return {"fuzz_examples": sum(passing) + sum(failing), "fuzz_examples_failing": sum(failing),
            "fuzz_properties": len(passing), "fuzz_examples_per_property": examples, "fuzz_suite_exit": proc.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help=f"comma-separated tasks for the kill trials, from {', '.join(TASKS)} (default: all)")
    parser.add_argument("--trials", type=int, default=10, help="interrupted runs per task (default %(default)s)")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 per trial before the last resume")
    parser.add_argument("--per-split", type=int, default=200, help="generated reviews per split (imdb)")
    parser.add_argument("--text-chars", type=int, default=4000,
                        help="characters of generated text (charlm; default %(default)s)")
    parser.add_argument("--fuzz-examples", type=int, default=500, help="hypothesis examples per property")
    parser.add_argument("--seed", type=int, default=0, help="seed for the kill moments and the data")
    parser.add_argument("--suite-runs", type=int, default=1,
                        help="runs of the whole test suite with every core busy (default %(default)s; ~8 min each)")
    parser.add_argument("--busy-reviews", type=int, default=3000,
                        help="training reviews of the busy-machine epoch timing (0 = skip; default %(default)s)")
    parser.add_argument("--skip-server", action="store_true", help="leave out the hostile-client pass")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = [name for name in tasks if name not in TASKS]
    if not tasks or unknown:
        parser.error(f"--tasks takes a comma-separated list from {', '.join(TASKS)}; got {args.tasks!r}")

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="rnnkit-reliability-"))
    env = {**os.environ, "RNNKIT_CACHE": str(work / "cache")}
    try:
        kills = {name: run_kill_trials(TASKS[name], args, work / name, env) for name in tasks}
        bad = run_cases(BAD_INPUT_TESTS, work, env, "bad inputs")
        bundles = run_cases(HOSTILE_BUNDLE_TESTS, work, env, "hostile bundles")
        fuzz = run_fuzz(args.fuzz_examples, env)
        server = {} if args.skip_server else run_server_catalogue(work / "server", env)
        busy = run_busy_machine(args.busy_reviews, work / "busy", env, args.seed) if args.busy_reviews else {}
        suite = run_suite_under_load(args.suite_runs, env) if args.suite_runs else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "kills_injected": sum(k["kills_injected"] for k in kills.values()),
        "kills_resumed_identical": sum(k["kills_resumed_identical"] for k in kills.values()),
        "bad_inputs_tried": bad["tried"],
        "bad_inputs_handled": bad["handled"],
        "hostile_bundles_tried": bundles["tried"],
        "hostile_bundles_refused": bundles["handled"],
        "server_500s": server.get("server_500s"),
        "server_requests": server.get("server_requests"),
        "suite_runs_under_load": suite.get("suite_runs_under_load", 0),
        "suite_failures_under_load": suite.get("suite_failures_under_load"),
        "busy_machine_epoch_ratio": busy.get("busy_machine_epoch_ratio"),
        "fuzz_examples": fuzz["fuzz_examples"],
        "command": " ".join(["python bench/reliability.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "kill_trials": kills, "bad_inputs": bad, "hostile_bundles": bundles, "fuzz": fuzz,
        "hostile_clients": server, "busy_machine": busy, "suite_under_load": suite,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": _version("torch"), "numpy": np.__version__, "hypothesis": _version("hypothesis")},
        "commit": _git_commit(),
    }
    from rnnkit.fileio import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("kills_injected", "kills_resumed_identical", "bad_inputs_tried",
                                            "bad_inputs_handled", "hostile_bundles_tried", "hostile_bundles_refused",
                                            "server_500s", "suite_runs_under_load", "suite_failures_under_load",
                                            "busy_machine_epoch_ratio", "fuzz_examples", "seconds")}))
    for name, task_kills in kills.items():
        print(f"  {name}: {task_kills['kills_resumed_identical']} of {task_kills['kills_injected']} kills resumed "
              f"identical ({task_kills['trials_identical']} of {task_kills['trials']} trials)")
    print(f"written to {args.out}")
    return 0


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _git_commit() -> str | None:
    """HEAD, marked "+dirty" when the working tree holds uncommitted changes (they were measured too)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (head + ("+dirty" if dirty else "")) or None


if __name__ == "__main__":
    sys.exit(main())
