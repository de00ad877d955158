import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.params import parameter_shapes
from rnnkit.torch_engine import build_model, export_tensors, load_tensors
from rnnkit.torch_engine.recurrent import StackedRecurrent, reverse_within_lengths

CASES = [(cell, layers, bi, pooling) for cell in ("rnn", "lstm", "gru") for layers, bi in ((1, False), (2, True))
         for pooling in ("last", "mean_max")]


def _batch(vocab=30, lengths=(7, 3, 5, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (len(lengths), max(lengths)), generator=g)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return ids, torch.tensor(lengths)


def test_reverse_within_lengths_leaves_padding_in_place():
    x = torch.arange(1, 6, dtype=torch.float32).view(1, 5, 1).repeat(2, 1, 1)
    out = reverse_within_lengths(x, torch.tensor([5, 3]))
    assert out[:, :, 0].tolist() == [[5, 4, 3, 2, 1], [3, 2, 1, 4, 5]]


@pytest.mark.parametrize("cell,layers,bi,pooling", CASES)
def test_padded_batch_equals_each_sequence_alone(cell, layers, bi, pooling):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=30, cell=cell, embedding_dim=6, hidden_size=5, num_layers=layers,
                         bidirectional=bi, pooling=pooling)
    model = build_model(config).eval()
    ids, lengths = _batch()
    batched = model(ids, lengths)
    alone = torch.cat([model(ids[i:i + 1, :n], lengths[i:i + 1]) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(model(ids, lengths, packed=True), batched, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stacked_bidirectional_matches_torch_nn_on_full_length_input(cell):
    torch.manual_seed(1)
    reference = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        4, 3, num_layers=2, bidirectional=True, batch_first=True)
    ours = StackedRecurrent(cell, 4, 3, num_layers=2, bidirectional=True)
    with torch.no_grad():
        for name, param in ours.shared_parameters("").items():
            param.copy_(getattr(reference, name))
    x = torch.randn(2, 6, 4)
    expected, expected_state = reference(x)
    got, state = ours(x)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(state, expected_state)


def test_final_states_are_exact_per_length_when_packed():
    torch.manual_seed(2)
    ours = StackedRecurrent("lstm", 4, 3, num_layers=1)
    x = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 2])
    _, (h, c) = ours(x, lengths, packed=True)
    _, (h_alone, c_alone) = ours(x[1:, :2])
    torch.testing.assert_close(h[:, 1:], h_alone)
    torch.testing.assert_close(c[:, 1:], c_alone)


def test_export_and_load_round_trip_with_shared_names():
    config = ModelConfig(vocab_size=20, cell="lstm", embedding_dim=4, hidden_size=3, num_layers=2, bidirectional=True)
    tensors = export_tensors(build_model(config))
    assert {k: v.shape for k, v in tensors.items()} == parameter_shapes(config)
    other = load_tensors(build_model(config), tensors)
    for name, value in export_tensors(other).items():
        np.testing.assert_array_equal(value, tensors[name])
    assert np.all(tensors["embedding.weight"][0] == 0)  # padding row


def test_many_to_many_carries_state_between_chunks():
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=10, cell="gru", embedding_dim=4, hidden_size=5, output_size=10,
                         architecture="many_to_many")
    model = build_model(config).eval()
    ids = torch.randint(0, 10, (2, 8))
    whole, _ = model(ids)
    first, state = model(ids[:, :5])
    second, _ = model(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
