"""The default thread count gives way to other processes' load (rnnkit.training.threads)."""

from __future__ import annotations

import pytest

from rnnkit.training.threads import ThreadGovernor, free_cores, read_cpu_busy, usable_cpus


@pytest.mark.parametrize("others, cores, expected", [
    (0.0, 2, 2), (0.25, 2, 2), (0.5, 2, 1), (0.67, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (5.0, 2, 1),
    (0.0, 8, 8), (1.0, 8, 7), (2.6, 8, 5)])
def test_free_cores_leaves_a_core_to_each_busy_process(others, cores, expected):
    assert free_cores(others, cores) == expected


class Machine:
    """A fake clock and CPU counters: `run(seconds, ours, others)` advances them."""

    def __init__(self):
        self.now, self.busy, self.own = 0.0, 0.0, 0.0

    def run(self, seconds: float, ours: float, others: float) -> None:
        self.now += seconds
        self.own += ours * seconds
        self.busy += (ours + others) * seconds


def governor(machine: Machine, applied: list, most: int = 2) -> ThreadGovernor:
    g = ThreadGovernor(applied.append, most, interval=2.0, clock=lambda: machine.now,
                       busy=lambda: machine.busy, own=lambda: machine.own)
    g.cores = 2
    return g


def test_an_idle_machine_keeps_every_thread():
    machine, applied = Machine(), []
    g = governor(machine, applied)
    for _ in range(20):
        machine.run(1.0, ours=2.0, others=0.1)
        g.tick()
    assert applied == [] and g.threads == 2


def test_a_busy_process_takes_a_thread_and_gives_it_back_when_it_stops():
    machine, applied = Machine(), []
    g = governor(machine, applied)
    machine.run(2.0, ours=1.4, others=0.6)
    assert g.tick() is None  # one reading is not enough
    machine.run(2.0, ours=1.3, others=0.7)
    assert g.tick() == 1 and applied == [1]
    for _ in range(5):  # still busy: stays at one
        machine.run(2.0, ours=1.0, others=1.0)
        g.tick()
    assert applied == [1]
    machine.run(2.0, ours=1.0, others=0.0)
    assert g.tick() is None
    machine.run(2.0, ours=1.0, others=0.0)
    assert g.tick() == 2 and applied == [1, 2]
    assert [change[:2] for change in g.changes] == [(2, 1), (1, 2)]


def test_a_single_burst_changes_nothing():
    machine, applied = Machine(), []
    g = governor(machine, applied)
    for others in (0.0, 1.0, 0.0, 1.0, 0.0):
        machine.run(2.0, ours=1.5, others=others)
        g.tick()
    assert applied == []


def test_readings_come_only_after_the_interval():
    machine, applied = Machine(), []
    g = governor(machine, applied)
    for _ in range(30):  # 3 s: one reading (at 2 s), which only proposes the change
        machine.run(0.1, ours=1.0, others=1.0)
        g.tick()
    assert applied == []
    for _ in range(11):  # past 4 s: the second reading applies it
        machine.run(0.1, ours=1.0, others=1.0)
        g.tick()
    assert applied == [1]


def test_without_proc_stat_nothing_changes():
    machine, applied = Machine(), []
    g = ThreadGovernor(applied.append, 2, clock=lambda: machine.now, busy=lambda: None, own=lambda: machine.own)
    for _ in range(10):
        machine.run(3.0, ours=1.0, others=2.0)
        assert g.tick() is None
    assert applied == []


def test_proc_stat_is_read_on_linux():
    busy = read_cpu_busy(usable_cpus())
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert busy > 0


def test_training_gives_way_and_records_the_thread_count(tmp_path, monkeypatch, capsys):
    """A default run (`--threads 0`) asks the governor after every step and records the count per epoch."""
    import csv

    import rnnkit
    from rnnkit.training import threads as threads_module

    applied: list[int] = []

    class AlwaysBusy(ThreadGovernor):  # every reading: one other process on a core
        def __init__(self, set_threads, most, **_):
            machine = Machine()
            self._machine = machine
            super().__init__(lambda n: applied.append(n), 2, interval=0.0, clock=self._advance,
                             busy=lambda: machine.busy, own=lambda: machine.own)
            self.cores = 2

        def _advance(self) -> float:
            self._machine.run(1.0, ours=1.0, others=1.0)
            return self._machine.now

    monkeypatch.setattr(threads_module, "ThreadGovernor", AlwaysBusy)
    with open(tmp_path / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(120):
            writer.writerow([("great fine good " if i % 2 else "awful bad poor ") * 3, "pos" if i % 2 else "neg"])
    model = rnnkit.train("classify", data=tmp_path / "data.csv", out=tmp_path / "run", epochs=2, hidden=8,
                         embedding_dim=8, batch_size=16, engine="torch", quiet=False)
    assert applied == [1]
    assert [epoch["threads"] for epoch in model.history] == [1, 1]
    assert "threads -> 1: other processes are using the cores" in capsys.readouterr().err
