"""The lab's model: one recurrent layer of the numpy engine and a linear head on its last state.

Key: N batch, T time, D input features, H hidden size, G gate blocks (1 rnn, 4 lstm, 3 gru).

    x (N, T, D) real-valued features -> Recurrent (rnn | lstm | gru) -> h_T (N, H) -> Dense -> y (N, 1)

Many to one, like the sentiment model, but its inputs are numbers, not token
ids, so there is no embedding: the engine's `Recurrent` and `Dense` layers are
used as they are. Parameter names are PyTorch's (`rnn.weight_ih_l0`,
`head.weight`, ...: `rnnkit.params.recurrent_shapes`), so the same tensors
load into `torch.nn.RNN/LSTM/GRU` + `nn.Linear` (the tests do).

Initialisation is torch.nn's, U(-1/sqrt(H), 1/sqrt(H)), with two knobs the
lab turns:

    recurrent_scale s   every (H, H) gate block of W_hh becomes s Q, Q a random
                        orthogonal matrix: all its singular values are s, so for
                        the vanilla RNN each step back multiplies the gradient by
                        diag(1 - h^2) s Q, of norm at most s
    forget_bias b       added to the LSTM's forget-gate bias: f starts near
                        sigmoid(b) (0.5 at b = 0, 0.73 at 1, 0.95 at 3)
"""

from __future__ import annotations

import numpy as np

from rnnkit.numpy_engine.cells import CELLS
from rnnkit.numpy_engine.layers import Dense, uniform_init
from rnnkit.numpy_engine.recurrent import Recurrent
from rnnkit.params import recurrent_shapes

PREFIX = "rnn."


def init_parameters(cell: str, input_size: int, hidden_size: int, rng: np.random.Generator,
                    recurrent_scale: float | None = None, forget_bias: float = 0.0,
                    dtype=np.float32) -> dict[str, np.ndarray]:
    """Fresh tensors for `SequenceRegressor` (see the module docstring for the two knobs)."""
    G, H = CELLS[cell].gates, hidden_size
    params = {name: uniform_init(rng, shape, 1.0 / np.sqrt(H), dtype)
              for name, shape in recurrent_shapes(PREFIX, G, input_size, H, 1, False).items()}
    if recurrent_scale is not None:
        params[f"{PREFIX}weight_hh_l0"] = np.concatenate(
            [recurrent_scale * _orthogonal(rng, H) for _ in range(G)]).astype(dtype)
    if cell == "lstm" and forget_bias:
        params[f"{PREFIX}bias_ih_l0"][H:2 * H] += forget_bias  # gate order i|f|g|o
    params["head.weight"] = uniform_init(rng, (1, H), 1.0 / np.sqrt(H), dtype)
    params["head.bias"] = uniform_init(rng, (1,), 1.0 / np.sqrt(H), dtype)
    return params


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random (n, n) orthogonal matrix (QR of a Gaussian, signs fixed so it is uniformly distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class SequenceRegressor:
    """x (N, T, D) -> y (N, 1): `cell` over the sequence, a linear head on the last hidden state.

    Holds `params` by reference (an optimizer updates them in place); `backward`
    returns the gradients under the same names.
    """

    def __init__(self, cell: str, params: dict[str, np.ndarray]) -> None:
        self.cell, self.params = cell, params
        self.recurrent = Recurrent(cell, *(params[f"{PREFIX}{kind}_l0"]
                                           for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        self.head = Dense(params["head.weight"], params["head.bias"])
        self._outputs = None

    @property
    def hidden_size(self) -> int:
        return self.params[f"{PREFIX}weight_hh_l0"].shape[1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, T, D) batch-first -> predictions (N, 1)."""
        x = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.params["head.weight"].dtype)  # (T, N, D)
        self._outputs, final = self.recurrent.forward(x)
        return self.head.forward(final[0])

    def backward(self, dy: np.ndarray, dh_steps: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """dy (N, 1) = dL/dy -> name -> gradient. dh_steps (T, N, H), if given, receives dL/dh_t for every t."""
        dh_last = self.head.backward(dy)  # (N, H): only the last state reaches the head
        doutputs = np.zeros_like(self._outputs)
        doutputs[-1] = dh_last
        self.recurrent.backward(doutputs, dh_steps=dh_steps)
        grads = {f"{PREFIX}{kind}_l0": g for kind, g in self.recurrent.grads.items()}
        grads.update({f"head.{kind}": g for kind, g in self.head.grads.items()})
        return grads


def mse(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """mean((y_hat - y)^2) over (N, 1) and its gradient 2 (y_hat - y) / N."""
    error = predictions - np.asarray(targets, predictions.dtype).reshape(predictions.shape)
    return float(np.mean(error * error)), (2.0 / error.size) * error
