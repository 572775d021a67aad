"""The encoder-decoder: its trace of both halves equals autograd, its tensors round-trip, it learns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.engine.config import ConfigError
from rnn_tui.engine.encdec import EncoderDecoder, check_pair, trace_encdec
from rnn_tui.engine.tasks import get_task

CELLS = ["rnn", "lstm", "gru", "lstm-peephole", "gru-textbook"]


def autograd_reference(model: EncoderDecoder, ex):
    """Loss and gradients by torch autograd through the fused/explicit modules, float64."""
    cfg = model.config
    L, H = cfg.num_layers, cfg.hidden_size
    h0 = torch.zeros(L, 1, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.zeros(L, 1, H, dtype=torch.float64, requires_grad=True)
    state = (h0, c0) if cfg.has_cell_state else h0
    _, final = model.encoder(ex.x[None], state=state, return_state=True)
    h_n = final[0] if cfg.has_cell_state else final
    h_n.retain_grad()
    logits = model.decoder(ex.dec_x[None], state=final)  # (1, T, O)
    loss = torch.nn.functional.cross_entropy(logits[0], torch.tensor(ex.targets))
    model.zero_grad()
    loss.backward()
    grads = {name: (t.grad.clone() if t.grad is not None else None) for name, t in model.tensors().items()}
    return float(loss.detach()), logits[0].detach().numpy(), h0.grad[:, 0].numpy(), h_n.grad[:, 0].numpy(), grads


@settings(max_examples=30, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    layers=st.integers(1, 2),
    hidden=st.integers(1, 7),
    seq_len=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_trace_of_both_halves_equals_autograd(cell, layers, hidden, seq_len, seed):
    task = get_task("reverse", seq_len=seq_len, symbols=4)
    cfg = task.model_config(cell=cell, hidden=hidden, layers=layers)
    model = task.build_model(cfg, seed=seed).double()
    ex = task.example(seed)
    loss, logits, dL_dh0_enc, dL_dhn_enc, grads = autograd_reference(model, ex)

    tr = task.trace(model, ex, dtype="float64", decoder_inputs="teacher")
    assert tr.decoder.loss == pytest.approx(loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(tr.decoder.outputs, logits, rtol=1e-10, atol=1e-12)
    # the decoder starts from the encoder's final state ...
    for k in range(layers):
        np.testing.assert_allclose(tr.decoder.layers[k].h0, tr.encoder.layers[k].h[-1], rtol=0, atol=0)
    # ... sends dL/dh0 back into it (the encoder's final step sees it) ...
    np.testing.assert_allclose(tr.decoder.extras["dL_dh0"], dL_dhn_enc, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tr.encoder.layers[-1].dL_dh[-1], dL_dhn_enc[-1], rtol=1e-9, atol=1e-12)
    # ... and the encoder carries it all the way back to its own initial state
    np.testing.assert_allclose(tr.encoder.extras["dL_dh0"], dL_dh0_enc, rtol=1e-9, atol=1e-12)
    # the deltas of the encoder's first layer give autograd's gradient on its input weights
    layer0 = tr.encoder.layers[0]
    dW_ih = layer0.dL_dpre.T @ tr.encoder.inputs  # Σ_t δa_t x_tᵀ  (G*H, I)
    np.testing.assert_allclose(dW_ih, grads["encoder.weight_ih_l0"].numpy(), rtol=1e-8, atol=1e-12)
    assert tr.encoder.loss == 0.0 and all(t is None for t in tr.encoder.targets)
    assert tr.encoder.tokens == ex.tokens and tr.decoder.tokens == ex.dec_tokens


def test_float32_trace_is_close_to_float64():
    task = get_task("reverse", seq_len=5)
    model = task.build_model(task.model_config(cell="lstm", hidden=8), seed=0)
    ex = task.example(0)
    a = task.trace(model, ex, dtype="float32", decoder_inputs="teacher")
    b = task.trace(model.double(), ex, dtype="float64", decoder_inputs="teacher")
    assert a.decoder.loss == pytest.approx(b.decoder.loss, rel=1e-5)
    np.testing.assert_allclose(a.encoder.layers[0].dL_dh, b.encoder.layers[0].dL_dh, rtol=1e-3, atol=1e-6)


def test_greedy_trace_reads_its_own_answers():
    task = get_task("reverse", seq_len=4)
    model = task.build_model(task.model_config(cell="gru", hidden=8), seed=3)
    ex = task.example(2)
    tr = task.trace(model, ex)  # greedy by default
    assert tr.decoder_inputs == "greedy"
    written = model.greedy(ex.x[None], start=task.start_id, steps=len(ex.dec_x), feed=task.feed)[0]
    assert tr.predicted == [task.output_labels[i] for i in written.tolist()]
    expected_inputs = ["<s>"] + [task.dec_vocab[i] for i in task.feed[written[:-1]].tolist()]
    assert tr.decoder.tokens == expected_inputs
    assert tr.decoder.targets == ex.targets  # still scored against the true reversal


def test_greedy_equals_teacher_forcing_on_its_own_output():
    task = get_task("reverse", seq_len=6)
    model = task.build_model(task.model_config(cell="lstm", hidden=12, layers=2), seed=1)
    x = task.sample(5, torch.Generator().manual_seed(0)).x
    written = model.greedy(x, start=task.start_id, steps=7, feed=task.feed)  # (5, 7)
    dec_x = torch.cat([torch.full((5, 1), task.start_id), task.feed[written[:, :-1]]], dim=1)
    with torch.no_grad():
        logits = model(x, dec_x)
    assert torch.equal(logits.argmax(dim=-1), written)


def test_tensors_names_round_trip_and_errors():
    task = get_task("reverse", seq_len=3)
    cfg = task.model_config(cell="lstm", hidden=5, layers=2)
    a, b = task.build_model(cfg, seed=0), task.build_model(cfg, seed=1)
    names = set(a.tensors())
    assert "encoder.weight_ih_l1" in names and "decoder.head.weight" in names and "decoder.bias_hh_l0" in names
    assert not any(n.startswith("encoder.head") for n in names)
    assert all(n.startswith(("encoder.", "decoder.")) for n in names)
    assert a.num_parameters() == sum(t.numel() for t in a.tensors().values())
    batch = task.sample(3, torch.Generator().manual_seed(0))
    b.load_tensors({k: v.detach().clone() for k, v in a.tensors().items()})
    with torch.no_grad():
        assert torch.equal(a(batch.x, batch.dec_x), b(batch.x, batch.dec_x))
    bad = dict(a.tensors())
    bad["encoder.weight_hh_l0"] = torch.zeros(3, 3)
    with pytest.raises(ConfigError, match=r"encoder.weight_hh_l0 has shape \(3, 3\), the model needs \(20, 5\)"):
        b.load_tensors(bad)
    missing = dict(a.tensors())
    del missing["decoder.head.bias"]
    with pytest.raises(ConfigError, match="missing tensor.*decoder.head.bias"):
        b.load_tensors(missing)
    with pytest.raises(ConfigError, match="unexpected tensor.*encoder.head.weight"):
        b.load_tensors(dict(a.tensors(), **{"encoder.head.weight": torch.zeros(1, 5)}))


def test_encoder_head_is_never_trained():
    task = get_task("reverse", seq_len=3)
    model = task.build_model(task.model_config(cell="gru", hidden=4), seed=0)
    batch = task.sample(4, torch.Generator().manual_seed(0))
    task.loss(task.forward(model, batch), batch).backward()
    assert model.encoder.head.weight.grad is None and not model.encoder.head.weight.any()
    assert model.encoder.core.weight_ih_l0.grad is not None and model.encoder.core.weight_ih_l0.grad.abs().sum() > 0


def test_pair_must_share_the_state():
    task = get_task("reverse")
    dec = task.model_config(cell="lstm", hidden=8)
    enc = task.encoder_config(dec)
    check_pair(enc, dec)
    with pytest.raises(ConfigError, match="share hidden_size"):
        EncoderDecoder(enc.replace(hidden_size=9), dec)
    with pytest.raises(ConfigError, match="share cell"):
        EncoderDecoder(enc.replace(cell="gru"), dec)
    with pytest.raises(ConfigError, match="bidirectional"):
        check_pair(enc.replace(bidirectional=True), dec)


def test_bad_decoder_inputs_mode():
    task = get_task("reverse", seq_len=2)
    model = task.build_model(task.model_config(hidden=3), seed=0)
    ex = task.example()
    with pytest.raises(ValueError, match="teacher' or 'greedy"):
        trace_encdec(model, ex.x, ex.dec_x, ex.targets, decoder_inputs="beam")


def test_it_learns_to_reverse():
    torch.manual_seed(0)
    task = get_task("reverse", seq_len=3, symbols=3)
    model = task.build_model(task.model_config(cell="lstm", hidden=16), seed=0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        batch = task.sample(32, g)
        loss = task.loss(task.forward(model, batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    words = ["".join(w) for w in itertools.product("abc", repeat=3)]
    assert [task.reverse(model, w) for w in words] == [w[::-1] for w in words]
    with pytest.raises(ValueError, match="'z' is not one of the symbols abc"):
        task.reverse(model, "abz")
