"""Sequence to sequence (encoder-decoder): train, translate, evaluate (exact match, BLEU), plot attention.

    settings.py       Seq2SeqSettings (token levels, lengths, teacher forcing)
    data.py           held-out / validation / training splits, vocabularies, batches
    engines.py        either engine behind the decoding functions (TorchBackend; numpy_backend.py: NumpyBackend)
    scoring.py        validation metrics, corpus BLEU
    training.py       Seq2SeqTraining: the task's parts for `rnnkit.training.fit`; train()
    predictor.py      Seq2SeqModel: translate, evaluate, plot_attention
"""

from rnnkit.tasks.seq2seq.data import (PairBatch, Splits, build_vocabs, encode_split, generated_splits, make_batches,
                                       pair_file_splits)
from rnnkit.tasks.seq2seq.engines import NumpyBackend, TorchBackend, make_backend
from rnnkit.tasks.seq2seq.predictor import Seq2SeqModel, plot_attention_weights
from rnnkit.tasks.seq2seq.scoring import EVAL_BATCH, corpus_bleu, validation_metrics
from rnnkit.tasks.seq2seq.settings import DATASETS, MAX_BEAM, MAX_OUTPUT_LEN, Seq2SeqSettings
from rnnkit.tasks.seq2seq.training import Seq2SeqTraining, train

__all__ = ["Seq2SeqSettings", "Seq2SeqModel", "Seq2SeqTraining", "train", "Splits", "PairBatch", "build_vocabs",
           "encode_split", "generated_splits", "make_batches", "pair_file_splits", "NumpyBackend", "TorchBackend",
           "make_backend", "plot_attention_weights", "EVAL_BATCH", "corpus_bleu", "validation_metrics", "DATASETS",
           "MAX_BEAM", "MAX_OUTPUT_LEN"]
