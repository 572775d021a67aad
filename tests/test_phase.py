"""Phase portraits of a two-unit RNN: fixed points checked on paper and against the cell and
autograd; the braille renderer drawn and measured."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from rnn_tui.engine.phase import PhaseError, fixed_points, iterate, portrait
from rnn_tui.ui.widgets.braille_plot import BrailleCanvas, arrow, render_phase


def test_contracting_map_has_one_stable_point():
    fps = fixed_points(0.5 * np.eye(2), np.zeros(2), "tanh")
    assert len(fps) == 1
    np.testing.assert_allclose(fps[0].h, 0.0, atol=1e-12)
    np.testing.assert_allclose(sorted(fps[0].eigenvalues.real), [0.5, 0.5])
    assert fps[0].kind == "stable"


def test_two_memories_per_unit_nine_points_on_paper():
    # W = 2I, u = 0: each unit solves h = tanh(2h) on its own: h in {-a, 0, a}, a = 0.957...
    a = 0.9575040240772687
    assert np.tanh(2 * a) == pytest.approx(a, abs=1e-12)
    fps = fixed_points(2 * np.eye(2), np.zeros(2), "tanh")
    assert len(fps) == 9
    kinds = {(round(f.h[0], 6), round(f.h[1], 6)): f.kind for f in fps}
    r = round(a, 6)
    assert kinds[(0.0, 0.0)] == "unstable"  # eigenvalues 2, 2
    assert kinds[(r, 0.0)] == kinds[(0.0, -r)] == "saddle"  # 2 (1 - a^2) < 1 and 2
    assert kinds[(r, r)] == kinds[(-r, r)] == kinds[(-r, -r)] == "stable"
    stable = next(f for f in fps if f.kind == "stable")
    np.testing.assert_allclose(np.abs(stable.eigenvalues), [2 * (1 - a * a)] * 2, rtol=1e-9)


def test_identity_and_relu():
    W = np.array([[0.5, 0.2], [-0.1, 0.3]])
    u = np.array([1.0, -2.0])
    (fp,) = fixed_points(W, u, "identity")
    np.testing.assert_allclose(fp.h, np.linalg.solve(np.eye(2) - W, u), atol=1e-10)
    np.testing.assert_allclose(sorted(np.abs(fp.eigenvalues)), sorted(np.abs(np.linalg.eigvals(W))))
    (fp,) = fixed_points(0.5 * np.eye(2), np.array([1.0, -1.0]), "relu")
    np.testing.assert_allclose(fp.h, [2.0, 0.0], atol=1e-10)  # h1 = 0.5 h1 + 1; h2 = relu(-1) = 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=6, max_size=6), st.sampled_from(["tanh", "sigmoid"]))
def test_fixed_points_satisfy_the_cell_and_autograd_jacobian(vals, activation):
    torch = pytest.importorskip("torch")
    from rnn_tui.engine.cells import rnn_cell

    W = np.array(vals[:4]).reshape(2, 2)
    u = np.array(vals[4:])
    fps = fixed_points(W, u, activation)
    assert fps, "a continuous map of a bounded square into itself has a fixed point"
    Wt = torch.tensor(W)
    for fp in fps:
        h = torch.tensor(fp.h, requires_grad=True)
        h_next, _ = rnn_cell(torch.zeros(1, dtype=torch.float64), h, torch.zeros(2, 1, dtype=torch.float64), Wt,
                             torch.tensor(u), None, activation)
        assert torch.allclose(h_next, h.detach(), atol=1e-9)
        J = torch.autograd.functional.jacobian(
            lambda v: rnn_cell(torch.zeros(1, dtype=torch.float64), v, torch.zeros(2, 1, dtype=torch.float64), Wt,
                               torch.tensor(u), None, activation)[0],
            h.detach(),
        ).numpy()
        ev = np.linalg.eigvals(J)
        np.testing.assert_allclose(sorted(np.abs(ev)), sorted(np.abs(fp.eigenvalues)), atol=1e-9)
    for a in fps:
        for b in fps:
            assert a is b or np.linalg.norm(a.h - b.h) > 1e-6


def test_portrait_from_a_trace_and_errors():
    torch = pytest.importorskip("torch")
    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.phase import portrait_from_trace
    from rnn_tui.engine.trace import run_trace

    cfg = ModelConfig(cell="rnn", input_size=3, hidden_size=2, output_size=3, vocab_size=3)
    model = build_model(cfg, seed=0)
    tr = run_trace(model, torch.tensor([0, 1, 1, 1, 2]), None, dtype="float64")
    p = portrait_from_trace(tr, 2)
    assert p.path.shape == (6, 2) and p.input_label == tr.tokens[2]
    # holding input 1 fixed from h_1, the map reproduces the trace's h_2 and h_3
    np.testing.assert_allclose(iterate(p.W, p.u, "tanh", tr.layers[0].h[0], 2)[1:], tr.layers[0].h[1:3], atol=1e-12)
    with pytest.raises(PhaseError, match="2 hidden units"):
        cfg3 = ModelConfig(cell="rnn", input_size=3, hidden_size=3, output_size=3, vocab_size=3)
        portrait_from_trace(run_trace(build_model(cfg3, seed=0), torch.tensor([0]), None), 0)
    with pytest.raises(PhaseError, match="outside"):
        portrait_from_trace(tr, 9)


def test_braille_canvas_dots_and_lines():
    c = BrailleCanvas(2, 1, (0.0, 1.0, 0.0, 1.0))
    from rich.style import Style

    c.dot(0, 0, Style())
    c.dot(3, 3, Style())
    assert c.to_text().plain == "\u2801\u2880"
    c = BrailleCanvas(3, 2, (0.0, 1.0, 0.0, 1.0))
    c.line((0.0, 0.0), (1.0, 1.0), Style())
    text = c.to_text().plain.split("\n")
    assert text[0][-1] != " " and text[1][0] != " "  # from bottom-left to top-right
    assert [arrow(1, 0), arrow(0, 1), arrow(-1, 0), arrow(0, -1), arrow(1, 1)] == ["→", "↑", "←", "↓", "↗"]


@pytest.mark.parametrize("size", [(20, 6), (60, 18), (120, 40)])
def test_render_phase_fits_and_shows_everything(size):
    W, H = size
    p = portrait(2 * np.eye(2), np.zeros(2), "tanh", path=iterate(2 * np.eye(2), np.zeros(2), "tanh", [0.1, 0.05], 3))
    text = render_phase(p, W, H)
    lines = text.plain.split("\n")
    assert len(lines) == H
    assert all(cell_len(line) <= W for line in lines)
    body = "\n".join(lines[:-2])
    assert "●" in body and "○" in body and "+" in body and "◉" in body
    if W >= 60:
        assert any(ch in body for ch in "→↗↑↖←↙↓↘")
        assert any(0x2801 <= ord(ch) <= 0x28FF for ch in body)  # the braille path
        assert "stable" in lines[-2]
