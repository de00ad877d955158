"""Character-level language model (many-to-many): train on any text, evaluate, generate.

    settings.py   CharLMSettings (seq_len, precision, ...), resolve_precision, lm_config
    data.py       the text as training and validation ids, each epoch's chunks
    engines.py    the model on either engine as one step function (ids, state) -> (logits, state)
    scoring.py    nats and bits per character of a text
    sampling.py   generation options, temperature / top-k sampling, the same on either engine
    training.py   CharLMTraining: the task's parts for `rnnkit.training.fit`; train(); CarriedState
    predictor.py  CharLM: generate, stream, evaluate
"""

from rnnkit.tasks.charlm.data import epoch_chunks, prepare_text
from rnnkit.tasks.charlm.engines import StepFn, bundle_step, numpy_step, torch_step
from rnnkit.tasks.charlm.predictor import CharLM
from rnnkit.tasks.charlm.sampling import (MAX_LENGTH, MAX_PRIME_CHARS, check_generation, check_prime, one_thread,
                                          pick_next, sample_ids, start_ids)
from rnnkit.tasks.charlm.scoring import LN2, score_ids
from rnnkit.tasks.charlm.settings import DEFAULTS, PRECISIONS, CharLMSettings, autocast, lm_config, resolve_precision
from rnnkit.tasks.charlm.training import CarriedState, CharLMTraining, train

__all__ = ["CharLM", "CharLMSettings", "CharLMTraining", "CarriedState", "train", "prepare_text", "epoch_chunks",
           "StepFn", "bundle_step", "numpy_step", "torch_step", "MAX_LENGTH", "MAX_PRIME_CHARS", "check_generation",
           "check_prime", "one_thread", "pick_next", "sample_ids", "start_ids", "LN2", "score_ids", "PRECISIONS",
           "autocast", "lm_config", "resolve_precision", "DEFAULTS"]
