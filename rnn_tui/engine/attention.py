"""Attention for the encoder-decoder: the decoder looks back at every encoder state at every step.

With h_1 .. h_S the encoder's (top layer's) states and s_{t-1} the decoder's previous (top) state:

    e_{t,k} = score(s_{t-1}, h_k)            dot (Luong):       s_{t-1} · h_k
                                             additive (Bahdanau): v · tanh(W s_{t-1} + U h_k)
    α_{t,k} = softmax_k e_{t,k}              each row sums to 1
    c_t     = Σ_k α_{t,k} h_k                the context
    x_t     = [y_{t-1}; c_t]                 what the decoder cell reads at step t

The decoder no longer has only h^d_0 = h^e_S to go on: the gradient of every decoder loss reaches
every encoder state through c_t, and reaches the decoder's own earlier states twice, through the
cell and through the score. Its backward pass is therefore one sweep back through time with every
layer at each step (`decoder_backward`): the cells' own `vjp`, then back through c_t and the
score into s_{t-1} and the keys.

numpy only (the cells' maths run as they do in any trace); `encdec.py` holds the torch model
that trains with it, and the tests hold the two equal to autograd in float64. Tensor names:
attention.W, attention.U (A, H) and attention.v (A,) for the additive score; the dot score has
none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("none", "dot", "additive")
PARAMS = {"none": (), "dot": (), "additive": ("attention.W", "attention.U", "attention.v")}


class AttentionError(ValueError):
    pass


@dataclass(frozen=True)
class AttentionRecord:
    """What the decoder's attention did over one sequence (numpy), kept in the decoder trace's
    extras["attention"]: enough to draw it, to analyse the decoder's gradients through it, and to
    run the decoder again with the attention held on chosen positions."""

    kind: str  # "dot" | "additive"
    weights: Any  # (T_dec, T_enc) α_{t,k}; each row sums to 1
    scores: Any  # (T_dec, T_enc) e_{t,k} (nan on a held row)
    keys: Any  # (T_enc, H) the encoder's top-layer states h_k
    encoder_tokens: tuple[str, ...]  # one label per encoder step
    y_width: int  # V: x_t = [y_{t-1} (one-hot, V); c_t (H)]
    input_labels: tuple[str, ...]  # what each of the V decoder input ids reads as (<s>, a, b ...)
    decoder_inputs: str = "teacher"  # "teacher" (the true previous token) | "greedy" (its own previous argmax)
    feed: tuple[int, ...] | None = None  # output id -> decoder input id that reads it back (greedy)
    forced: tuple[tuple[int, int], ...] = ()  # (t, k): α_t held one-hot on encoder step k
    dL_dkeys: Any = None  # (T_enc, H) the gradient reaching each encoder state through attention
    param_grads: dict = field(default_factory=dict)  # attention.W ... by name (additive)

    @property
    def anti_diagonal_mass(self) -> float:
        """The mean over decoder steps t < T_enc of α_{t, T_enc-1-t}: how much of each row lies where
        a reversal reads (1.0: exactly on the anti-diagonal)."""
        return self.diagonal_mass(0)

    def diagonal_mass(self, offset: int = 0) -> float:
        """The mean of α_{t, T_enc-1-t+offset} over the decoder steps t where that k is a source step:
        offset 0 is the anti-diagonal, 1 the line just right of it (where the symbol written at t-1 was
        read: α_t is scored from s_{t-1}, the state that wrote it)."""
        import numpy as np

        A = np.asarray(self.weights)
        S = A.shape[1]
        picks = [A[t, S - 1 - t + offset] for t in range(A.shape[0]) if 0 <= S - 1 - t + offset < S]
        return float(np.mean(picks)) if picks else float("nan")


# ---- the score, the weights and the context, one step (any leading axes on s) ----------------------
def forward(kind: str, s, K, P: dict):
    """(e, α, c, cache) for decoder state(s) s (..., H) over keys K (S, H)."""
    import numpy as np

    if kind == "dot":
        e = s @ K.T  # (..., S)
        u = None
    elif kind == "additive":
        ws = s @ P["attention.W"].T  # (..., A)
        uk = K @ P["attention.U"].T  # (S, A)
        u = np.tanh(ws[..., None, :] + uk)  # (..., S, A)
        e = u @ P["attention.v"]  # (..., S)
    else:
        raise AttentionError(f"unknown attention {kind!r}: choose one of {', '.join(KINDS)}")
    z = e - e.max(axis=-1, keepdims=True)
    a = np.exp(z)
    a /= a.sum(axis=-1, keepdims=True)
    c = a @ K  # (..., H)
    return e, a, c, (s, a, u)


def backward(kind: str, cache, K, P: dict, dc):
    """From dL/dc (..., H): (dL/ds (..., H), dL/dK (..., S, H), {name: gradient (..., shape)}).

        dL/dα_k = h_k · dc;  dL/de = α ⊙ (dL/dα - Σ_k α_k dL/dα_k);  dL/dK gets α_k dc directly
        dot:       dL/ds = Σ_k dL/de_k h_k,  dL/dh_k += dL/de_k s
        additive:  g = dL/de_k v ⊙ (1 - u_k²);  dL/ds = W^T Σ_k g_k;  dL/dh_k += U^T g_k;
                   dL/dW = Σ_k g_k s^T;  dL/dU = Σ_k g_k h_k^T;  dL/dv = Σ_k dL/de_k u_k
    """
    import numpy as np

    s, a, u = cache
    da = dc @ K.T  # (..., S)
    de = a * (da - (a * da).sum(axis=-1, keepdims=True))
    dK = a[..., :, None] * dc[..., None, :]  # (..., S, H)
    grads = {}
    if kind == "dot":
        ds = de @ K
        dK = dK + de[..., :, None] * s[..., None, :]
    else:
        g = de[..., :, None] * P["attention.v"] * (1.0 - u * u)  # (..., S, A)
        gsum = g.sum(axis=-2)  # (..., A)
        ds = gsum @ P["attention.W"]
        dK = dK + g @ P["attention.U"]
        grads["attention.W"] = gsum[..., :, None] * s[..., None, :]
        grads["attention.U"] = np.einsum("...ka,kh->...ah", g, K)
        grads["attention.v"] = np.einsum("...k,...ka->...a", de, u)
    return ds, dK, grads


# ---- the decoder, step by step ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecoderPass:
    """The decoder's forward pass with attention: per layer a forward record (reading order is time
    order: the decoder reads left to right), and per step the attention's cache."""

    layers: list  # LayerForward per layer
    weights: Any  # (T, S) α
    scores: Any  # (T, S) e
    caches: list  # per step: forward()'s cache, ("held", k) on a row held on encoder step k
    fed: Any  # (T,) the decoder input ids read (the y_{t-1} part of x_t)
    outputs: Any  # (T, O) the head's logits


def decoder_forward(cfg, P: dict, kind: str, K, h0_all, c0_all, y_width: int, inputs=None, *, start: int | None = None,
                    feed=None, steps: int | None = None, forced=()) -> DecoderPass:  # fmt: skip
    """Run the decoder one step at a time, every layer, reading x_t = [onehot(y_{t-1}); c_t].

    inputs: (T,) decoder input ids (teacher forcing); or start, feed and steps: begin with input
    `start` and read back each step's argmax through `feed` (greedy decoding). forced: (t, k)
    pairs that hold α_t one-hot on encoder step k (an intervention: the score is not used there).
    h0_all, c0_all: (L, H) the decoder's initial state (the encoder's final one).
    """
    import numpy as np

    cell = cfg.cell_spec
    options = {"scan": cfg.scan} if cell.scans else {}  # a linear recurrence's loop or scan
    L = cfg.num_layers
    S = K.shape[0]
    greedy = inputs is None
    T = int(steps) if greedy else len(inputs)
    held = {}
    for t, k in forced:
        if not (0 <= t < T and 0 <= k < S):
            raise AttentionError(f"attention can be held on an encoder step 0..{S - 1} at a decoder step 0..{T - 1}")
        held[int(t)] = int(k)
    ws = [cell.layer_weights(P, f"_l{k}") for k in range(L)]
    V, b = P["head.weight"], P.get("head.bias")
    h = [np.asarray(h0_all[k]) for k in range(L)]
    c = [None if c0_all is None else np.asarray(c0_all[k]) for k in range(L)]
    steps_fw = [[] for _ in range(L)]
    A = np.zeros((T, S), K.dtype)
    E = np.full((T, S), np.nan, K.dtype)
    caches, fed, outputs = [], np.zeros(T, dtype=np.int64), np.zeros((T, V.shape[0]), K.dtype)
    token = start
    for t in range(T):
        y_id = int(inputs[t]) if not greedy else int(token)
        fed[t] = y_id
        if t in held:
            a = np.zeros(S, K.dtype)
            a[held[t]] = 1.0
            ctx, cache = K[held[t]].copy(), ("held", held[t])
        else:
            e, a, ctx, cache = forward(kind, h[L - 1], K, P)
            E[t] = e
        A[t] = a
        caches.append(cache)
        x = np.zeros(y_width + K.shape[1], K.dtype)
        x[y_id] = 1.0
        x[y_width:] = ctx
        layer_in = x
        for k in range(L):
            fw = cell.forward(ws[k], layer_in[None], h[k], c[k], cfg.activation, layer=k, **options)
            steps_fw[k].append(fw)
            h[k] = fw.H[0]
            c[k] = None if fw.C is None else fw.C[0]
            layer_in = h[k]
        y = V @ h[L - 1]
        if b is not None:
            y = y + b
        outputs[t] = y
        if greedy:
            token = int(feed[int(np.argmax(y))])
    layers = [_joined(cell, steps_fw[k], np.asarray(h0_all[k]), None if c0_all is None else np.asarray(c0_all[k]))
              for k in range(L)]  # fmt: skip
    return DecoderPass(layers, A, E, caches, fed, outputs)


def _joined(cell, parts: list, h0, c0):
    """One layer's one-step forward records as one record over every step."""
    import numpy as np

    cat = lambda name: None if getattr(parts[0], name) is None else np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    first = parts[0]
    return replace(
        first, X=cat("X"), H=cat("H"), H_prev=cat("H_prev"), C=cat("C"), C_prev=cat("C_prev"),
        pre={g: np.concatenate([p.pre[g] for p in parts]) for g in first.pre},
        act={g: np.concatenate([p.act[g] for p in parts]) for g in first.act}, h0=h0, c0=c0,
    )  # fmt: skip


def decoder_backward(cfg, recs: list, K, P: dict, kind: str, caches: list, y_width: int, direct_top, final=None):
    """BPTT through the decoder with attention, for any leading batch of gradient sources.

    direct_top: (..., T, H) the gradient reaching the top layer's h_t from the head. final:
    gradients on the final state from outside ((L, ..., H) h and c), or None. One sweep from
    t = T-1 down to 0: at each step every layer's `vjp`, top first (the layer below gets
    W_ih^T δa_t), then from layer 0's input gradient dL/dx_t = W_ih^T δa_t its context part
    dL/dc_t back through the attention into s_{t-1} (the top layer's previous state) and the keys.

    Returns (grads per layer (LayerGrads), dL/dkeys (..., S, H), attention parameter gradients).
    """
    import numpy as np

    from rnn_tui.engine.cells import LayerGrads

    cell = cfg.cell_spec
    L, T = len(recs), recs[0].T
    ks = [cell.coefficients(r) for r in recs]
    lead, dt = direct_top.shape[:-2], direct_top.dtype
    H = recs[0].H.shape[1]
    nst = len(cell.states)
    dH = [np.empty(lead + (T, H), dt) for _ in range(L)]
    dC = [np.empty(lead + (T, H), dt) if cell.has_cell_state else None for _ in range(L)]
    dA = [np.empty(lead + (T, cell.G * H), dt) for _ in range(L)]
    carry = [[np.zeros(lead + (H,), dt) for _ in range(nst)] for _ in range(L)]
    if final is not None:
        for k in range(L):
            for i in range(nst):
                if final[i] is not None:
                    carry[k][i] = carry[k][i] + np.asarray(final[i][k], dt)
    dK = np.zeros(lead + K.shape, dt)
    pgrads = {name: np.zeros(lead + np.shape(P[name]), dt) for name in PARAMS[kind]}
    for t in reversed(range(T)):
        below = None
        for k in reversed(range(L)):
            u_h = carry[k][0] + (direct_top[..., t, :] if k == L - 1 else below)
            d, before, at = cell.vjp(ks[k], t, recs[k].w, (u_h,) + tuple(carry[k][1:]))
            dA[k][..., t, :] = d
            dH[k][..., t, :] = at[0]
            if dC[k] is not None:
                dC[k][..., t, :] = at[1]
            carry[k] = [np.array(b, dt) for b in before]
            below = d @ recs[k].w.W_ih  # (..., I_k): the input of layer k at step t
        dctx = below[..., y_width:]  # dL/dc_t
        cache = caches[t]
        if isinstance(cache[0], str):  # a held row: α_t is a constant, c_t = h_k of the held step
            dK[..., cache[1], :] += dctx
            continue
        ds, dk, g = backward(kind, cache, K, P, dctx)
        dK += dk
        for name, v in g.items():
            pgrads[name] += v
        carry[L - 1][0] = carry[L - 1][0] + ds  # s_{t-1} is the top layer's previous state
    grads = [LayerGrads(dH[k], dC[k], dA[k], carry[k][0], carry[k][1] if nst > 1 else None) for k in range(L)]
    return grads, dK, pgrads

