"""Text classification on a user's own labelled texts (many-to-one): any labels, any file.

    settings.py   ClassifySettings: labels, single- or multi-label, maxlen, vocabulary, class weights;
                  PretrainedEmbeddings: the word vectors a training starts from (--embeddings)
    data.py       texts to ids, labels to targets, batches (reading files: rnnkit.data.labelled)
    scoring.py    class probabilities through either engine's logits, losses, metrics
    training.py   ClassifyTraining: the task's parts for `rnnkit.training.fit`; train()
    report.py     the bundle's evaluation.json, confusion_matrix.png and model card (README.md)
    predictor.py  ClassifierModel: predict (one schema), explain, evaluate
"""

from rnnkit.tasks.classify.predictor import ClassifierModel
from rnnkit.tasks.classify.settings import ClassifySettings, PretrainedEmbeddings
from rnnkit.tasks.classify.training import ClassifyTraining, train

__all__ = ["ClassifierModel", "ClassifySettings", "ClassifyTraining", "PretrainedEmbeddings", "train"]
