"""The tensor names and shapes a model config implies, shared by both engines.

`parameter_shapes(config)` is the contract: both engines produce exactly these
tensors, and a bundle is refused unless its weights match them one for one.
See `rnnkit.config` for the naming scheme.
"""

from __future__ import annotations

from rnnkit.config import ADAPTIVE_DIV, ModelConfig
from rnnkit.errors import ConfigError


def recurrent_shapes(prefix: str, cell_gates: int, input_size: int, hidden_size: int,
                     num_layers: int, bidirectional: bool) -> dict[str, tuple[int, ...]]:
    """Shapes of a (stacked, optionally bidirectional) recurrent block, PyTorch names.

    Layer 0 reads `input_size` features; layer L > 0 reads H * num_directions.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    directions = ("", "_reverse") if bidirectional else ("",)
    gh = cell_gates * hidden_size
    for layer in range(num_layers):
        d_in = input_size if layer == 0 else hidden_size * len(directions)
        for suffix in directions:
            shapes[f"{prefix}weight_ih_l{layer}{suffix}"] = (gh, d_in)
            shapes[f"{prefix}weight_hh_l{layer}{suffix}"] = (gh, hidden_size)
            shapes[f"{prefix}bias_ih_l{layer}{suffix}"] = (gh,)
            shapes[f"{prefix}bias_hh_l{layer}{suffix}"] = (gh,)
    return shapes


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor name of `config`'s model mapped to its shape."""
    c = config
    if c.architecture == "many_to_one":
        return _sequence_model_shapes(c, head_in=c.feature_size)
    if c.architecture == "many_to_many":
        return _sequence_model_shapes(c, head_in=c.hidden_size * c.num_directions)
    if c.architecture == "one_to_many":
        return _one_to_many_shapes(c)
    if c.architecture == "encoder_decoder":
        return _encoder_decoder_shapes(c)
    if c.architecture == "one_to_one":
        return bag_of_words_shapes(c)
    raise NotImplementedError(f"parameter_shapes does not know architecture {c.architecture!r} yet")


def bag_of_words_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """A one_to_one model: embedding (V, E), the mean of a text's embeddings -> dense (H, E), tanh -> head (O, H)."""
    return {"embedding.weight": (c.vocab_size, c.embedding_dim),
            "dense.weight": (c.hidden_size, c.embedding_dim), "dense.bias": (c.hidden_size,),
            "head.weight": (c.output_size, c.hidden_size), "head.bias": (c.output_size,)}


def _encoder_decoder_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Encoder: embedding (V, E) + stacked (bi)directional block of H per direction.

    Decoder: embedding (V_t, E) + unidirectional block of Hd = H * num_directions
    (same num_layers; it starts from the encoder's final state of each layer,
    directions concatenated) + head (V_t, Hd). Attention adds decoder.attention.*:
    bahdanau (additive, size A = Hd) also feeds the context to the decoder RNN
    (input E + Hd) and to the head (input Hd + Hd); luong ("general") adds W_a
    and the output combination W_c. Semantics: rnnkit.torch_engine.seq2seq.
    """
    hd = c.hidden_size * c.num_directions
    extra = hd if c.attention == "bahdanau" else 0
    shapes = {"encoder.embedding.weight": (c.vocab_size, c.embedding_dim)}
    shapes.update(recurrent_shapes("encoder.rnn.", c.gates, c.embedding_dim, c.hidden_size, c.num_layers,
                                   c.bidirectional))
    shapes["decoder.embedding.weight"] = (c.target_vocab_size, c.embedding_dim)
    shapes.update(recurrent_shapes("decoder.rnn.", c.gates, c.embedding_dim + extra, hd, c.num_layers, False))
    if c.attention == "bahdanau":
        shapes.update({"decoder.attention.query.weight": (hd, hd), "decoder.attention.key.weight": (hd, hd),
                       "decoder.attention.key.bias": (hd,), "decoder.attention.energy.weight": (1, hd)})
    elif c.attention == "luong":
        shapes.update({"decoder.attention.weight": (hd, hd), "decoder.attention.combine.weight": (hd, 2 * hd)})
    shapes["decoder.head.weight"] = (c.target_vocab_size, hd + extra)
    shapes["decoder.head.bias"] = (c.target_vocab_size,)
    return shapes


def check_one_to_many(c: ModelConfig) -> None:
    """A one_to_many model generates left to right and reads back its own tokens: one direction, and a head
    over the same vocabulary as its embedding."""
    if c.bidirectional:
        raise ConfigError("a one_to_many model generates left to right: use bidirectional=False")
    if c.output_size != c.vocab_size:
        raise ConfigError(f"a one_to_many model feeds its predictions back as input tokens, so output_size must "
                          f"equal vocab_size ({c.vocab_size}); got {c.output_size}")


def _one_to_many_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Bridge: the one input vector v (D_in = input_size) sets every layer's initial hidden state,
    h0 = tanh(W_b v + b_b) reshaped (L, N, H) (the cell state of an lstm starts at 0); then the
    many_to_many stack (unidirectional) over the tokens it generates, head (V, H). With
    condition "every_step" the first layer reads [embedding(x_t); v] at every step: rnn.weight_ih_l0 is
    (G*H, E + D_in)."""
    check_one_to_many(c)
    shapes = {"bridge.weight": (c.num_layers * c.hidden_size, c.input_size),
              "bridge.bias": (c.num_layers * c.hidden_size,)}
    shapes.update(_sequence_model_shapes(c, head_in=c.hidden_size))
    return shapes


def _sequence_model_shapes(c: ModelConfig, head_in: int) -> dict[str, tuple[int, ...]]:
    shapes = {"embedding.weight": (c.vocab_size, c.embedding_dim)}
    shapes.update(recurrent_shapes("rnn.", c.gates, c.rnn_input_size, c.hidden_size, c.num_layers, c.bidirectional))
    if c.output_layer == "tied":
        shapes.update(tied_shapes(c.output_size, c.embedding_dim, head_in))
    elif c.output_layer == "adaptive":
        shapes.update(adaptive_shapes(c.output_size, head_in, c.cutoffs))
    else:
        shapes["head.weight"] = (c.output_size, head_in)
        shapes["head.bias"] = (c.output_size,)
    return shapes


def tied_shapes(vocab_size: int, embedding_dim: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
    """A softmax whose output matrix is the embedding (V, E): its bias, and a projection (E, H) when H != E."""
    shapes = {"head.bias": (vocab_size,)}
    if hidden_size != embedding_dim:
        shapes["head.projection.weight"] = (embedding_dim, hidden_size)
    return shapes


def adaptive_sizes(vocab_size: int, hidden_size: int, cutoffs) -> list[tuple[int, int, int]]:
    """(first id, last id + 1, projection width) of each adaptive-softmax cluster, as torch sizes them."""
    bounds = [*cutoffs, vocab_size]
    return [(bounds[k], bounds[k + 1], int(hidden_size // ADAPTIVE_DIV ** (k + 1))) for k in range(len(cutoffs))]


def adaptive_shapes(vocab_size: int, hidden_size: int, cutoffs) -> dict[str, tuple[int, ...]]:
    """The tensors of an adaptive softmax (names of torch's AdaptiveLogSoftmaxWithLoss under "head.")."""
    shapes = {"head.weight": (cutoffs[0] + len(cutoffs), hidden_size), "head.bias": (cutoffs[0] + len(cutoffs),)}
    for k, (start, end, width) in enumerate(adaptive_sizes(vocab_size, hidden_size, cutoffs)):
        shapes[f"head.tail.{k}.0.weight"] = (width, hidden_size)
        shapes[f"head.tail.{k}.1.weight"] = (end - start, width)
    return shapes
