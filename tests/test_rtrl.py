"""RTRL's forward-mode gradient equals BPTT's and torch autograd's; its cost record is sane."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from rnn_tui.engine.bptt_numpy import bptt_accumulated
from rnn_tui.engine.rtrl import bptt_cost, cost_comparison, rtrl, rtrl_cost
try:  # the shared problem builder and autograd reference live next door
    from test_bptt_numpy import CONFIGS, make_problem, torch_reference
except ImportError:  # tests/ collected as a package
    from tests.test_bptt_numpy import CONFIGS, make_problem, torch_reference


@settings(max_examples=60, deadline=None)
@given(CONFIGS)
def test_rtrl_matches_autograd(cfg):
    tensors, x, targets, h0 = make_problem(
        cfg["seed"], cfg["T"], cfg["I"], cfg["H"], cfg["O"], cfg["activation"], cfg["loss"], cfg["bias"], h0=cfg["h0"]
    )
    L, ref = torch_reference(tensors, x, targets, cfg["activation"], cfg["loss"], h0)
    res = rtrl(tensors, x, targets, cfg["activation"], cfg["loss"], h0)
    assert res.loss == pytest.approx(L, rel=1e-12, abs=1e-12)
    assert set(res.grads) == set(ref)
    for name, g in ref.items():
        np.testing.assert_allclose(res.grads[name], g, rtol=1e-9, atol=1e-10, err_msg=name)
    H, I = cfg["H"], cfg["I"]
    assert res.sensitivity_numbers == H * (H * H + H * I + H + H)


def test_cost_comparison_agrees_and_reports_the_textbook_scaling():
    tensors, x, targets, _ = make_problem(3, 12, 3, 6, 4, "tanh", "ce", True)
    cmp = cost_comparison(tensors, x, targets, repeats=1)
    assert cmp.max_abs_diff < 1e-12
    assert (cmp.T, cmp.H, cmp.I, cmp.O) == (12, 6, 3, 4)
    assert cmp.bptt.seconds > 0 and cmp.rtrl.seconds > 0
    assert cmp.rtrl.flops > cmp.bptt.flops
    # BPTT's memory grows with T, RTRL's does not; RTRL's work grows as H^4, BPTT's as H^2
    assert bptt_cost(200, 8, 3, 4)[1] == 2 * bptt_cost(100, 8, 3, 4)[1]
    assert rtrl_cost(200, 8, 3, 4)[1] == rtrl_cost(100, 8, 3, 4)[1]
    ratio_r = rtrl_cost(10, 64, 0, 0)[0] / rtrl_cost(10, 32, 0, 0)[0]
    ratio_b = bptt_cost(10, 64, 0, 0)[0] / bptt_cost(10, 32, 0, 0)[0]
    assert ratio_r == pytest.approx(16, rel=0.1) and ratio_b == pytest.approx(4)


def test_rtrl_equals_bptt_on_a_longer_sequence():
    tensors, x, targets, _ = make_problem(7, 40, 2, 5, 3, "sigmoid", "mse", True)
    a = rtrl(tensors, x, targets, "sigmoid", "mse")
    b = bptt_accumulated(tensors, x, targets, "sigmoid", "mse")
    for name in b.grads:
        np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=1e-10, atol=1e-13)
