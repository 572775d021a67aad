"""The narration line, on traces built by hand so every number is known."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.narrate import NarrateError, events_at, narrate
from rnn_tui.engine.records import LayerTrace, Trace


def make_trace(cell: str, h, c=None, gates=None, *, probs=None, head="step", direction="forward", h0=None, c0=None,
               tokens=None, vocab=None):
    h = np.asarray(h, dtype=np.float64)
    T, H = h.shape
    names = ModelConfig(cell=cell).gates
    gates = {g: np.asarray(v, dtype=np.float64) for g, v in (gates or {}).items()}
    for g in names:
        gates.setdefault(g, np.full((T, H), 0.5))
    O = 3
    cfg = ModelConfig(cell=cell, input_size=O, hidden_size=H, output_size=O, vocab_size=O, head=head)
    rows = T if head == "step" else 1
    outputs = np.zeros((rows, O)) if probs is None else np.log(np.asarray(probs, dtype=np.float64))
    entry = LayerTrace(
        layer=0,
        direction=direction,
        h=h,
        c=None if c is None else np.asarray(c, dtype=np.float64),
        gates=gates,
        preacts={g: np.zeros((T, H)) for g in gates},
        dL_dh=np.zeros((T, H)),
        dL_dc=None if c is None else np.zeros((T, H)),
        dL_dpre=np.zeros((T, len(names) * H)),
        h0=np.zeros(H) if h0 is None else np.asarray(h0, dtype=np.float64),
        c0=None if c is None else (np.zeros(H) if c0 is None else np.asarray(c0, dtype=np.float64)),
    )
    return Trace(
        config=cfg,
        dtype="float64",
        tokens=tokens or [chr(ord("a") + k) for k in range(T)],
        inputs=np.zeros((T, O)),
        layers=[entry],
        outputs=outputs,
        targets=[None] * rows,
        step_losses=np.full(rows, np.nan),
        loss=float("nan"),
        params={},
        vocab=vocab,
    )


def test_forget_gate_closing_is_the_story():
    # unit 3's forget gate falls from 0.93 to 0.08 and its c from 0.91 to 0.12; unit 0 wiggles
    H = 4
    f = np.full((3, H), 0.9)
    f[2, 3] = 0.08
    f[1, 3] = 0.93
    c = np.zeros((3, H))
    c[:, 0] = [0.1, 0.15, 0.2]
    c[:, 3] = [0.9, 0.91, 0.12]
    h = np.tanh(c) * 0.5
    tr = make_trace("lstm", h, c, {"f": f, "i": np.full((3, H), 0.2), "o": np.full((3, H), 0.5)})
    n = narrate(tr, 2)
    assert n.main.kind == "gate" and n.main.unit == 3 and n.main.gate == "f"
    assert n.text == "t=2 'c': the forget gate of unit 3 closed (f 0.93→0.08): c dropped from 0.91 to 0.12"


def test_input_gate_opening_names_the_write():
    H = 2
    i = np.array([[0.1, 0.1], [0.95, 0.1]])
    c = np.array([[0.0, 0.0], [0.8, 0.01]])
    tr = make_trace("lstm", np.tanh(c) * 0.5, c, {"i": i, "f": np.full((2, H), 0.5), "o": np.full((2, H), 0.5)})
    e = narrate(tr, 1).main
    assert (e.kind, e.gate, e.unit) == ("gate", "i", 0)
    assert "input gate of unit 0 opened (i 0.10→0.95): c rose from 0.00 to 0.80" in narrate(tr, 1).text


def test_without_a_gate_crossing_the_largest_cell_change_wins():
    c = np.array([[0.0, 0.0, 0.0], [0.1, -0.6, 0.3]])
    tr = make_trace("lstm", np.tanh(c) * 0.1, c)  # all gates at 0.5: none crosses
    e = events_at(tr, 1)[0]
    assert e.kind == "c" and e.unit == 1 and e.before == 0.0 and e.after == pytest.approx(-0.6)
    assert narrate(tr, 1).text.startswith("t=1 'b': c of unit 1 dropped from 0.00 to -0.60")


def test_elman_sign_flip_and_quiet_step():
    h = np.array([[-0.8, 0.1], [0.7, 0.12], [0.7, 0.12]])
    tr = make_trace("rnn", h)
    assert narrate(tr, 1).text == "t=1 'b': h of unit 0 flipped from -0.80 to 0.70"
    quiet = narrate(tr, 2)
    assert quiet.main.kind == "quiet" and "little changed" in quiet.text


def test_first_step_compares_with_the_initial_state():
    h = np.array([[0.5, 0.0]])
    tr = make_trace("rnn", h, h0=[0.1, 0.0])
    assert narrate(tr, 0).text == "t=0 'a': h of unit 0 rose from 0.10 to 0.50; predicts '0' (0.33)"


def test_gru_update_gate():
    z = np.array([[0.9, 0.5], [0.05, 0.5]])
    h = np.array([[0.3, 0.0], [-0.7, 0.0]])
    tr = make_trace("gru", h, gates={"z": z, "r": np.full((2, 2), 0.5), "n": np.array([[0, 0], [-0.8, 0]])})
    text = narrate(tr, 1).text
    assert "the update gate of unit 0 closed (z 0.90→0.05): h takes the new candidate: h flipped from 0.30 to -0.70" in text


def test_reverse_direction_reads_the_next_step_as_previous():
    # reverse: step 0 is read last, after step 1; the initial state sits beyond the end
    h = np.array([[0.9, 0.0], [0.1, 0.0]])
    tr = make_trace("rnn", h, direction="reverse")
    e = events_at(tr, 0, direction="reverse")[0]
    assert (e.before, e.after) == (pytest.approx(0.1), pytest.approx(0.9))
    e_last = events_at(tr, 1, direction="reverse")[0]
    assert e_last.before == 0.0  # h0 of the reverse direction


def test_prediction_change_is_appended():
    h = np.array([[0.5, 0.0], [0.5, 0.3]])
    probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    tr = make_trace("rnn", h, probs=probs, vocab=["x", "y", "z"])
    text = narrate(tr, 1).text
    assert text == "t=1 'b': h of unit 1 rose from 0.00 to 0.30; the prediction changed from 'x' to 'y' (0.80)"


def test_pooled_head_answers_at_its_last_step():
    h = np.array([[0.5, 0.0], [0.6, 0.0]])
    tr = make_trace("rnn", h, probs=[[0.1, 0.1, 0.8]], head="last", vocab=["A", "B", "C"])
    assert "the model answers 'C' (0.80)" in narrate(tr, 1).text
    assert "answers" not in narrate(tr, 0).text


def test_bad_step_and_layer():
    tr = make_trace("rnn", np.zeros((2, 2)))
    with pytest.raises(NarrateError, match="outside"):
        narrate(tr, 5)
    with pytest.raises(NarrateError, match="no layer"):
        narrate(tr, 0, layer=3)


def test_on_a_real_trace_every_step_narrates():
    torch = pytest.importorskip("torch")
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    for cell in ("rnn", "lstm", "gru", "lstm-peephole", "gru-textbook"):
        cfg = ModelConfig(cell=cell, input_size=5, hidden_size=6, output_size=5, vocab_size=5, bidirectional=True)
        tr = run_trace(build_model(cfg, seed=1), torch.tensor([0, 1, 2, 3, 4, 0, 1]), [1, 2, 3, 4, 0, 1, None])
        for direction in ("forward", "reverse"):
            for t in range(tr.T):
                n = narrate(tr, t, direction=direction)
                assert n.text.startswith(f"t={t} ") and "\n" not in n.text


def test_a_diverged_step_is_named_as_such():
    import dataclasses

    import numpy as np
    import torch

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.narrate import narrate
    from rnn_tui.engine.trace import run_trace

    cfg = ModelConfig(cell="lstm", input_size=3, vocab_size=3, hidden_size=2, output_size=3)
    tr = run_trace(build_model(cfg, seed=0), torch.tensor([0, 1, 2]), [1, 2, None])
    lt = tr.layers[0]
    h = lt.h.copy()
    h[2, 1] = np.nan
    tr = dataclasses.replace(tr, layers=[dataclasses.replace(lt, h=h)])
    assert "diverged" in narrate(tr, 2).text
