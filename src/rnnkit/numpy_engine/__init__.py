"""The NumPy engine: RNN, LSTM and GRU from scratch, forward and hand-written BPTT.

It never imports torch: it is the readable reference and the light runtime
(`predict`, `serve`). Modules, bottom up:

    cells      one time step of rnn / lstm / gru and its backward, as pure functions
    recurrent  a cell unrolled over time (masks, bidirectional, stacked) with BPTT
    layers     embedding, dense, dropout, pooling; torch.nn's initialisation
    losses     binary and categorical cross-entropy on logits
    optim      sgd (momentum), rmsprop, adam; clipping by global norm
    attention  Bahdanau (additive) and Luong (multiplicative) attention and their backward
    seq2seq    the encoder-decoder model
    models     the architectures of ModelConfig: build_model(config, tensors)
    gradcheck  central finite differences in float64, to check every backward
    blas       one BLAS thread inside the time loop; a helper thread for the chunks' matmuls (Overlap)
    inference  the inference-only forward of a many-to-one model (packed, no caches)
    input_table  the first layer's input share of frequent tokens, precomputed for scoring many texts
"""

from rnnkit.numpy_engine.models import BagOfWords, ManyToMany, ManyToOne, OneToMany, build_model, init_parameters
from rnnkit.numpy_engine.seq2seq import EncoderDecoder

__all__ = ["build_model", "init_parameters", "BagOfWords", "ManyToOne", "ManyToMany", "OneToMany", "EncoderDecoder"]
