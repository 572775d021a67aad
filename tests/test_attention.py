"""The encoder-decoder with attention against a plain autograd loop written here, in float64.

The loop uses torch.nn's own cells (LSTMCell, GRUCell, RNNCell) or the minGRU / minLSTM equations
written out, the scores and softmax written out, and a zero probe on every encoder and decoder
state: the gradients of the loss with respect to the probes are the total dL/dh, through the
cells and through the attention. Checked against it: the trace of both halves (states, weights
α, outputs, loss, dL/dh in the decoder and in the encoder, every tensor's gradient), teacher
forcing and greedy decoding, rows of α held by hand, and the torch model that trains.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine.gradflow import analyze_gradflow, full_gradients
from rnn_tui.engine.tasks import get_task

TOL = dict(rtol=1e-9, atol=1e-11)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CELLS = ["lstm", "gru", "rnn", "mingru", "minlstm", "indrnn"]


def plain_cell(cell, P, sfx, x, state):
    """torch.nn's cell with the model's weights (or the written-out equations): (h, c or None)."""
    W_ih, b_ih = P[f"weight_ih{sfx}"], P.get(f"bias_ih{sfx}")
    W_hh, b_hh = P.get(f"weight_hh{sfx}"), P.get(f"bias_hh{sfx}")
    h, c = state
    if cell in ("lstm", "gru", "rnn"):
        fn = {"lstm": torch._VF.lstm_cell, "gru": torch._VF.gru_cell, "rnn": torch._VF.rnn_tanh_cell}[cell]
        if cell == "lstm":
            h, c = fn(x[None], (h[None], c[None]), W_ih, W_hh, b_ih, b_hh)
            return h[0], c[0]
        return fn(x[None], h[None], W_ih, W_hh, b_ih, b_hh)[0], None
    a = x @ W_ih.T + (b_ih if b_ih is not None else 0)
    H = h.shape[0]
    if cell == "indrnn":
        return torch.tanh(a + W_hh * h + (b_hh if b_hh is not None else 0)), None
    if cell == "mingru":
        z = torch.sigmoid(a[:H])
        return (1 - z) * h + z * a[H:], None
    f, i = torch.sigmoid(a[:H]), torch.sigmoid(a[H : 2 * H])
    return f / (f + i) * h + i / (f + i) * a[2 * H :], None


def plain(model, kind, x, fed, targets, V, forced=()):
    """The whole loss by a plain loop; returns its numbers and gradients."""
    cfg, H, L = model.config, model.config.hidden_size, model.config.num_layers
    P = {k: v.detach().double().clone().requires_grad_(True) for k, v in model.tensors().items()}
    S, T = len(x), len(fed)
    pe = torch.zeros(L, S, H, dtype=torch.float64, requires_grad=True)
    pd = torch.zeros(L, T, H, dtype=torch.float64, requires_grad=True)
    lstm = cfg.cell == "lstm"
    state = [(torch.zeros(H, dtype=torch.float64), torch.zeros(H, dtype=torch.float64) if lstm else None)] * L
    enc_states = [[None] * S for _ in range(L)]
    for s in range(S):
        inp = torch.nn.functional.one_hot(torch.tensor(int(x[s])), model.encoder_config.input_size).double()
        for k in range(L):
            h, c = plain_cell(cfg.cell, {n[8:]: v for n, v in P.items() if n.startswith("encoder.")}, f"_l{k}", inp, state[k])
            h = h + pe[k, s]
            state[k] = (h, c)
            enc_states[k][s] = h
            inp = h
    keys = torch.stack(enc_states[L - 1])  # (S, H)
    dec = {n[8:]: v for n, v in P.items() if n.startswith("decoder.")}
    held = dict(forced)
    alphas, logits = [], []
    for t in range(T):
        s_prev = state[L - 1][0]
        if t in held:
            a = torch.zeros(S, dtype=torch.float64)
            a[held[t]] = 1.0
        else:
            if kind == "dot":
                e = keys @ s_prev
            else:
                e = torch.tanh(s_prev @ P["attention.W"].T + keys @ P["attention.U"].T) @ P["attention.v"]
            a = torch.softmax(e, 0)
        alphas.append(a)
        ctx = a @ keys
        inp = torch.cat([torch.nn.functional.one_hot(torch.tensor(int(fed[t])), V).double(), ctx])
        for k in range(L):
            h, c = plain_cell(cfg.cell, dec, f"_l{k}", inp, state[k])
            h = h + pd[k, t]
            state[k] = (h, c)
            inp = h
        logits.append(dec["head.weight"] @ inp + dec["head.bias"])
    Y = torch.stack(logits)
    tgt = torch.tensor([t if t is not None else -100 for t in targets])
    loss = torch.nn.functional.cross_entropy(Y, tgt, ignore_index=-100)
    loss.backward()
    return dict(loss=loss.item(), Y=Y.detach(), alpha=torch.stack(alphas).detach(), enc=pe.grad, dec=pd.grad,
                keys=keys.detach(), grads={k: v.grad for k, v in P.items()})  # fmt: skip


def build(cell, kind, layers, seed, seq_len=5, hidden=4):
    task = get_task("reverse", attention=kind, seq_len=seq_len, symbols=4)
    model = task.build_model(task.model_config(cell=cell, hidden=hidden, layers=layers), seed=seed).double()
    with torch.no_grad():  # larger weights: sharper attention, saturated gates
        for p in model.tensors().values():
            p.mul_(1.7)
    return task, model


@SETTINGS
@given(cell=st.sampled_from(CELLS), kind=st.sampled_from(["dot", "additive"]), layers=st.integers(1, 2),
       seed=st.integers(0, 10_000), greedy=st.booleans(), hold=st.booleans())  # fmt: skip
def test_the_attention_trace_equals_a_plain_autograd_loop(cell, kind, layers, seed, greedy, hold):
    task, model = build(cell, kind, layers, seed)
    ex = task.example(seed=seed)
    forced = ((2, 0),) if hold else ()
    both = task.trace(model, ex, dtype="float64", decoder_inputs="greedy" if greedy else "teacher", forced=forced)
    dec, enc, rec = both.decoder, both.encoder, both.attention
    V = rec.y_width
    fed = np.asarray(dec.inputs)[:, :V].argmax(1)
    if not greedy:
        np.testing.assert_array_equal(fed, ex.dec_x.numpy())
    ref = plain(model, kind, ex.x.numpy(), fed, ex.targets, V, forced)
    np.testing.assert_allclose(dec.loss, ref["loss"], **TOL)
    np.testing.assert_allclose(dec.outputs, ref["Y"].numpy(), **TOL)
    np.testing.assert_allclose(rec.weights, ref["alpha"].numpy(), **TOL)
    np.testing.assert_allclose(rec.weights.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(rec.keys, ref["keys"].numpy(), **TOL)
    for k in range(layers):
        np.testing.assert_allclose(dec.layers[k].dL_dh, ref["dec"][k].numpy(), **TOL)
        np.testing.assert_allclose(enc.layers[k].dL_dh, ref["enc"][k].numpy(), **TOL)
    ours = {f"decoder.{k}": v for k, v in full_gradients(dec).items() if not k.startswith("attention.")}
    ours.update({k: v for k, v in full_gradients(dec).items() if k.startswith("attention.")})
    ours.update({f"encoder.{k}": v for k, v in full_gradients(enc).items() if not k.startswith("head.")})
    assert set(ours) == set(ref["grads"])
    for name, g in ref["grads"].items():
        np.testing.assert_allclose(ours[name], g.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_the_training_model_computes_the_trace_and_its_gradients(cell, kind):
    """EncoderDecoder.forward (what trains) gives the trace's logits, and autograd through it the
    plain loop's gradients, in a batch."""
    task, model = build(cell, kind, 2, 3)
    batch = task.sample(3, torch.Generator().manual_seed(1))
    out = task.forward(model, batch)
    loss = task.loss(out, batch)
    loss.backward()
    for b in range(3):
        ref = plain(model, kind, batch.x[b].numpy(), batch.dec_x[b].numpy(), batch.y[b].tolist(), len(task.dec_vocab))
        np.testing.assert_allclose(out[b].detach().numpy(), ref["Y"].numpy(), **TOL)
    # the batch loss is the mean over every scored token: the sum of the rows' gradients / 3
    grads = {k: 0 for k in model.tensors()}
    for b in range(3):
        ref = plain(model, kind, batch.x[b].numpy(), batch.dec_x[b].numpy(), batch.y[b].tolist(), len(task.dec_vocab))
        for k, g in ref["grads"].items():
            grads[k] = grads[k] + g / 3
    for k, p in model.tensors().items():
        if p.requires_grad:
            np.testing.assert_allclose(p.grad.numpy(), grads[k].numpy(), **TOL, err_msg=k)


def test_holding_attention_changes_what_follows_and_only_that():
    from rnn_tui.engine.encdec import hold_attention

    task, model = build("gru", "dot", 1, 5, seq_len=6)
    both = task.trace(model, dtype="float64", decoder_inputs="greedy")
    held = hold_attention(both.decoder, [(3, 0)])
    rec = held.extras["attention"]
    assert rec.forced == ((3, 0),)
    np.testing.assert_array_equal(rec.weights[3], np.eye(6)[0])
    np.testing.assert_allclose(rec.weights[:3], both.attention.weights[:3], **TOL)  # the past is untouched
    np.testing.assert_allclose(held.layers[0].h[:3], both.decoder.layers[0].h[:3], **TOL)
    assert not np.allclose(held.layers[0].h[3:], both.decoder.layers[0].h[3:])
    # held again with nothing held: the trace itself, to rounding
    again = hold_attention(both.decoder, [])
    np.testing.assert_allclose(again.outputs, both.decoder.outputs, **TOL)
    with pytest.raises(ValueError, match="encoder step 0..5"):
        hold_attention(both.decoder, [(0, 9)])


def test_the_attention_decoders_gradient_flow_includes_the_attention_path():
    """Each flow row ||d l_r / d h_k|| from sources pushed back through cells and attention: their
    scaled sum is the trace's dL/dh (which the plain loop checks), and the report says what
    ||J_t|| holds fixed."""
    from rnn_tui.engine.gradflow import source_gradients

    task, model = build("lstm", "additive", 2, 7)
    dec = task.trace(model, dtype="float64", decoder_inputs="teacher").decoder
    rows = [r for r, t in enumerate(dec.targets) if t is not None]
    per = source_gradients(dec, rows)
    for k, lt in enumerate(dec.layers):
        np.testing.assert_allclose(per[k].dh.sum(0) / len(rows), lt.dL_dh, **TOL)
    report = analyze_gradflow(dec)
    assert any("attention" in note for note in report.notes)
    for k, lt in enumerate(report.layers):
        np.testing.assert_allclose(np.nansum(lt.flow, axis=0) >= 0, True)
        np.testing.assert_allclose(lt.flow[rows[-1]], np.linalg.norm(per[k].dh[-1], axis=1), **TOL)
