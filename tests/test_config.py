import json

import pytest

from rnnkit.config import ModelConfig, TrainConfig, dumps
from rnnkit.errors import ConfigError
from rnnkit.params import parameter_shapes


def test_model_config_round_trips_through_json():
    config = ModelConfig(vocab_size=500, cell="gru", num_layers=3, bidirectional=True, pooling="mean_max")
    assert ModelConfig.from_dict(json.loads(dumps(config.to_dict()))) == config


def test_train_config_round_trips_through_json():
    config = TrainConfig(epochs=3, optimizer="rmsprop", learning_rate=0.01, seed=7)
    assert TrainConfig.from_dict(json.loads(dumps(config.to_dict()))) == config


@pytest.mark.parametrize("field,value", [("cell", "transformer"), ("hidden_size", 0), ("num_layers", -1),
                                         ("dropout", 1.0), ("pooling", "attention"), ("vocab_size", True)])
def test_model_config_rejects_bad_values_naming_the_field(field, value):
    kwargs = {"vocab_size": 100, field: value}
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        ModelConfig(**kwargs)


def test_unknown_fields_suggest_a_newer_version():
    with pytest.raises(ConfigError, match="newer rnnkit"):
        ModelConfig.from_dict({"vocab_size": 10, "quantum": True})


def test_feature_size_counts_directions_and_pooling():
    assert ModelConfig(vocab_size=10, hidden_size=8).feature_size == 8
    assert ModelConfig(vocab_size=10, hidden_size=8, bidirectional=True).feature_size == 16
    assert ModelConfig(vocab_size=10, hidden_size=8, bidirectional=True, pooling="mean_max").feature_size == 32


def test_parameter_shapes_follow_pytorch_names_and_gate_counts():
    shapes = parameter_shapes(ModelConfig(vocab_size=10, cell="lstm", embedding_dim=4, hidden_size=3,
                                          num_layers=2, bidirectional=True))
    assert shapes["embedding.weight"] == (10, 4)
    assert shapes["rnn.weight_ih_l0"] == (12, 4)
    assert shapes["rnn.weight_ih_l1_reverse"] == (12, 6)
    assert shapes["rnn.bias_hh_l1"] == (12,)
    assert shapes["head.weight"] == (1, 6)
    gru = parameter_shapes(ModelConfig(vocab_size=10, cell="gru", hidden_size=3, embedding_dim=4))
    assert gru["rnn.weight_hh_l0"] == (9, 3)
