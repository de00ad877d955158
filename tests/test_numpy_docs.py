"""docs/numpy_engine.md: every ```python block runs, in order, in one namespace (the tutorial's code is real)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "numpy_engine.md"


def test_every_code_block_of_the_tutorial_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "numpy_engine_doc"}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as exc:  # name the block, so a broken snippet is easy to find
            raise AssertionError(f"{DOC.name}, code block {number} failed: {exc!r}\n{code}") from exc
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "(2, 4)"  # the shapes and the first loss the text promises
    first_loss = float(next(line for line in printed if line.startswith("0 ")).split()[1])
    assert abs(first_loss - np.log(2)) < 0.05
