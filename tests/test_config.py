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


def test_condition_is_a_one_to_many_choice_that_widens_the_first_layer_and_old_configs_read_as_initial():
    fields = {"vocab_size": 10, "output_size": 10, "architecture": "one_to_many", "input_size": 3, "cell": "gru",
              "embedding_dim": 4, "hidden_size": 5, "num_layers": 2}
    old = ModelConfig.from_dict(fields)  # a config.json written before the field existed
    assert old.condition == "initial" and old.rnn_input_size == 4
    every = ModelConfig(**fields, condition="every_step")
    assert every.rnn_input_size == 7 and "at every step" in every.describe() and "at every step" not in old.describe()
    shapes, before = parameter_shapes(every), parameter_shapes(old)
    assert shapes["rnn.weight_ih_l0"] == (15, 7) and before["rnn.weight_ih_l0"] == (15, 4)
    assert {k: v for k, v in shapes.items() if k != "rnn.weight_ih_l0"} == \
        {k: v for k, v in before.items() if k != "rnn.weight_ih_l0"}  # layer 1 and the bridge are unchanged
    assert ModelConfig.from_dict(json.loads(dumps(every.to_dict()))) == every
    assert every.to_dict()["condition"] == "every_step" and old.to_dict()["condition"] == "initial"
    assert "condition" not in ModelConfig(vocab_size=10).to_dict()  # other architectures' config.json unchanged
    with pytest.raises(ConfigError, match="condition must be one of initial, every_step; got 'always'"):
        ModelConfig(**fields, condition="always")
    with pytest.raises(ConfigError, match="condition every_step is for a one_to_many model"):
        ModelConfig(vocab_size=10, output_size=10, architecture="many_to_many", condition="every_step")
