"""Scenario files: the shipped ones reproduce their hand-computed numbers; bad files say why."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rnn_tui.engine.scenario import ScenarioError, load_scenario
from rnn_tui.engine.subject import Spec, open_subject, trace_subject

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "scenarios"


def sigma(a: float) -> float:
    return 1 / (1 + math.exp(-a))


def trace_of(path: Path):
    return trace_subject(open_subject(Spec(scenario=str(path))))


def test_identity_rnn_by_hand():
    tr = trace_of(ASSETS / "identity-rnn.toml")
    np.testing.assert_allclose(tr.layers[0].h, [[2, 2], [6, 6], [16, 16]])
    np.testing.assert_allclose(tr.outputs, [[4, 4], [12, 12], [32, 32]])
    np.testing.assert_allclose(tr.step_losses, [math.log(2)] * 3, rtol=1e-12)
    assert tr.dtype == "float64"


def test_lstm_one_unit_by_hand():
    tr = trace_of(ASSETS / "lstm-one-unit.toml")
    lt = tr.layers[0]
    i, f, g, o = sigma(2.5), sigma(4.0), math.tanh(1.0), sigma(2.0)
    c1 = i * g
    h1 = o * math.tanh(c1)
    assert lt.gates["i"][0, 0] == pytest.approx(i, abs=1e-12)
    assert lt.gates["f"][0, 0] == pytest.approx(f, abs=1e-12)
    assert lt.c[0, 0] == pytest.approx(c1, abs=1e-12)
    assert lt.h[0, 0] == pytest.approx(h1, abs=1e-12)
    assert round(c1, 4) == 0.7038 and round(h1, 4) == 0.5345  # the numbers written in the file
    # later steps: x = 0, h_{t-1} has no weight, so every gate is constant and c decays by f
    i0, g0 = sigma(-2.5), 0.0
    c = c1
    for t in range(1, 5):
        c = f * c + i0 * g0
        assert lt.c[t, 0] == pytest.approx(c, abs=1e-12)
    # y_t = h_t; MSE against 0.5
    np.testing.assert_allclose(tr.step_losses, (lt.h[:, 0] - 0.5) ** 2, rtol=1e-12)


def test_gru_text_scenario_targets_are_next_characters():
    tr = trace_of(ASSETS / "gru-two-placements.toml")
    assert tr.tokens == list("abcabcab")
    assert tr.targets == [1, 2, 0, 1, 2, 0, 1, None]
    assert tr.config.input_mode == "onehot" and tr.config.vocab_size == 3


def test_same_weights_under_both_gru_placements(tmp_path):
    text = (ASSETS / "gru-two-placements.toml").read_text()
    (tmp_path / "tb.toml").write_text(text.replace('cell = "gru"', 'cell = "gru-textbook"'))
    a, b = trace_of(ASSETS / "gru-two-placements.toml"), trace_of(tmp_path / "tb.toml")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    ga, gb = a.layers[0].gates, b.layers[0].gates
    np.testing.assert_allclose(ga["r"][0], gb["r"][0], rtol=1e-12)  # same h_{-1} = 0, same r_0
    # at step 0, h_{-1} = 0, so the placements differ only in the bias: r ⊙ b_hn against b_hn
    b_hn = a.params["bias_hh_l0"][6:]
    np.testing.assert_allclose(a.layers[0].preacts["n"][0] - b.layers[0].preacts["n"][0],
                               (ga["r"][0] - 1) * b_hn, rtol=1e-10, atol=1e-12)
    assert not np.allclose(a.layers[0].h[1:], b.layers[0].h[1:])


BAD = {
    "not toml": ("[model\ncell=", "not valid TOML"),
    "no model": ("[input]\nvectors=[[1]]", "missing [model]"),
    "unknown cell": ('[model]\ncell="transformer"\n[input]\nvectors=[[1]]', "unknown cell"),
    "no input": ('[model]\ncell="rnn"', "missing [input]"),
    "both inputs": ('[model]\ncell="rnn"\n[input]\nvectors=[[1]]\ntext="a"', "exactly one of"),
    "ragged": ('[model]\ncell="rnn"\n[input]\nvectors=[[1],[1,2]]', "same length"),
    "size clash": ('[model]\ncell="rnn"\ninput_size=3\n[input]\nvectors=[[1,2]]', "input_size is 3"),
    "bad shape": (
        '[model]\ncell="rnn"\nhidden_size=2\n[weights]\nweight_hh_l0=[[1,2,3]]\n[input]\nvectors=[[1]]',
        "weight_hh_l0 has shape (1, 3), the model needs (2, 2)",
    ),
    "unknown tensor": ('[model]\ncell="rnn"\n[weights]\nweight_xx=1\n[input]\nvectors=[[1]]', "names no tensor"),
    "bad target": ('[model]\ncell="rnn"\noutput_size=2\n[input]\nvectors=[[1]]\ntargets=[5]', "class index"),
    "typo key": ('[model]\ncel="rnn"\n[input]\nvectors=[[1]]', "unknown [model] key"),
    "empty text": ('[model]\ncell="rnn"\n[input]\ntext=""', "non-empty"),
    "nan fill": ('[model]\ncell="rnn"\n[weights]\nfill=nan\n[input]\nvectors=[[1]]', "finite"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_scenarios_say_what_is_wrong(tmp_path, name):
    text, expected = BAD[name]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        trace_of(path)
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_binary_and_missing_files(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError, match="not a text file"):
        load_scenario(tmp_path / "bin.toml")
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="is a folder"):
        load_scenario(tmp_path)
