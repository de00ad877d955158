"""Training a text classifier (many-to-one) on a user's labelled texts: the task's parts for `fit`.

Pipeline: texts -> `tokenize` -> a vocabulary built from the training split
only -> ids cut to `maxlen` -> length-bucketed batches -> embedding ->
recurrent layers -> pooling -> dense -> sigmoid (two classes), softmax (more),
or one sigmoid per tag (multi-label). With `ModelConfig(architecture="one_to_one")`
(`--model bow`) the recurrent layers and pooling are replaced by a bag of words:
the mean of the text's embeddings -> tanh(dense). A validation split (stratified, from the
training data unless the user gave one) picks the best epoch and drives early
stopping; a test split, when given, is only read after training.

Pretrained word vectors (`PretrainedEmbeddings`, --embeddings FILE): after the
vocabulary is built, the file's vectors of its words (`rnnkit.data.embeddings`)
replace those rows of the freshly initialised embedding on either engine (the
others, and the zero <pad> row, stay as initialised); the embedding size is
the file's. Frozen, the embedding is left out of the optimizer (torch:
requires_grad False; numpy: the model's `frozen` names), so neither updates
nor weight decay touch it. The coverage is printed, saved in the bundle's
settings ("embeddings") and its model card, and the vectors' digest is part of
the run's identity (a resume with other vectors is refused).

Losses (the same on both engines): binary cross-entropy, cross-entropy, or the
mean binary cross-entropy over tags; with class weights each example counts
w[its class] and the loss is sum(w l) / sum(w).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.batching import Batch
from rnnkit.data.embeddings import WordVectors, read_word_vectors
from rnnkit.data.labelled import LabelledTexts, class_counts, class_weights, stratified_split
from rnnkit.data.vocab import Vocab
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.classify.data import encode, make_batches, targets, with_words, word_counts
from rnnkit.tasks.classify.scoring import metrics, probabilities
from rnnkit.tasks.classify.pretrained import PretrainedEncoder
from rnnkit.tasks.classify.settings import ClassifySettings, PretrainedEmbeddings
from rnnkit.training.fit import EngineParts, TaskTraining, fingerprint, fit


class ClassifyTraining(TaskTraining):
    """Labelled texts -> a classifier. `model_config`'s vocabulary and output sizes are set from the data,
    and its embedding size from `embeddings`' file when given."""

    task = "classify"

    def __init__(self, data: LabelledTexts, model_config: ModelConfig, settings: ClassifySettings, batch_size: int,
                 validation_fraction: float, valid: LabelledTexts | None = None,
                 embeddings: PretrainedEmbeddings | None = None, packed: bool = False,
                 init: PretrainedEncoder | None = None) -> None:
        if init is not None and embeddings is not None:
            raise ConfigError("--init starts the embedding from the pretrained bundle; leave out --embeddings")
        if init is not None and model_config.architecture == "one_to_one":
            raise ConfigError("--init starts a recurrent classifier from a trained encoder, and a bag of words "
                              "(--model bow) has no recurrent layers; leave out --init (--embeddings FILE starts "
                              "its embedding from word vectors)")
        self.data, self.given_valid, self.packed, self.init = data, valid, packed, init
        self.base_config, self.text_settings = model_config, settings
        self.batch_size, self.validation_fraction = batch_size, validation_fraction
        self.embeddings = embeddings
        # a text in, scores out: recurrent (many_to_one, the default), or a bag of words (one_to_one)
        self.architecture = "one_to_one" if model_config.architecture == "one_to_one" else "many_to_one"
        self.vectors: WordVectors | None = None
        self.settings = settings.to_json()

    def setup(self, rng: np.random.Generator) -> None:
        """The validation split (stratified), the vocabulary of the training split, ids and targets, and the
        pretrained vectors of the vocabulary's words."""
        if self.given_valid is None:
            train_idx, val_idx = stratified_split(self.data.labels, self.validation_fraction, rng)
            self.train, self.val = self.data.subset(train_idx), self.data.subset(val_idx)
        else:
            self.train, self.val = self.data, self.given_valid
        counts = word_counts(self.train.texts)
        vocab = Vocab.build(counts, max_size=self.text_settings.vocab_size) if self.init is None else self.init.vocab
        self.vocab = vocab.to_json()
        if self.init is not None:
            known = sum(n for word, n in counts.items() if vocab.encode([word])[0] != 1)
            self.init_token_coverage = known / max(1, sum(counts.values()))
            self.settings = {**self.settings, "init": {**self.init.summary(),
                                                       "token_coverage": round(self.init_token_coverage, 4)}}
        self.train_seqs, self.train_targets, self.train_dropped = self._encoded(self.train, vocab)
        self.val_seqs, self.val_targets, self.val_dropped = self._encoded(self.val, vocab)
        if not len(self.train_seqs) or not len(self.val_seqs):
            raise DataError("no training or no validation text has a word the tokenizer keeps; check the text column")
        self.class_weights = None
        if self.text_settings.class_weights == "balanced":
            self.class_weights = class_weights(class_counts(self.train.labels), list(self.text_settings.labels))
        embedding_dim = self.base_config.embedding_dim
        if self.embeddings is not None:
            self.vectors = read_word_vectors(self.embeddings.path, vocab.tokens, self.embeddings.dim, counts,
                                             progress=self.progress)
            embedding_dim = self.vectors.dim
            self.settings = {**self.settings,
                             "embeddings": {**self.vectors.summary(), "frozen": self.embeddings.freeze}}
        self.model_config = dataclasses.replace(self.base_config, vocab_size=len(vocab),
                                                output_size=self.text_settings.output_size,
                                                architecture=self.architecture, embedding_dim=embedding_dim)
        if self.init is not None:
            self.model_config = self.init.model_config(self.model_config)

    def _encoded(self, split: LabelledTexts, vocab) -> tuple[list[np.ndarray], np.ndarray, int]:
        sequences = encode(split.texts, vocab)
        keep = with_words(sequences)
        return [sequences[i] for i in keep], targets([split.labels[i] for i in keep], self.text_settings), \
            len(sequences) - len(keep)

    def fingerprint(self) -> str:
        vectors = [] if self.vectors is None else [self.vectors.digest]  # the vectors the model starts from
        if self.init is not None:
            vectors.append(self.init.digest)  # the encoder it starts from
        return fingerprint(self.train.texts, [str(x) for x in self.train.labels], self.val.texts,
                           [str(x) for x in self.val.labels], *vectors)

    def batches(self, epoch: int, rng: np.random.Generator) -> list[Batch]:
        return make_batches(self.train_seqs, self.train_targets, self.text_settings, self.batch_size, rng)

    def validate(self, logits) -> dict:
        """Validation loss, accuracy and macro-F1, given a logits(ids, lengths) -> (N, O) function."""
        scores = metrics(probabilities(logits, self.val_seqs, self.text_settings), self.val_targets,
                         self.text_settings)
        return {k: v for k, v in scores.items() if k != "report"}

    def describe(self, engine: str, parts: EngineParts) -> str:
        s = self.text_settings
        head = {"binary": "sigmoid", "multiclass": "softmax", "multilabel": "a sigmoid per tag"}[s.kind]
        dropped = self.train_dropped + self.val_dropped
        note = f"; {dropped} text(s) without a known word left out" if dropped else ""
        if self.vectors is not None:
            note += (f"; pretrained vectors {self.vectors.describe()}, "
                     f"{'frozen' if self.embeddings.freeze else 'fine-tuned'}")
        if self.init is not None:
            note += f"; {self.init.describe()}, {self.init_token_coverage:.1%} of training tokens known to it"
        return (f"training on {len(self.train_seqs):,} texts, validating on {len(self.val_seqs):,} ({engine} "
                f"engine); {len(s.labels)} {'tags' if s.multi_label else 'classes'}; model: "
                f"{self.model_config.describe()} -> {head}{note}")

    def _pretrained(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids (n,), vectors (n, E)) of the vocabulary words the file has; None without --embeddings."""
        if self.vectors is None:
            return None
        ids = np.flatnonzero(self.vectors.found)
        return ids, self.vectors.vectors[ids]

    # ------------------------------------------------------------------ engines

    def torch_parts(self, config: TrainConfig, device) -> EngineParts:
        import torch
        import torch.nn.functional as F

        from rnnkit.torch_engine import build_model, export_tensors

        kind = self.text_settings.kind
        weights = None if self.class_weights is None else torch.from_numpy(self.class_weights).to(device)

        def loss_and_correct(logits, y):
            if kind == "multilabel":
                loss = F.binary_cross_entropy_with_logits(logits, y)
                return loss, ((logits > 0) == (y > 0.5)).all(dim=1).sum().item()
            if kind == "binary":
                z = logits[:, 0]
                if weights is None:
                    loss = F.binary_cross_entropy_with_logits(z, y)
                else:
                    w = weights[y.long()]
                    loss = (F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).sum() / w.sum()
                return loss, ((z > 0).float() == y).sum().item()
            y = y.long()
            return F.cross_entropy(logits, y, weight=weights), (logits.argmax(dim=1) == y).sum().item()

        def step(model, batch: Batch):
            ids, lengths = torch.from_numpy(batch.ids).to(device), torch.from_numpy(batch.lengths).to(device)
            logits = model(ids, lengths, packed=self.packed)
            loss, correct = loss_and_correct(logits, torch.from_numpy(batch.labels).to(device))
            return loss, len(batch.index), {"accuracy": correct}

        def validate(model) -> dict:
            return self.validate(lambda ids, lengths: model(torch.from_numpy(ids).to(device),
                                                            torch.from_numpy(lengths).to(device)).cpu().numpy())

        model = build_model(self.model_config).to(device)
        pretrained = self._pretrained()
        if pretrained is not None:
            weight = model.embedding.weight  # (V, E); the <pad> row is never among the ids
            with torch.no_grad():
                weight[torch.from_numpy(pretrained[0]).to(device)] = torch.from_numpy(pretrained[1]).to(weight)
            weight.requires_grad_(not self.embeddings.freeze)  # frozen: no gradient, not in the optimizer
        if self.init is not None:
            self.init.copy_into(model.shared_parameters())
        return EngineParts(model, step, validate, export_tensors)

    def numpy_parts(self, config: TrainConfig) -> EngineParts:
        from rnnkit.numpy_engine import build_model
        from rnnkit.numpy_engine.losses import binary_cross_entropy_with_logits, cross_entropy_with_logits

        kind, weights = self.text_settings.kind, self.class_weights

        def step(model, batch: Batch, rng: np.random.Generator):
            logits = model.forward(batch.ids, batch.lengths, train=True, rng=rng)  # (N, O)
            y = batch.labels
            if kind == "multilabel":
                loss, dlogits = binary_cross_entropy_with_logits(logits, y)
                correct = int(np.sum(np.all((logits > 0) == (y > 0.5), axis=1)))
            elif kind == "binary":
                example_weights = None if weights is None else weights[y.astype(np.int64)]
                loss, dlogits = binary_cross_entropy_with_logits(logits, y[:, None], example_weights)
                correct = int(np.sum((logits[:, 0] > 0) == (y > 0.5)))
            else:
                ids = y.astype(np.int64)
                loss, dlogits = cross_entropy_with_logits(logits, ids, class_weights=weights)
                correct = int(np.sum(logits.argmax(axis=1) == ids))
            return loss, len(batch.index), {"accuracy": correct}, model.backward(dlogits)

        def validate(model) -> dict:
            return self.validate(lambda ids, lengths: model.forward(ids, lengths))

        model = build_model(self.model_config, rng=np.random.default_rng(config.seed))
        pretrained = self._pretrained()
        if pretrained is not None:
            model.params["embedding.weight"][pretrained[0]] = pretrained[1]  # in place: the layer holds it
            if self.embeddings.freeze:
                model.frozen.add("embedding.weight")  # the backend's optimizer leaves it alone
        if self.init is not None:
            self.init.copy_into(model.params)
        return EngineParts(model, step, validate, lambda model: {k: v.copy() for k, v in model.params.items()})


def train(data: LabelledTexts, model_config: ModelConfig, train_config: TrainConfig, settings: ClassifySettings,
          out_dir: str | Path, valid: LabelledTexts | None = None, test: LabelledTexts | None = None,
          command: str | None = None, progress: bool = True, resume: bool = False, engine: str = "torch",
          deterministic: bool = False, overwrite: bool = False, embeddings: PretrainedEmbeddings | None = None,
          packed: bool = False, init: PretrainedEncoder | None = None) -> dict:
    """Train a classifier on `data`; the best model is saved to `out_dir`, with its report and model card.

    `valid` replaces the stratified validation split carved from `data`; `test` (read only after
    training) is what the report and the card are about (else the validation split, and they say so).
    `embeddings` starts the embedding from pretrained word vectors (their size replaces model_config's).
    `init` starts the embedding and recurrent layers (and the vocabulary) from a trained bundle's.
    `packed` (torch) runs the recurrent layers on packed sequences instead of masked padded batches
    (same results; slower on CPU, see bench/packing.py).
    Returns {"best": the best epoch's validation metrics, "report": the evaluation written to the bundle}.
    """
    from rnnkit.tasks.classify.report import write_report
    from rnnkit.training import distributed

    training = ClassifyTraining(data, model_config, settings, train_config.batch_size,
                                train_config.validation_fraction, valid, embeddings, packed, init)
    best = fit(training, train_config, out_dir, engine=engine, resume=resume, overwrite=overwrite,
               progress=progress, deterministic=deterministic)
    if not distributed.setup(engine, train_config.device).is_main:
        return {"best": best, "report": None}
    split, name = (test, "test") if test is not None else (training.val, "validation")
    report = write_report(out_dir, split, name, training, train_config, engine, command)
    if progress:
        print(f"{name} split: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} "
              f"({report['count']} texts); report, confusion matrix and model card in {out_dir}", file=sys.stderr)
    return {"best": best, "report": report}
