"""A character LM's model on either engine behind one step function: (ids, state) -> (logits, state).

The step functions are the language models' shared ones (`rnnkit.tasks.lm`); they are named here too.
"""

from __future__ import annotations

from rnnkit.tasks.lm import StepFn, bundle_step, numpy_step, torch_step

__all__ = ["StepFn", "bundle_step", "numpy_step", "torch_step"]
