"""Character-LM data: the text split into training and validation ids, and each epoch's chunks.

Key: N batch (parallel streams), T time steps (`seq_len`). The training ids are
laid out as N contiguous streams cut into T-step chunks (truncated BPTT: the
hidden state is carried from one chunk to the next and reset at each epoch's start).
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.text import CharVocab, split_text
from rnnkit.errors import DataError
from rnnkit.tasks.charlm.settings import CharLMSettings
from rnnkit.tasks.lm import epoch_chunks  # shared with the word LM; named here too

__all__ = ["prepare_text", "epoch_chunks"]

def prepare_text(text: str, validation_fraction: float, settings: CharLMSettings,
                 batch_size: int) -> tuple[CharVocab, np.ndarray, np.ndarray]:
    """(vocab built from the training part, train ids (M,), validation ids (M_val,)).

    Raises DataError when the text is too short for the batch layout.
    """
    if not text.strip():
        raise DataError("the text is empty (or only white space); a language model needs text to learn from")
    train_text, val_text = split_text(text, validation_fraction)
    if len(val_text) < 2:
        raise DataError(f"the text has only {len(text)} characters, too few to hold out a validation part; "
                        "use a longer text")
    vocab = CharVocab.build(train_text)
    train_ids = vocab.encode(train_text)
    needed = batch_size * settings.seq_len + 1
    if len(train_ids) < needed:
        raise DataError(f"the training part has {len(train_ids)} characters but --batch-size {batch_size} x "
                        f"--seq-len {settings.seq_len} needs at least {needed}; use a longer text or "
                        "smaller values")
    return vocab, train_ids, vocab.encode(val_text)
