"""A head without bias: a scenario's `bias = false` means no bias anywhere (y = V h), unless
`head_bias = true` keeps the head's; and a model built that way has no head.bias at all."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.scenario import ScenarioError, parse_scenario
from rnn_tui.engine.subject import Spec, open_subject, trace_subject

TEXTBOOK = """
[model]
cell = "rnn"
activation = "identity"
input_size = 2
hidden_size = 2
output_size = 2
bias = false
{extra}
[weights]
fill = 1.0
[input]
vectors = [[1, 1], [1, 1], [2, 2]]
targets = [0, 1, 0]
"""


def trace_of(tmp_path, extra: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(TEXTBOOK.format(extra=extra))
    return trace_subject(open_subject(Spec(scenario=str(path))))


def test_no_bias_means_none_in_the_head_either(tmp_path):
    tr = trace_of(tmp_path)
    assert "head.bias" not in tr.params and not tr.config.head_bias
    np.testing.assert_allclose(tr.outputs, [[4, 4], [12, 12], [32, 32]])  # y = V h, not V h + 1


def test_head_bias_true_keeps_the_heads_bias(tmp_path):
    tr = trace_of(tmp_path, "head_bias = true")
    assert tr.config.head_bias and tr.params["head.bias"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(tr.outputs, [[5, 5], [13, 13], [33, 33]])  # fill sets it, as asked


def test_naming_head_bias_without_one_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TEXTBOOK.format(extra="").replace("fill = 1.0", 'fill = 1.0\n"head.bias" = 0.0'))
    with pytest.raises(ScenarioError, match="names no tensor of this model: head.bias"):
        open_subject(Spec(scenario=str(path)))


def test_head_bias_is_a_boolean_and_counts_in_the_parameters():
    assert ModelConfig(head_bias=False).num_parameters == ModelConfig().num_parameters - ModelConfig().output_size
    with pytest.raises(ScenarioError, match="head_bias must be true or false"):
        parse_scenario({"model": {"cell": "rnn", "head_bias": 1}, "input": {"vectors": [[1.0]]}})
