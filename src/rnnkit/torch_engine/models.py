"""nn.Modules for each architecture of `ModelConfig`.

Semantics (the numpy engine implements the same, and tests hold them equal):
ids (N, T) post-padded -> embedding (N, T, E) -> dropout -> StackedRecurrent
-> (many-to-one) pooling over real steps -> dropout -> head -> logits (N, O);
(many-to-many) head at every step -> logits (N, T, O) (dense, tied to the
embedding, or an adaptive softmax's log-probabilities); (one-to-many) features
(N, D_in) -> tanh(bridge) -> initial state, then the many-to-many stack over the
tokens (teacher forcing; `generate` feeds back its own), its first layer reading
[embedding; features] at every step when conditioned at every step; (one-to-one, a bag of
words) ids (N, T) -> embedding -> dropout -> mean over each text's tokens ->
tanh(dense) -> dropout -> head -> logits (N, O).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.config import ADAPTIVE_DIV, ModelConfig
from rnnkit.params import check_one_to_many
from rnnkit.torch_engine.recurrent import StackedRecurrent
from rnnkit.torch_engine.seq2seq import EncoderDecoder


class _Sequence(nn.Module):
    """Embedding -> dropout -> stacked recurrent layers, shared by the sequence models."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.dropout = nn.Dropout(c.dropout)
        self.rnn = StackedRecurrent(c.cell, c.rnn_input_size, c.hidden_size, c.num_layers, c.bidirectional, c.dropout)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        named = {"embedding.weight": self.embedding.weight}
        named.update(self.rnn.shared_parameters("rnn."))
        named.update({"head.weight": self.head.weight, "head.bias": self.head.bias})
        return named


class ManyToOne(_Sequence):
    """A sequence in, one prediction out (sentiment): logits (N, O)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.feature_size, config.output_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, packed: bool = False) -> torch.Tensor:
        """ids (N, T) post-padded, lengths (N,) -> logits (N, O)."""
        x = self.dropout(self.embedding(ids))
        outputs, _ = self.rnn(x, lengths, packed=packed)
        return self.head(self.dropout(pool(outputs, lengths, self.config)))


class ManyToMany(_Sequence):
    """One prediction per input step (character or word LM): logits (N, T, O) and the final state.

    The output layer is `config.output_layer`: a dense layer, the embedding itself (`TiedOutput`), or
    an adaptive softmax (torch's AdaptiveLogSoftmaxWithLoss, div_value 4, with a head bias).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        features = c.hidden_size * c.num_directions
        if c.output_layer == "tied":
            self.head = TiedOutput(self.embedding, features)
        elif c.output_layer == "adaptive":
            self.head = nn.AdaptiveLogSoftmaxWithLoss(features, c.output_size, list(c.cutoffs),
                                                      div_value=float(ADAPTIVE_DIV), head_bias=True)
        else:
            self.head = nn.Linear(features, c.output_size)

    def forward(self, ids: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """ids (N, T) -> logits (N, T, O), final state (to carry into the next chunk).

        With targets (N, T): log p(target) (N, T) instead of the logits (an adaptive softmax then
        scores only what it must). An adaptive softmax's logits are log-probabilities.
        """
        outputs, state = self.rnn(self.dropout(self.embedding(ids)), None, state)
        return self._output(self.dropout(outputs), targets), state

    def _output(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, T, H) the stack's (dropped-out) outputs -> logits (N, T, O), or log p(target) (N, T)."""
        if targets is not None:
            return self.target_log_probs(x, targets)
        if self.config.output_layer == "adaptive":
            with _no_autocast(x):
                return self.head.log_prob(_full(x.reshape(-1, x.shape[-1]))).view(*x.shape[:2], -1)
        return self.head(x)

    def target_log_probs(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """x (N, T, H) outputs, targets (N, T) -> log p(target) (N, T), at least float32."""
        flat, y = x.reshape(-1, x.shape[-1]), targets.reshape(-1)
        if self.config.output_layer == "adaptive":  # in float32: it writes log-probs into a buffer of the input's dtype
            with _no_autocast(x):
                return self.head(_full(flat), y).output.view(targets.shape)
        log_p = torch.log_softmax(_full(self.head(flat)), dim=-1)
        return log_p.gather(1, y[:, None]).view(targets.shape)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        named = {"embedding.weight": self.embedding.weight, **self.rnn.shared_parameters("rnn.")}
        if self.config.output_layer == "tied":
            named["head.bias"] = self.head.bias
            if self.head.projection is not None:
                named["head.projection.weight"] = self.head.projection.weight
        elif self.config.output_layer == "adaptive":
            named.update({"head.weight": self.head.head.weight, "head.bias": self.head.head.bias})
            for k, tail in enumerate(self.head.tail):
                named.update({f"head.tail.{k}.0.weight": tail[0].weight, f"head.tail.{k}.1.weight": tail[1].weight})
        else:
            named.update({"head.weight": self.head.weight, "head.bias": self.head.bias})
        return named


def _no_autocast(x: torch.Tensor):
    """Autocast off on x's device: the adaptive softmax mixes its products' and its log-softmax's dtypes."""
    return torch.autocast(x.device.type, enabled=False)


def _full(x: torch.Tensor) -> torch.Tensor:
    """x in float32 when autocast left it in half or bfloat16 precision (else as it is: float64 stays)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class TiedOutput(nn.Module):
    """logits = p E^T + b, E the embedding's weight (V, E); p = x P^T (a projection (E, H), no bias) when
    H != E, else x. The bias starts at 0."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int) -> None:
        super().__init__()
        vocab_size, embedding_dim = embedding.weight.shape
        self.tied = [embedding]  # a list, so the embedding stays the model's module and not this one's too
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.projection = (nn.Linear(hidden_size, embedding_dim, bias=False) if hidden_size != embedding_dim
                           else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x if self.projection is None else self.projection(x)
        return nn.functional.linear(p, self.tied[0].weight, self.bias)


def pool(outputs: torch.Tensor, lengths: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Reduce outputs (N, T, K*H) over each sequence's real steps to features (N, F)."""
    lengths = lengths.to(outputs.device)
    if config.pooling == "last":
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
        final = outputs.gather(1, last).squeeze(1)  # forward direction: state at its own last step
        if config.bidirectional:
            h = config.hidden_size
            final = torch.cat([final[:, :h], outputs[:, 0, h:]], dim=-1)  # reverse: ends at t=0
        return final
    mask = (torch.arange(outputs.shape[1], device=outputs.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    mean = (outputs * mask).sum(1) / lengths[:, None].to(outputs.dtype)
    if config.pooling == "mean":
        return mean
    largest = outputs.masked_fill(~mask, float("-inf")).amax(1)
    return largest if config.pooling == "max" else torch.cat([mean, largest], dim=-1)


class OneToMany(ManyToMany):
    """One input vector in, a sequence out: features (N, D_in) set the initial state, h0 = tanh(bridge(v)); with
    `config.condition` "every_step" the first layer also reads v at every step, [embedding(x_t); v] (dropout on
    the embedding only), so `decode` needs v too.

    Same function as `rnnkit.numpy_engine.models.OneToMany` (tensor names in `rnnkit.params`); its output
    layer is any of a language model's (dense, tied or adaptive).
    """

    def __init__(self, config: ModelConfig) -> None:
        check_one_to_many(config)
        super().__init__(config)
        self.bridge = nn.Linear(config.input_size, config.num_layers * config.hidden_size)

    def initial_state(self, features: torch.Tensor):
        """features (N, D_in) -> h0 (L, N, H), or (h0, c0 = 0) for lstm."""
        n, c = features.shape[0], self.config
        h0 = torch.tanh(self.bridge(features)).view(n, c.num_layers, c.hidden_size).transpose(0, 1).contiguous()
        return (h0, torch.zeros_like(h0)) if c.cell == "lstm" else h0

    def forward(self, features: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor | None = None):
        """features (N, D_in), tokens (N, T) = <s> y_1 .. y_{T-1} -> logits (N, T, V), final state; with
        targets (N, T): log p(target) (N, T) instead of the logits (mask out padding yourself)."""
        return self.decode(tokens, self.initial_state(features), features, targets)

    def decode(self, tokens: torch.Tensor, state, features: torch.Tensor | None = None,
               targets: torch.Tensor | None = None):
        """tokens (N, T) read from `state` (an `initial_state`, or an earlier call's final state): the
        many_to_many stack, for generating step by step. features (N, D_in): the input vector, read again at
        every step when the model is conditioned at every step (required then; unused otherwise)."""
        x = self.dropout(self.embedding(tokens))  # (N, T, E)
        if self.config.condition == "every_step":
            shape = (tokens.shape[0], self.config.input_size)
            if features is None or tuple(features.shape) != shape:
                raise ValueError(f"a one_to_many model conditioned at every step reads its input vector at every "
                                 f"step: give features of shape {shape} to decode; got "
                                 f"{None if features is None else tuple(features.shape)}")
            v = features.to(x.dtype)[:, None, :].expand(-1, x.shape[1], -1)
            x = torch.cat([x, v], dim=-1)  # (N, T, E + D_in)
        outputs, state = self.rnn(x, None, state)
        return self._output(self.dropout(outputs), targets), state

    @torch.no_grad()
    def generate(self, features: torch.Tensor, bos: int, steps: int) -> torch.Tensor:
        """Greedy: features (N, D_in) -> tokens (N, steps), each fed back as the next input."""
        state = self.initial_state(features)
        tokens = torch.full((features.shape[0], 1), bos, dtype=torch.long, device=features.device)
        out = []
        for _ in range(steps):
            logits, state = self.decode(tokens, state, features)
            tokens = logits.argmax(-1)  # (N, 1)
            out.append(tokens)
        return torch.cat(out, dim=1)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        return {"bridge.weight": self.bridge.weight, "bridge.bias": self.bridge.bias, **super().shared_parameters()}


class BagOfWords(nn.Module):
    """A text in, one prediction out, no recurrence (one_to_one): the mean of the embeddings of its tokens
    (t < length and not padding, so pre-padded batches work too) -> tanh(dense) -> head: logits (N, O).

    Same function as `rnnkit.numpy_engine.models.BagOfWords`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.padding_idx)
        self.dropout = nn.Dropout(c.dropout)
        self.dense = nn.Linear(c.embedding_dim, c.hidden_size)
        self.head = nn.Linear(c.hidden_size, c.output_size)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, packed: bool = False) -> torch.Tensor:
        """ids (N, T), lengths (N,) -> logits (N, O). `packed` is accepted and ignored: there is no recurrence."""
        x = self.dropout(self.embedding(ids))  # (N, T, E)
        steps = torch.arange(ids.shape[1], device=ids.device)[None, :]
        real = (steps < lengths.to(ids.device)[:, None]) & (ids != self.config.padding_idx)
        weights = real.to(x.dtype) / real.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)  # (N, T)
        mean = torch.einsum("nte,nt->ne", x, weights)
        return self.head(self.dropout(torch.tanh(self.dense(mean))))

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        return {"embedding.weight": self.embedding.weight, "dense.weight": self.dense.weight,
                "dense.bias": self.dense.bias, "head.weight": self.head.weight, "head.bias": self.head.bias}


_BUILDERS = {"many_to_one": ManyToOne, "many_to_many": ManyToMany, "one_to_many": OneToMany,
             "encoder_decoder": EncoderDecoder, "one_to_one": BagOfWords}


def build_model(config: ModelConfig) -> nn.Module:
    """The nn.Module for `config`, of any architecture (initialised like torch.nn does; seed torch first)."""
    return _BUILDERS[config.architecture](config)
