"""Conditional language model (one-to-many): a text from a label, e.g. a review that reads positive.

    settings.py   CondLMSettings (labels, max_len, vocab_size, softmax, ...), condlm_config
    data.py       labelled texts -> vocabulary, label ids, batches of whole texts (masked padding)
    engines.py    the model on either engine: the label's initial state (and vector), a StepFn, validation scoring
    sampling.py   several texts at once, each from its label's state, each ending at <eos>
    training.py   CondLMTraining: the task's parts for `rnnkit.training.fit`; train()
    predictor.py  ConditionalLM: generate, stream, generate_many

The model is `architecture="one_to_many"`: the label as a one-hot vector v (K,)
sets the initial state through tanh(bridge); then a word LM's stack and output
layer, whose first layer also reads v beside every word's embedding
(`condition="every_step"`, the default: the label cannot fade from the state as
the text goes on; `CondLMSettings.condition="initial"` trains the initial-state
model alone, as bundles written before the option hold). Words, vocabulary, output layers and sampling are the word LM's
(`rnnkit.tasks.wordlm`); `rnnkit.lab.judge` scores what it writes with a classifier.
"""

from rnnkit.tasks.condlm.data import Corpus, TextBatch, make_batch, one_hot, prepare, text_batches
from rnnkit.tasks.condlm.predictor import ConditionalLM
from rnnkit.tasks.condlm.settings import DEFAULTS, CondLMSettings, condlm_config
from rnnkit.tasks.condlm.training import CondLMTraining, train

__all__ = ["ConditionalLM", "CondLMSettings", "CondLMTraining", "train", "Corpus", "TextBatch", "prepare",
           "text_batches", "make_batch", "one_hot", "DEFAULTS", "condlm_config"]
