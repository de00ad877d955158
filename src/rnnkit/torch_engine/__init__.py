"""The PyTorch engine: the models of `rnnkit.config.ModelConfig` as nn.Modules, for fast training.

    from rnnkit.torch_engine import build_model, export_tensors, load_tensors
    model = build_model(config)                 # nn.Module
    tensors = export_tensors(model)             # shared names -> float32 numpy arrays
    load_tensors(model, tensors)                # the inverse; checks names and shapes
"""

from rnnkit.torch_engine.models import BagOfWords, ManyToMany, ManyToOne, OneToMany, build_model
from rnnkit.torch_engine.seq2seq import EncoderDecoder
from rnnkit.torch_engine.recurrent import StackedRecurrent
from rnnkit.torch_engine.weights import export_tensors, load_tensors

__all__ = ["build_model", "export_tensors", "load_tensors", "BagOfWords", "ManyToOne", "ManyToMany", "OneToMany",
           "EncoderDecoder", "StackedRecurrent"]
