"""Sentiment of movie reviews (many-to-one): train, evaluate, predict, explain.

    settings.py   SentimentSettings (maxlen, truncating, padding, vocabulary size), LABELS
    data.py       batches, the stratified validation split, IMDB and generated reviews
    scoring.py    P(positive) through any engine's logits, binary metrics
    training.py   SentimentTraining: the task's parts for `rnnkit.training.fit`; train()
    predictor.py  SentimentModel: predict, explain, evaluate
"""

from rnnkit.tasks.sentiment.data import demo_data, imdb_split_for, imdb_train_split, make_batches, stratified_split
from rnnkit.tasks.sentiment.predictor import SentimentModel, prediction
from rnnkit.tasks.sentiment.scoring import EVAL_BATCH, binary_metrics, probabilities
from rnnkit.tasks.sentiment.settings import LABELS, SentimentSettings
from rnnkit.tasks.sentiment.training import SentimentTraining, train

__all__ = ["LABELS", "EVAL_BATCH", "SentimentSettings", "SentimentModel", "SentimentTraining", "train",
           "make_batches", "stratified_split", "binary_metrics", "probabilities", "prediction", "demo_data",
           "imdb_train_split", "imdb_split_for"]
