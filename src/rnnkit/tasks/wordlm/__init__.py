"""Word-level language model (many-to-many) on any unlabelled text: pretraining for classifiers.

    settings.py   WordLMSettings (seq_len, vocab_size, softmax, ...), default_cutoffs, word_lm_config
    data.py       documents -> vocabulary, training documents, validation stream (held-out documents); chunks
    engines.py    the model on either engine: generation's StepFn, scoring's ScoreFn (targets only)
    scoring.py    nats per token and perplexity of a text
    sampling.py   the prime as word ids, generation options, words back to text
    training.py   WordLMTraining: the task's parts for `rnnkit.training.fit`; train()
    predictor.py  WordLM: generate, stream, evaluate

Reading the text is `rnnkit.data.documents.read_documents`; what the character
LM shares with this one (carried state, chunks, sampling) is `rnnkit.tasks.lm`.
"""

from rnnkit.tasks.wordlm.data import EOS_ID, Corpus, prepare
from rnnkit.tasks.wordlm.predictor import WordLM
from rnnkit.tasks.wordlm.scoring import score_ids
from rnnkit.tasks.wordlm.settings import DEFAULTS, SOFTMAXES, WordLMSettings, default_cutoffs, word_lm_config
from rnnkit.tasks.wordlm.training import WordLMTraining, train

__all__ = ["WordLM", "WordLMSettings", "WordLMTraining", "train", "Corpus", "prepare", "EOS_ID", "score_ids",
           "DEFAULTS", "SOFTMAXES", "default_cutoffs", "word_lm_config"]
