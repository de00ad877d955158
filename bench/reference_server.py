"""The reference for bench/serve.py: a sentiment server written the usual way, FastAPI + torch.

What a user would write from a tutorial to serve the same bundle without rnnkit's
server: a plain `nn.Module` (embedding -> bidirectional GRU/LSTM -> mean and max
over the real steps -> linear head) loading the bundle's safetensors weights, the
same tokenizer and vocabulary, and one `def` endpoint that runs the model on each
request under `torch.inference_mode()`. It answers POST /v1/predict {"text": ...}
with the same JSON shape as `rnnkit serve`, so one load script drives both.

    RNNKIT_REFERENCE_BUNDLE=runs/imdb uvicorn --app-dir bench reference_server:app --workers 2
    RNNKIT_REFERENCE_THREADS=1          # torch threads per worker (default: torch's own, every core)
    RNNKIT_REFERENCE_PRECISION=bf16     # the model under torch.autocast(bfloat16) (default fp32)

Only for the many-to-one classify bundles of `rnnkit train imdb` / `classify`
(one recurrent layer or more, pooling last | mean | max | mean_max).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from safetensors.torch import load_file
from torch import nn

from rnnkit.data.vocab import tokenize

BUNDLE = Path(os.environ.get("RNNKIT_REFERENCE_BUNDLE", "runs/imdb"))
if os.environ.get("RNNKIT_REFERENCE_THREADS"):
    torch.set_num_threads(int(os.environ["RNNKIT_REFERENCE_THREADS"]))
BF16 = os.environ.get("RNNKIT_REFERENCE_PRECISION", "fp32") == "bf16"


class Classifier(nn.Module):
    def __init__(self, model: dict):
        super().__init__()
        cells = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
        self.pooling = model["pooling"]
        self.embedding = nn.Embedding(model["vocab_size"], model["embedding_dim"], padding_idx=0)
        self.rnn = cells[model["cell"]](model["embedding_dim"], model["hidden_size"], model["num_layers"],
                                        batch_first=True, bidirectional=model["bidirectional"])
        width = model["hidden_size"] * (2 if model["bidirectional"] else 1)
        self.head = nn.Linear(width * (2 if self.pooling == "mean_max" else 1), model["output_size"])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # one text: ids (1, T)
        out, _ = self.rnn(self.embedding(ids))
        if self.pooling == "last":
            half = out.shape[-1] // 2
            features = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=-1) if self.rnn.bidirectional \
                else out[:, -1]
        else:
            parts = {"mean": [out.mean(1)], "max": [out.amax(1)], "mean_max": [out.mean(1), out.amax(1)]}
            features = torch.cat(parts[self.pooling], dim=-1)
        return self.head(features)


config = json.loads((BUNDLE / "config.json").read_text())
settings = config["settings"]
labels, maxlen = settings["labels"], settings["maxlen"]
index = {token: i for i, token in enumerate(json.loads((BUNDLE / "vocab.json").read_text())["tokens"])}
model = Classifier(config["model"])
model.load_state_dict(load_file(BUNDLE / "model.safetensors"))
model.eval()

app = FastAPI()


class Review(BaseModel):
    text: str


@app.post("/v1/predict")
def predict(review: Review):
    ids = [index.get(token, 1) for token in tokenize(review.text)] or [1]
    ids = ids[-maxlen:] if settings.get("truncating", "pre") == "pre" else ids[:maxlen]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
        logits = model(torch.tensor([ids]))[0].float()
    if len(logits) == 1:  # one sigmoid output: the second label's probability
        positive = torch.sigmoid(logits[0]).item()
        probabilities = [1 - positive, positive]
    else:
        probabilities = torch.softmax(logits, -1).tolist()
    best = max(range(len(labels)), key=probabilities.__getitem__)
    return {"prediction": {"label": labels[best], "score": probabilities[best],
                           "probabilities": dict(zip(labels, probabilities))}}
