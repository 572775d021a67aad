"""Whole models as public code trains them, imported and compared with their own forward pass.

Each model is built here the way its code builds it (the reference forward is written out in the
test, as the public code writes it), saved the way that code's users save it, imported with
`--weights` (and the model's own vocabulary), and compared in float64: logits and loss to 1e-9,
and every gradient against autograd (or against min-char-rnn's own backward pass).

- PyTorch examples, word_language_model/model.py: `encoder` nn.Embedding, `rnn` LSTM/GRU/RNN_TANH/
  RNN_RELU (time-major), `decoder` nn.Linear, optionally tied; its corpus reads
  `line.split() + ['<eos>']` for every line (data.py).
- d2l's RNNModel: `rnn` (nn.RNN/GRU/LSTM, time-major) reading F.one_hot(inputs.T, vocab_size), and a
  `linear` head; a Vocab with <unk> at 0, then tokens by falling frequency.
- karpathy's min-char-rnn: numpy Wxh (H,V), Whh (H,H), Why (V,H), bh (H,1), by (V,1);
  h = tanh(Wxh x + Whh h + bh), y = Why h + by; loss summed over the steps.
- dennybritz's rnn-tutorial-rnnlm: numpy U (H,V), W (H,H), V (V,H), no biases;
  s_t = tanh(U[:, x_t] + W s_{t-1}), o_t = softmax(V s_t); loss averaged over the words.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from rnn_tui.engine.gradflow import full_gradients
from rnn_tui.engine.subject import Spec, SubjectError, open_subject, trace_subject

TOL = dict(rtol=0, atol=1e-9)
CORPUS = "the cat sat on the mat\nthe dog sat on the log\n\na cat and a dog\n"


def close(actual, expected, scale: float = 1.0):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-9, atol=1e-9 * max(1.0, scale))


def trace_of(spec: Spec):
    subject = open_subject(spec)
    return subject, trace_subject(subject)


# ---- the PyTorch examples' word language model ---------------------------------------------------
class WordLM(nn.Module):
    """word_language_model/model.py's RNNModel: encoder, rnn (time-major), decoder, log_softmax."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.bias, -0.1, 0.1)  # the example zeroes it; random here, so it counts
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, input, hidden=None):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden


def dictionary(text: str) -> tuple[list[str], list[int]]:
    """data.py's Corpus.tokenize: every line is line.split() + ['<eos>'], ids in order of first use."""
    idx2word: list[str] = []
    word2idx: dict[str, int] = {}
    ids = []
    for line in text.splitlines():
        for word in line.split() + ["<eos>"]:
            if word not in word2idx:
                idx2word.append(word)
                word2idx[word] = len(idx2word) - 1
            ids.append(word2idx[word])
    return idx2word, ids


def save_state(module: nn.Module, path):
    state = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}  # tied: two copies
    if path.suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "rnn_type, tied, suffix",
    [("LSTM", False, ".pt"), ("GRU", True, ".safetensors"), ("RNN_TANH", False, ".safetensors"), ("RNN_RELU", True, ".pt")],
)
def test_the_pytorch_word_language_model_reads_whole(tmp_path, rnn_type, tied, suffix):
    torch.manual_seed(1)
    idx2word, ids = dictionary(CORPUS)
    V, emsize = len(idx2word), 6
    model = WordLM(rnn_type, V, emsize, emsize if tied else 5, nlayers=2, tie_weights=tied).double().eval()
    path = save_state(model, tmp_path / f"model{suffix}")
    (tmp_path / "vocab.json").write_text(json.dumps(idx2word))
    relu = rnn_type == "RNN_RELU"

    subject, tr = trace_of(Spec(weights=str(path), vocab=str(tmp_path / "vocab.json"), input=CORPUS, tokenize="space",
                                dtype="float64", activation="relu" if relu else None))  # fmt: skip
    assert subject.x.tolist() == ids  # the corpus read exactly as data.py reads it
    report = subject.notes[0]
    assert "encoder.weight -> embedding" in report and "decoder.weight, decoder.bias -> head" in report
    assert "nothing ignored" in report

    x = torch.tensor(ids)[:, None]  # (T, 1): time-major, batch of one
    logp, _ = model(x)  # (T, V) log-probabilities
    close(torch.log_softmax(torch.as_tensor(tr.outputs), -1), logp.detach())
    loss = F.nll_loss(logp[:-1], x[1:, 0])  # each word predicts the next
    close(tr.loss, loss.item())

    # every gradient: rnn-tui's from its trace, torch's from autograd on the user's own module
    loss.backward()
    grads = full_gradients(tr, token_ids=subject.x)
    names = {"embedding.weight": "encoder.weight", "head.bias": "decoder.bias"}
    for name, g in grads.items():
        if name == "head.weight" or (tied and name == "embedding.weight"):
            continue  # tied: one parameter, whose gradient is the sum of both uses (checked below)
        theirs = dict(model.named_parameters())[names.get(name, f"rnn.{name}")].grad
        close(g, theirs, scale=float(theirs.abs().max()))
    head = model.decoder.weight.grad
    together = grads["head.weight"] + (grads["embedding.weight"] if tied else 0)
    close(together, head, scale=float(head.abs().max()))


def test_tied_weights_saved_once_by_safetensors_save_model(tmp_path):
    """safetensors' save_model keeps a tied tensor once and names the other in its metadata."""
    from safetensors.torch import save_model

    torch.manual_seed(2)
    idx2word, ids = dictionary(CORPUS)
    model = WordLM("LSTM", len(idx2word), 5, 5, 1, dropout=0.0, tie_weights=True).double().eval()
    save_model(model, str(tmp_path / "tied.safetensors"))
    (tmp_path / "v.json").write_text(json.dumps(idx2word))
    subject, tr = trace_of(Spec(weights=str(tmp_path / "tied.safetensors"), vocab=str(tmp_path / "v.json"), input=CORPUS,
                                tokenize="space", dtype="float64"))  # fmt: skip
    assert "encoder.weight -> embedding" in subject.notes[0] and "tied: saved as decoder.weight" in subject.notes[0]
    logp, _ = model(torch.tensor(ids)[:, None])
    close(torch.log_softmax(torch.as_tensor(tr.outputs), -1), logp.detach())


def test_a_relu_rnn_read_without_activation_says_tanh_was_assumed(tmp_path):
    torch.manual_seed(0)
    idx2word, _ = dictionary(CORPUS)
    path = save_state(WordLM("RNN_RELU", len(idx2word), 4, 4, 1, dropout=0.0).double(), tmp_path / "m.pt")
    (tmp_path / "v.json").write_text(json.dumps(idx2word))
    subject = open_subject(Spec(weights=str(path), vocab=str(tmp_path / "v.json"), input=CORPUS, tokenize="space"))
    assert "tanh assumed (weights cannot tell tanh from relu: give --activation relu" in subject.notes[0]
    told = open_subject(Spec(weights=str(path), vocab=str(tmp_path / "v.json"), input=CORPUS, tokenize="space",
                             activation="relu"))  # fmt: skip
    assert "tanh assumed" not in told.notes[0] and told.config.activation == "relu"


# ---- d2l's RNNModel: one-hot input, `linear` head ------------------------------------------------
class D2LRNNModel(nn.Module):
    """d2l's RNNModel: X = one_hot(inputs.T, vocab_size); Y, state = rnn(X); linear(Y.reshape(-1, H))."""

    def __init__(self, rnn_layer, vocab_size):
        super().__init__()
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = self.rnn.hidden_size
        self.num_directions = 2 if self.rnn.bidirectional else 1
        self.linear = nn.Linear(self.num_hiddens * self.num_directions, self.vocab_size)

    def forward(self, inputs, state=None):
        X = F.one_hot(inputs.T.long(), self.vocab_size).to(torch.float64)
        Y, state = self.rnn(X, state)
        return self.linear(Y.reshape((-1, Y.shape[-1]))), state


def d2l_vocab(text: str) -> list[str]:
    """d2l's Vocab over characters: <unk> first, then tokens by falling frequency (ties as counted)."""
    counts = sorted(Counter(text).items(), key=lambda kv: kv[1], reverse=True)
    return ["<unk>"] + [tok for tok, _ in counts]


TIME_MACHINE = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter"


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["RNN", "GRU", "LSTM"]), hidden=st.integers(1, 8), layers=st.integers(1, 2),
       bi=st.booleans(), seed=st.integers(0, 10_000))  # fmt: skip
def test_d2l_rnn_model_with_one_hot_input_and_a_linear_head(tmp_path_factory, kind, hidden, layers, bi, seed):
    tmp_path = tmp_path_factory.mktemp("d2l")
    torch.manual_seed(seed)
    vocab = d2l_vocab(TIME_MACHINE)
    net = D2LRNNModel(getattr(nn, kind)(len(vocab), hidden, num_layers=layers, bidirectional=bi), len(vocab)).double()
    path = save_state(net, tmp_path / "d2l.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))

    subject, tr = trace_of(Spec(weights=str(path), vocab=str(tmp_path / "vocab.json"), input=TIME_MACHINE, dtype="float64"))
    assert tr.config.input_mode == "onehot" and tr.config.vocab_size == len(vocab)
    assert "linear.weight, linear.bias -> head" in subject.notes[0]
    index = {tok: i for i, tok in enumerate(vocab)}
    ids = torch.tensor([[index[ch] for ch in TIME_MACHINE]])  # (1, T) as d2l batches it
    assert subject.x.tolist() == ids[0].tolist()
    logits, _ = net(ids)  # (T * 1, V)
    close(tr.outputs, logits.detach(), scale=float(logits.detach().abs().max()))
    loss = F.cross_entropy(logits[:-1], ids[0, 1:])
    close(tr.loss, loss.item())
    loss.backward()
    grads = full_gradients(tr, token_ids=subject.x)
    for name, g in grads.items():
        theirs = dict(net.named_parameters())[name.replace("head.", "linear.") if name.startswith("head.") else f"rnn.{name}"].grad
        close(g, theirs, scale=float(theirs.abs().max()))


def test_a_one_hot_model_is_never_read_against_a_made_up_vocabulary(tmp_path, capsys):
    """The text's own distinct characters number as many as the model's one-hot width: before, the
    model was run against rnn-tui's sorted order and showed a plausible, wrong loss."""
    from rnn_tui.cli import main

    torch.manual_seed(0)
    text = "abcabcab"
    vocab = ["c", "a", "b"]  # the order the model was trained with, not sorted(set(text))
    net = D2LRNNModel(nn.GRU(3, 4), 3).double()
    path = save_state(net, tmp_path / "m.pt")
    with pytest.raises(SubjectError, match="reads 3 numbers per step, not text: give the vocabulary .* --vocab FILE"):
        open_subject(Spec(weights=str(path), input=text))
    assert main(["trace", "--weights", str(path), "--input", text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--vocab" in err[0]

    (tmp_path / "v.json").write_text(json.dumps(vocab))
    _, tr = trace_of(Spec(weights=str(path), vocab=str(tmp_path / "v.json"), input=text, dtype="float64"))
    ids = torch.tensor([[vocab.index(c) for c in text]])
    logits, _ = net(ids)
    close(tr.loss, F.cross_entropy(logits[:-1], ids[0, 1:]).item())
    wrong = torch.tensor([[sorted(vocab).index(c) for c in text]])  # what a made-up vocabulary would read
    assert abs(tr.loss - F.cross_entropy(net(wrong)[0][:-1], wrong[0, 1:]).item()) > 1e-3


def test_ids_fed_directly_are_shown_as_ids(tmp_path):
    torch.manual_seed(0)
    idx2word, _ = dictionary(CORPUS)
    path = save_state(WordLM("GRU", len(idx2word), 4, 5, 1, dropout=0.0).double().eval(), tmp_path / "m.pt")
    subject, tr = trace_of(Spec(weights=str(path), input_ids=(3, 1, 4, 1, 5), dtype="float64"))
    assert tr.tokens == ["3", "1", "4", "1", "5"] and tr.targets == [1, 4, 1, 5, None] and tr.vocab is None
    with pytest.raises(SubjectError, match=f"id {len(idx2word)} is out of range: the model reads ids 0..{len(idx2word) - 1}"):
        open_subject(Spec(weights=str(path), input_ids=(0, len(idx2word))))
    with pytest.raises(SubjectError, match="encoder.weight reads token ids of a .*--vocab FILE"):
        open_subject(Spec(weights=str(path), input="the cat"))


# ---- numpy conventions: min-char-rnn and rnn-tutorial-rnnlm -------------------------------------
def min_char_rnn(Wxh, Whh, Why, bh, by, inputs, targets, hprev):
    """min-char-rnn's lossFun: forward with column vectors, the summed loss, and its backward pass."""
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    ys = np.concatenate([ys[t].T for t in range(len(inputs))])
    return loss, ys, (dWxh, dWhh, dWhy, dbh, dby)


def test_min_char_rnn_npz(tmp_path):
    data = "hello world, hello min-char-rnn\nhello again\n"
    chars = sorted(set(data), key=lambda c: (hash(c) % 7, c))  # list(set(data)): some order only the file knows
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    V, H = len(chars), 10
    rng = np.random.default_rng(3)
    Wxh, Whh, Why = rng.normal(size=(H, V)) * 0.3, rng.normal(size=(H, H)) * 0.3, rng.normal(size=(V, H)) * 0.3
    bh, by = rng.normal(size=(H, 1)) * 0.1, rng.normal(size=(V, 1)) * 0.1
    np.savez(tmp_path / "min-char-rnn.npz", Wxh=Wxh, Whh=Whh, Why=Why, bh=bh, by=by)
    (tmp_path / "chars.json").write_text(json.dumps(chars))

    subject, tr = trace_of(Spec(weights=str(tmp_path / "min-char-rnn.npz"), vocab=str(tmp_path / "chars.json"),
                                input=data, dtype="float64"))  # fmt: skip
    report = subject.notes[0]
    assert "Wxh=weight_ih_l0, Whh=weight_hh_l0, bh=bias_ih_l0 (min-char-rnn's names)" in report
    assert "bias_hh_l0 = 0" in report and "Why, by -> head" in report and "tanh assumed" not in report
    inputs = [char_to_ix[ch] for ch in data[:-1]]
    targets = [char_to_ix[ch] for ch in data[1:]]
    loss, ys, (dWxh, dWhh, dWhy, dbh, dby) = min_char_rnn(Wxh, Whh, Why, bh, by, inputs, targets, np.zeros((H, 1)))
    n = len(inputs)  # min-char-rnn sums the loss; rnn-tui shows its mean over the scored steps
    close(tr.outputs[:-1], ys, scale=float(np.abs(ys).max()))
    close(tr.loss * n, loss, scale=loss)
    grads = full_gradients(tr, token_ids=subject.x)
    for name, theirs in (("weight_ih_l0", dWxh), ("weight_hh_l0", dWhh), ("head.weight", dWhy),
                         ("bias_ih_l0", dbh[:, 0]), ("bias_hh_l0", dbh[:, 0]), ("head.bias", dby[:, 0])):  # fmt: skip
        close(grads[name] * n, theirs, scale=float(np.abs(theirs).max()))


def test_rnn_tutorial_rnnlm_npz(tmp_path):
    index_to_word = ["SENTENCE_START", "SENTENCE_END", "UNKNOWN_TOKEN", "the", "cat", "sat", "on", "mat", "dog"]
    word_to_index = {w: i for i, w in enumerate(index_to_word)}
    word_dim, hidden_dim = len(index_to_word), 7
    rng = np.random.default_rng(5)
    U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
    V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
    W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))
    np.savez(tmp_path / "rnnlm.npz", U=U, V=V, W=W)  # utils.save_model_parameters_theano's names
    (tmp_path / "words.txt").write_text("\n".join(index_to_word) + "\n")

    sentence = "SENTENCE_START the cat sat on the mat SENTENCE_END"
    subject, tr = trace_of(Spec(weights=str(tmp_path / "rnnlm.npz"), vocab=str(tmp_path / "words.txt"),
                                input=sentence, tokenize="space", dtype="float64"))  # fmt: skip
    assert "U=weight_ih_l0, W=weight_hh_l0 (rnn-tutorial-rnnlm's names)" in subject.notes[0]
    assert "V -> head" in subject.notes[0] and "no bias" in subject.notes[0]
    assert "head.bias" not in tr.params and "bias_ih_l0" not in tr.params

    sent = [word_to_index[w] for w in sentence.split()]
    x, y = sent[:-1], sent[1:]
    T = len(x)
    s = np.zeros((T + 1, hidden_dim))
    o = np.zeros((T, word_dim))
    for t in np.arange(T):  # forward_propagation
        s[t] = np.tanh(U[:, x[t]] + W.dot(s[t - 1]))
        z = V.dot(s[t])
        o[t] = np.exp(z) / np.sum(np.exp(z))
    loss = -np.sum(np.log(o[np.arange(T), y])) / T  # calculate_loss: the mean over the words
    probs = np.exp(tr.outputs) / np.exp(tr.outputs).sum(-1, keepdims=True)
    close(probs[:-1], o)
    close(tr.loss, loss)

    from rnn_tui.ui.widgets.model_pane import parameter_summary

    shown = parameter_summary(tr).plain  # the Model tab counts a head without bias as such
    assert f"head: {hidden_dim}·{word_dim} = {hidden_dim * word_dim} (no bias)" in shown
    assert f"{U.size + V.size + W.size} parameters" in shown
