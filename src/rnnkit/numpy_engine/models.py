"""The architectures of `rnnkit.config.ModelConfig` in NumPy, forward and backward.

Key: N batch, T time, V vocabulary, E embedding size, H hidden size, K
directions, O outputs. Public inputs and outputs are batch-first, as in the
torch engine; inside, the recurrent layers run time-major (T, N, ·).

    many_to_one    ids (N, T), lengths (N,) -> embedding -> dropout -> stacked
                   recurrent layers -> pooling over real steps -> dropout -> head
                   -> logits (N, O)                        (sentiment)
    many_to_many   ids (N, T) [, state] -> embedding -> dropout -> stacked
                   recurrent layers -> dropout -> head at every step
                   -> logits (N, T, O), final state        (character and word LMs;
                   the head may be tied to the embedding or an adaptive
                   softmax: `softmax`; `loss` trains on the targets' log p)
    one_to_many    features (N, D_in) -> tanh(bridge) -> initial state (L, N, H);
                   tokens (N, T) = <s> y_1 .. -> the many_to_many stack
                   (condition "every_step": the first layer reads
                   [embedding; features] at every step) -> logits (N, T, V);
                   `generate` feeds back its own tokens
    encoder_decoder  `rnnkit.numpy_engine.seq2seq.EncoderDecoder`
    one_to_one     ids (N, T), lengths (N,) -> embedding -> dropout -> mean over
                   each text's tokens (a bag of words: order ignored, padding
                   left out) -> tanh(dense) -> dropout -> head -> logits (N, O)

The torch engine (`rnnkit.torch_engine.models`) computes the same functions;
tests hold the two equal. A model holds its parameters by reference in
`params` (name -> array, names of `rnnkit.params`), so an optimizer updating
them in place changes the model; `backward` returns the gradients under the
same names. A sequence model's `frozen` names the parameters training leaves
as they are (torch's requires_grad=False): the training backend gives them to
no optimizer (no update, no weight decay, no share in gradient clipping).
"""

from __future__ import annotations

import numpy as np

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import inference
from rnnkit.numpy_engine.layers import Dense, Dropout, Embedding, Pooling, embedding_init, token_mask, uniform_init
from rnnkit.numpy_engine.recurrent import StackedRecurrent, StackStepper
from rnnkit.numpy_engine.seq2seq import EncoderDecoder
from rnnkit.numpy_engine.softmax import TiedOutput, output_layer
from rnnkit.params import check_one_to_many, parameter_shapes


def init_parameters(config: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Fresh parameters for `config`, initialised as torch.nn does (see `layers`).

    dtype float64 gives models that compute in float64 throughout (gradient checks).
    """
    params, shapes = {}, parameter_shapes(config)
    for name, shape in shapes.items():
        if name.endswith("embedding.weight"):
            params[name] = embedding_init(rng, shape, config.padding_idx, dtype)
        elif name == "head.bias" and config.output_layer == "tied":  # its weight is the embedding: start at 0
            params[name] = np.zeros(shape, dtype)
        elif ".weight_" in name or ".bias_" in name:  # recurrent: U(-1/sqrt(H), 1/sqrt(H))
            hidden = shape[0] // config.gates  # recurrent shapes are (G*H, ...) and (G*H,)
            params[name] = uniform_init(rng, shape, 1.0 / np.sqrt(hidden), dtype)
        else:  # dense layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of the weight
            fan_in = shape[1] if len(shape) == 2 else shapes[name.replace("bias", "weight")][1]
            params[name] = uniform_init(rng, shape, 1.0 / np.sqrt(fan_in), dtype)
    return params


class _SequenceModel:
    """Embedding -> dropout -> stacked recurrent layers, shared by the sequence models."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
        c = config
        self.config, self.params = config, params
        self.frozen: set[str] = set()  # parameter names training must not change (e.g. pretrained embeddings)
        self.embedding = Embedding(params["embedding.weight"], c.padding_idx)
        self.dropout_in = Dropout(c.dropout)
        self.rnn = StackedRecurrent(c.cell, params, "rnn.", c.num_layers, c.bidirectional, c.dropout)
        self.dropout_out = Dropout(c.dropout)
        self.head = output_layer(c, params)  # Dense for every architecture but a tied or adaptive LM

    def _encode(self, ids: np.ndarray, lengths, state, train: bool, rng):
        """ids (N, T) -> outputs (T, N, K*H), final state."""
        x = self.dropout_in.forward(self.embedding.forward(ids), train, rng)
        return self.rnn.forward(x, lengths, state, train, rng)

    def _backward_encoder(self, doutputs: np.ndarray, dfinal=None) -> dict[str, np.ndarray]:
        dx, self.initial_state_gradient = self.rnn.backward(doutputs, dfinal)
        return self._backward_embedding(dx)

    def _backward_embedding(self, dx: np.ndarray) -> dict[str, np.ndarray]:
        """dx (T, N, E) into the dropped-out embeddings -> every parameter's gradient."""
        self.embedding.backward(self.dropout_in.backward(dx))
        if isinstance(self.head, TiedOutput):  # one tensor, two uses: the lookup's gradient plus the output's
            self.embedding.grads["weight"] += self.head.embedding_grad
        return {"embedding.weight": self.embedding.grads["weight"], **self.rnn.named_gradients(),
                **{f"head.{name}": grad for name, grad in self.head.grads.items()}}


class ManyToOne(_SequenceModel):
    """A sequence in, one prediction out (sentiment)."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
        super().__init__(config, params)
        self.pooling = Pooling(config.pooling, config.hidden_size, config.bidirectional)

    def forward(self, ids: np.ndarray, lengths: np.ndarray, train: bool = False,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """ids (N, T) post-padded, lengths (N,) -> logits (N, O). `rng` drives dropout when training."""
        ids, lengths = np.asarray(ids), np.asarray(lengths)
        outputs, _ = self._encode(ids, lengths, None, train, rng)
        features = self.pooling.forward(outputs, lengths)
        return self.head.forward(self.dropout_out.forward(features, train, rng))

    def infer(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The logits of `forward` in evaluation mode, computed the fast way (`inference`): no padding,
        no caches, so nothing for `backward`. ids (N, T) post-padded, lengths (N,) -> logits (N, O)."""
        return inference.many_to_one_logits(self.config, self.params, ids, lengths)

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """dlogits (N, O) -> gradient of every parameter (name -> array, valid until the next backward)."""
        dfeatures = self.dropout_out.backward(self.head.backward(dlogits))
        return self._backward_encoder(self.pooling.backward(dfeatures))


class ManyToMany(_SequenceModel):
    """One prediction per input step (character or word LM); the state carries across chunks."""

    def forward(self, ids: np.ndarray, state=None, train: bool = False,
                rng: np.random.Generator | None = None):
        """ids (N, T) -> logits (N, T, O), final state (h (L*K, N, H), or (h, c) for lstm).

        An adaptive softmax gives log-probabilities, which are logits of the same distribution.
        """
        outputs, final = self._encode(np.asarray(ids), None, state, train, rng)
        logits = self.head.forward(self.dropout_out.forward(outputs, train, rng))  # (T, N, O)
        return logits.transpose(1, 0, 2), final

    def loss(self, ids: np.ndarray, targets: np.ndarray, state=None, train: bool = False,
             rng: np.random.Generator | None = None):
        """ids, targets (N, T) -> (mean -log p(target), log p(target) (N, T), final state).

        Only the targets' probabilities are computed where the head allows it (adaptive softmax);
        `loss_backward` then gives the gradients.
        """
        outputs, final = self._encode(np.asarray(ids), None, state, train, rng)
        x = self.dropout_out.forward(outputs, train, rng)  # (T, N, H)
        T, N, H = x.shape
        self._loss_shape = (T, N)
        loss, picked = self.head.loss(x.reshape(T * N, H), np.asarray(targets).T.reshape(T * N))
        return loss, picked.reshape(T, N).T, final

    def loss_backward(self, dfinal=None) -> dict[str, np.ndarray]:
        """The gradient of every parameter of the last `loss` (name -> array, valid until the next backward)."""
        dx = self.head.loss_backward()  # (T * N, H)
        T, N = self._loss_shape
        return self._backward_encoder(self.dropout_out.backward(dx.reshape(T, N, -1)), dfinal)

    def backward(self, dlogits: np.ndarray, dfinal=None) -> dict[str, np.ndarray]:
        """dlogits (N, T, O) [, gradient of the final state] -> gradient of every parameter.

        The gradient of the initial state (like the state) is left in `initial_state_gradient`.
        """
        doutputs = self.dropout_out.backward(self.head.backward(np.ascontiguousarray(dlogits.transpose(1, 0, 2))))
        return self._backward_encoder(doutputs, dfinal)


class OneToMany(ManyToMany):
    """One input vector in, a sequence out (e.g. a caption from an image's feature vector, a review from its
    label).

    The vector v sets the initial hidden state of every layer through a dense
    layer, h0 = tanh(W_b v + b_b) (an lstm's cell state starts at 0); the
    stack then reads the tokens: the true previous ones in training (teacher
    forcing), its own in `generate`. With `config.condition` "every_step" the
    first layer also reads v at every step, [embedding(x_t); v] (E + D_in
    features; dropout touches only the embedding), so the vector cannot fade
    from the state; `decode` then needs v too. The output layer is any of a
    language model's (`config.output_layer`: dense, tied or adaptive); `loss`
    scores only the targets a mask keeps (padding left out).
    """

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
        check_one_to_many(config)
        super().__init__(config, params)
        self.bridge = Dense(params["bridge.weight"], params["bridge.bias"])
        self.stepper = StackStepper(config.cell, params, "rnn.", config.num_layers)
        self.every_step = config.condition == "every_step"
        self._h0 = self._dfeatures_steps = None

    def initial_state(self, features: np.ndarray):
        """features (N, D_in) -> h0 (L, N, H), or (h0, c0) for lstm."""
        N, L, H = features.shape[0], self.config.num_layers, self.config.hidden_size
        self._h0 = np.tanh(self.bridge.forward(features))  # (N, L*H), layer-major blocks
        h0 = np.ascontiguousarray(self._h0.reshape(N, L, H).transpose(1, 0, 2))
        return (h0, np.zeros_like(h0)) if self.config.cell == "lstm" else h0

    def forward(self, features: np.ndarray, tokens: np.ndarray, train: bool = False,
                rng: np.random.Generator | None = None):
        """features (N, D_in), tokens (N, T) = <s> y_1 .. y_{T-1} -> logits (N, T, V), final state."""
        features = np.asarray(features)
        return self.decode(tokens, self.initial_state(features), features, train, rng)

    def decode(self, tokens: np.ndarray, state, features: np.ndarray | None = None, train: bool = False,
               rng: np.random.Generator | None = None):
        """tokens (N, T) read from `state` (an `initial_state`, or the final state of an earlier call)
        -> logits (N, T, V), final state: the many_to_many stack, for generating step by step.

        features (N, D_in): the input vector, read again at every step when the model is conditioned at
        every step (required then; unused by a model conditioned on its initial state only).
        """
        outputs, final = self._read(np.asarray(tokens), state, features, train, rng)
        logits = self.head.forward(self.dropout_out.forward(outputs, train, rng))  # (T, N, V)
        return logits.transpose(1, 0, 2), final

    def loss(self, features: np.ndarray, tokens: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None,
             train: bool = False, rng: np.random.Generator | None = None):
        """features (N, D_in), tokens, targets (N, T), mask (N, T) bool (None: every step counts)
        -> (mean -log p(target) over the kept steps, log p(target) (N, T) (0 where not kept), final state).

        Only the kept rows reach the output layer (an adaptive softmax scores just their targets);
        `loss_backward` gives the gradients.
        """
        features = np.asarray(features)
        outputs, final = self._read(np.asarray(tokens), self.initial_state(features), features, train, rng)
        x = self.dropout_out.forward(outputs, train, rng)  # (T, N, H)
        T, N, H = x.shape
        keep = np.ones(T * N, bool) if mask is None else np.asarray(mask, bool).T.reshape(T * N)
        loss, picked = self.head.loss(x.reshape(T * N, H)[keep], np.asarray(targets).T.reshape(T * N)[keep])
        log_p = np.zeros(T * N, dtype=picked.dtype)
        log_p[keep] = picked
        self._loss_rows = (x.shape, keep)
        return loss, log_p.reshape(T, N).T, final

    def _read(self, tokens: np.ndarray, state, features, train: bool, rng):
        """tokens (N, T) from `state` -> outputs (T, N, H), final state; the input vector beside every
        token's (dropped-out) embedding when conditioned at every step."""
        x = self.dropout_in.forward(self.embedding.forward(tokens), train, rng)  # (T, N, E)
        if self.every_step:
            v = self._step_features(features, tokens.shape[0]).astype(x.dtype, copy=False)
            x = np.concatenate([x, np.broadcast_to(v, (x.shape[0], *v.shape))], axis=2)  # (T, N, E + D_in)
        return self.rnn.forward(x, None, state, train, rng)

    def _step_features(self, features, rows: int) -> np.ndarray:
        """The input vector of each of `rows` rows, (N, D_in); ValueError when it is missing or mis-shaped."""
        shape = (rows, self.config.input_size)
        if features is None or np.shape(features) != shape:
            raise ValueError(f"a one_to_many model conditioned at every step reads its input vector at every step: "
                             f"give features of shape {shape} to decode; got "
                             f"{None if features is None else np.shape(features)}")
        return np.asarray(features)

    def _backward_encoder(self, doutputs: np.ndarray, dfinal=None) -> dict[str, np.ndarray]:
        dx, self.initial_state_gradient = self.rnn.backward(doutputs, dfinal)  # (T, N, E [+ D_in])
        E = self.config.embedding_dim
        self._dfeatures_steps = dx[:, :, E:].sum(axis=0) if self.every_step else None  # v read at every step
        return self._backward_embedding(np.ascontiguousarray(dx[:, :, :E]) if self.every_step else dx)

    def loss_backward(self, dfinal=None) -> dict[str, np.ndarray]:
        """The gradient of every parameter of the last `loss`, the bridge's included (name -> array)."""
        (T, N, H), keep = self._loss_rows
        dx = np.zeros((T * N, H), dtype=self.params["bridge.weight"].dtype)
        dx[keep] = self.head.loss_backward()  # padding rows get no gradient
        grads = self._backward_encoder(self.dropout_out.backward(dx.reshape(T, N, H)), dfinal)
        return {**grads, **self._backward_bridge()}

    def backward(self, dlogits: np.ndarray, dfinal=None) -> dict[str, np.ndarray]:
        """dlogits (N, T, V) -> gradient of every parameter; the features' gradient (N, D_in) is left in
        `features_gradient`."""
        grads = ManyToMany.backward(self, dlogits, dfinal)
        return {**grads, **self._backward_bridge()}

    def _backward_bridge(self) -> dict[str, np.ndarray]:
        """From the initial state's gradient through h0 = tanh(W_b v + b_b): the bridge's gradients."""
        dh0 = self.initial_state_gradient
        dh0 = dh0[0] if self.config.cell == "lstm" else dh0  # c0 is a constant 0
        L, N, H = dh0.shape
        dpre = dh0.transpose(1, 0, 2).reshape(N, L * H) * (1.0 - self._h0 ** 2)  # through tanh
        self.features_gradient = self.bridge.backward(dpre)
        if self._dfeatures_steps is not None:  # plus v's share of every step's input
            self.features_gradient = self.features_gradient + self._dfeatures_steps
        return {"bridge.weight": self.bridge.grads["weight"], "bridge.bias": self.bridge.grads["bias"]}

    def generate(self, features: np.ndarray, bos: int, steps: int, temperature: float = 0.0,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        """features (N, D_in) -> tokens (N, steps), each fed back as the next input.

        temperature 0 takes the most likely token (greedy); above 0, tokens are
        sampled from softmax(logits / temperature) with `rng`.
        """
        if temperature < 0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0; got {temperature!r}")
        if temperature > 0 and rng is None:
            raise ValueError("sampling needs a numpy Generator (pass rng=)")
        features = np.asarray(features)
        state = self.initial_state(features)
        v = self._step_features(features, len(features)) if self.every_step else None
        tokens = np.full(len(features), bos, dtype=np.int64)
        out = np.empty((len(features), steps), dtype=np.int64)
        for t in range(steps):
            x = self.embedding.weight[tokens]  # (N, E)
            if v is not None:  # [embedding; v], as in `decode`
                x = np.concatenate([x, v.astype(x.dtype, copy=False)], axis=1)
            top, state, _ = self.stepper.step(x, state)
            logits = self.head.forward(top)  # (N, V)
            if temperature == 0:
                tokens = logits.argmax(axis=1)
            else:
                z = logits / temperature
                p = np.exp(z - z.max(axis=1, keepdims=True))
                cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
                tokens = np.minimum((cumulative < rng.random((len(p), 1))).sum(axis=1), p.shape[1] - 1)
            out[:, t] = tokens
        return out


class BagOfWords:
    """A text in, one prediction out, with no recurrence: the one_to_one model (a bag of words).

    The text becomes one vector, the mean of its tokens' embeddings, so word order is lost ("not good,
    bad" and "not bad, good" are the same bag); a dense layer and the head read that vector:

        m = sum_t w_t e_t,  w_t = 1 / count at the text's tokens, 0 at padding     (N, E)
        a = tanh(m W_d^T + b_d)                                                     (N, H)
        logits = dropout(a) W^T + b                                                 (N, O)

    Parameters by reference in `params` (embedding.weight, dense.*, head.*); `frozen` as for the
    sequence models.
    """

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
        c = config
        self.config, self.params = config, params
        self.frozen: set[str] = set()
        self.embedding = Embedding(params["embedding.weight"], c.padding_idx)
        self.dropout_in = Dropout(c.dropout)
        self.dense = Dense(params["dense.weight"], params["dense.bias"])
        self.dropout_out = Dropout(c.dropout)
        self.head = Dense(params["head.weight"], params["head.bias"])
        self._weights = self._a = None

    def forward(self, ids: np.ndarray, lengths: np.ndarray, train: bool = False,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """ids (N, T) (post- or pre-padded), lengths (N,) -> logits (N, O). `rng` drives dropout when training."""
        ids, lengths = np.asarray(ids), np.asarray(lengths)
        x = self.dropout_in.forward(self.embedding.forward(ids), train, rng)  # (T, N, E)
        real = token_mask(ids, lengths, self.config.padding_idx)  # (N, T)
        self._weights = (real / np.maximum(real.sum(axis=1, keepdims=True), 1)).T.astype(x.dtype)  # w (T, N)
        m = np.einsum("tne,tn->ne", x, self._weights)  # m = sum_t w_t e_t
        self._a = np.tanh(self.dense.forward(m))
        return self.head.forward(self.dropout_out.forward(self._a, train, rng))

    def infer(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The logits of `forward` in evaluation mode, without caches (`inference.bag_of_words_logits`)."""
        return inference.bag_of_words_logits(self.config, self.params, ids, lengths)

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """dlogits (N, O) -> gradient of every parameter (name -> array, valid until the next backward)."""
        da = self.dropout_out.backward(self.head.backward(dlogits))
        dm = self.dense.backward(da * (1.0 - self._a ** 2))  # a = tanh(.): tanh' = 1 - a^2
        dx = self._weights[:, :, None] * dm[None]  # m = sum_t w_t e_t: de_t = w_t dm, (T, N, E)
        self.embedding.backward(self.dropout_in.backward(dx))
        return {"embedding.weight": self.embedding.grads["weight"],
                **{f"dense.{k}": g for k, g in self.dense.grads.items()},
                **{f"head.{k}": g for k, g in self.head.grads.items()}}


_BUILDERS = {"many_to_one": ManyToOne, "many_to_many": ManyToMany, "one_to_many": OneToMany,
             "encoder_decoder": EncoderDecoder, "one_to_one": BagOfWords}


def build_model(config: ModelConfig, tensors: dict[str, np.ndarray] | None = None,
                rng: np.random.Generator | None = None):
    """The numpy model for `config`, on `tensors` (e.g. a bundle's) or fresh weights drawn from `rng`."""
    if config.architecture not in _BUILDERS:
        raise NotImplementedError(f"the numpy engine has no {config.architecture!r} model yet")
    if tensors is None:
        tensors = init_parameters(config, rng if rng is not None else np.random.default_rng(0))
    return _BUILDERS[config.architecture](config, tensors)
