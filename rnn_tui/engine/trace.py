"""Run one sequence through a model and record everything: states, gates, outputs, losses and
the total derivatives dL/dh_t (and dL/dc_t) of backpropagation through time.

How it is computed, cheaply and exactly, by each cell's own maths (`rnn_tui.engine.cells`):
1. States and gates. Each layer and direction runs forward once, `Cell.forward`: torch's fused
   kernel where that is fastest (the LSTM: the gates of every step then follow from one product,
   since they read only x_t and h_{t-1}), else a numpy loop over the cell's equations.
2. The head and the loss, and the gradient they send into the top layer's outputs: numpy.
3. Gradients. Layer by layer from the top, the delta recursion of BPTT runs backwards in time
   (`Cell.backward`, one `Cell.vjp` per step), giving dL/dh_t, dL/dc_t and dL/da_t (the gate
   pre-activations), and dL/dx_t = (dL/da_t) W_ih, the direct gradient of the layer below.
A trace with values held by hand (interventions) runs instead through the readable cell steps
with torch autograd, the held values in place (`_autograd_pass`).

On a GPU (`device=`, `engine.device`) torch's work runs there and the records come back as numpy
copies, as on the CPU: for the cells torch fuses, its kernel (cuDNN) forward and backward
(`_fused_device_pass`); for the others, and for values held by hand, the readable steps with
autograd; the head and the loss in torch, on the device, in both.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnn_tui.engine.cells import REGISTRY, LayerForward, LayerGrads, LayerWeights, keep
from rnn_tui.engine.cells.base import affine
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.device import as_device, of_module
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.model import IGNORE, RNNModel
from rnn_tui.engine.records import LayerTrace, Trace

DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_STEPS = 100_000  # a trace longer than this is refused: its records would not fit in memory


class TraceError(EngineError):
    pass


# ---- compatible helpers: a layer's tensors, and one step of the configured cell ----------------------
def layer_weights(P: dict, sfx: str, config: ModelConfig | None = None) -> LayerWeights:
    """One layer and direction's tensors by their equation names (None where absent): those of the
    config's cell, or of every registered cell when no config is given."""
    if config is not None:
        return config.cell_spec.layer_weights(P, sfx)
    return LayerWeights(sfx, {w.symbol: P.get(w.prefix + sfx) for c in REGISTRY.values() for w in c.weights})


def cell_step(cfg: ModelConfig, w, x, h, c, edit=keep):
    """One step of the configured cell's readable path: (h_t, c_t or None, gates {name: (pre, act)})."""
    cell = cfg.cell_spec
    state, gates = cell.step(x, (h, c) if cell.has_cell_state else (h,), w, cfg.activation, edit)
    return state[0], (state[1] if cell.has_cell_state else None), gates


# ---- what one pass over the sequence gives -------------------------------------------------------------
@dataclass(frozen=True)
class Pass:
    """Every layer's forward record and gradients (reading order), the outputs and the loss."""

    layers: list[LayerForward]  # per layer and direction, forward before reverse
    grads: list[LayerGrads]
    outputs: np.ndarray  # (rows, O)
    loss: float
    step_losses: np.ndarray  # (rows,), nan where unscored
    targets: list  # the targets, cleaned
    dh0: np.ndarray  # (L*D, H) dL/d(initial h)
    dc0: np.ndarray | None


@dataclass(frozen=True)
class Head:
    """The head's outputs and losses, and the gradient the loss sends into the top layer."""

    outputs: np.ndarray  # (rows, O)
    loss: float
    step_losses: np.ndarray  # (rows,)
    targets: list
    grad_top: np.ndarray  # (T, D*H) dL/d(top layer output)


# ---- inputs and targets ------------------------------------------------------------------------------
def _as_targets(cfg: ModelConfig, targets, rows: int, dtype) -> tuple[np.ndarray, np.ndarray, list]:
    """Targets list (one per output row, None = unscored) -> (array, scored mask, clean list)."""
    if targets is None:
        targets = [None] * rows
    targets = list(targets)
    if len(targets) != rows:
        raise TraceError(f"got {len(targets)} targets for {rows} output rows")
    scored = np.array([t is not None for t in targets], dtype=bool)
    if cfg.loss == "ce":
        ids = []
        for t in targets:
            if t is None:
                ids.append(IGNORE)
                continue
            if not (isinstance(t, (int, np.integer)) and 0 <= int(t) < cfg.output_size):
                raise TraceError(f"target {t!r} is not a class index in 0..{cfg.output_size - 1}")
            ids.append(int(t))
        return np.array(ids, dtype=np.int64), scored, [None if t is None else int(t) for t in targets]
    vecs = np.zeros((rows, cfg.output_size), dtype=dtype)
    clean = []
    for r, t in enumerate(targets):
        if t is None:
            clean.append(None)
            continue
        v = np.asarray(t, dtype=np.float64).reshape(-1)
        if v.shape[0] != cfg.output_size:
            raise TraceError(f"a target vector has {v.shape[0]} values, the model outputs {cfg.output_size}")
        vecs[r] = v
        clean.append(v.tolist())
    return vecs, scored, clean


def _encode(cfg: ModelConfig, x, P: dict[str, np.ndarray], dtype) -> np.ndarray:
    """The vectors fed to layer 0, (T, I)."""
    x = torch.as_tensor(x)
    if cfg.input_mode == "vectors":
        if x.dim() != 2 or x.shape[1] != cfg.input_size:
            raise TraceError(f"input vectors must be T x {cfg.input_size}, got shape {tuple(x.shape)}")
        return x.detach().to(device="cpu", dtype=DTYPES[dtype], copy=True).numpy()
    if x.dim() != 1:
        raise TraceError(f"token input must be a 1-D list of ids, got shape {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= cfg.vocab_size):
        raise TraceError(f"token ids must lie in 0..{cfg.vocab_size - 1}")
    ids = x.detach().cpu().long().numpy()
    if cfg.input_mode == "embedding":
        return P["embedding.weight"][ids]
    X = np.zeros((ids.shape[0], cfg.vocab_size), dtype=dtype)
    X[np.arange(ids.shape[0]), ids] = 1.0
    return X


# ---- the head ------------------------------------------------------------------------------------------
def _pool(cfg: ModelConfig, top: np.ndarray) -> np.ndarray:
    """What the head reads, (rows, D*H), from the top layer's outputs (T, D*H) — RNNModel.pool."""
    if cfg.head == "step":
        return top
    if cfg.head == "mean":
        return top.mean(0, keepdims=True)
    H = cfg.hidden_size
    last = top[-1, :H]  # the forward direction ends at T-1 ...
    if cfg.bidirectional:
        last = np.concatenate([last, top[0, H:]])  # ... the reverse one at 0
    return last[None]


def _pool_adjoint(cfg: ModelConfig, g: np.ndarray, T: int) -> np.ndarray:
    """A gradient on the pooled rows (rows, D*H) -> on the top layer's outputs (T, D*H)."""
    if cfg.head == "step":
        return g
    if cfg.head == "mean":
        return np.repeat(g / T, T, axis=0)
    H = cfg.hidden_size
    out = np.zeros((T, g.shape[1]), g.dtype)
    out[T - 1, :H] = g[0, :H]
    if cfg.bidirectional:
        out[0, H:] = g[0, H:]
    return out


def head_and_loss(cfg: ModelConfig, P: dict[str, np.ndarray], top: np.ndarray, targets) -> Head:
    """y_r = V pooled_r + b; the loss of each scored row and their mean L; and dL/d(top).

    ce:  l_r = -log softmax(y_r)[target_r],  dl_r/dy_r = softmax(y_r) - onehot(target_r)
    mse: l_r = mean_o (y_r - target_r)^2,    dl_r/dy_r = 2 (y_r - target_r) / O
    L = (1/N) sum over the N scored rows, so dL/dy_r = (dl_r/dy_r) / N.
    """
    pooled = _pool(cfg, top)
    V = P["head.weight"]
    Y = pooled @ V.T
    if "head.bias" in P:
        Y += P["head.bias"]
    rows = Y.shape[0]
    tgt, scored, clean = _as_targets(cfg, targets, rows, Y.dtype)
    if cfg.loss == "ce":
        z = Y - Y.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        pick = np.where(scored, tgt, 0)
        per_row = -logp[np.arange(rows), pick]
        dY = np.exp(logp)
        dY[np.arange(rows), pick] -= 1.0
    else:
        diff = Y - tgt
        per_row = (diff * diff).mean(axis=1)
        dY = diff * (2.0 / Y.shape[1])
    N = int(scored.sum())
    dY[~scored] = 0.0
    dY /= max(N, 1)
    loss = float(per_row[scored].sum() / N) if N else 0.0
    step_losses = np.where(scored, per_row, np.nan).astype(Y.dtype)
    return Head(Y, loss, step_losses, clean, _pool_adjoint(cfg, dY @ V, top.shape[0]))


# ---- 1 - 3. the fast pass -------------------------------------------------------------------------------
def _fast_pass(cfg: ModelConfig, P: dict, X0: np.ndarray, h0_all, c0_all, targets, final_state_grad) -> Pass:
    """Forward layer by layer with each cell's fast forward, then BPTT top layer first."""
    cell = cfg.cell_spec
    H, D = cfg.hidden_size, cfg.num_directions
    layers: list[LayerForward] = []
    layer_in = X0
    for k in range(cfg.num_layers):
        outs = []
        for d in range(D):
            idx = k * D + d
            w = cell.layer_weights(P, f"_l{k}" + ("_reverse" if d else ""))
            Xr = layer_in[::-1].copy() if d else layer_in  # reading order
            c0 = c0_all[idx] if c0_all is not None else None
            fw = cell.forward(w, Xr, h0_all[idx], c0, cfg.activation, layer=k, reverse=bool(d))
            layers.append(fw)
            outs.append(fw.H[::-1] if d else fw.H)
        layer_in = np.concatenate(outs, axis=1) if D > 1 else outs[0]  # (T, D*H)
    head = head_and_loss(cfg, P, layer_in, targets)

    LD = len(layers)
    grads: list[LayerGrads | None] = [None] * LD
    direct = head.grad_top  # (T, D*H) the gradient reaching this layer's output from above
    for k in reversed(range(cfg.num_layers)):
        dX = 0.0
        for d in range(D):
            idx = k * D + d
            fw = layers[idx]
            g = direct[:, d * H : (d + 1) * H]
            final = ()
            if final_state_grad is not None:
                final = (final_state_grad[0][idx],) + ((final_state_grad[1][idx],) if final_state_grad[1] is not None else ())
            grads[idx] = gr = cell.backward(fw, g[::-1] if d else g, final)
            if k > 0:  # the layer below reads this layer's input: dL/dx_t = W_ih^T δa_t  (T, I)
                dXr = gr.dA @ fw.w.W_ih
                dX = dX + (dXr[::-1] if d else dXr)
        direct = dX
    dh0 = np.stack([g.dh0 for g in grads])
    dc0 = np.stack([g.dc0 for g in grads]) if cell.has_cell_state else None
    return Pass(layers, grads, head.outputs, head.loss, head.step_losses, head.targets, dh0, dc0)


# ---- values held by hand ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Intervention:
    """Hold part of the network at a value over a span of steps, then trace what follows.

    kind "gate":  gate `name` (i f g o / r z n, or a for the Elman RNN) is set to `value`;
    kind "state": state `name` ("h", or "c" for LSTMs) is set to `value` — pin or zero a unit,
                  or, with stop = start + 1, edit h_t at one step.
    unit None means every unit; steps are sequence positions start <= t < stop (stop None: to
    the end). Gradients treat a held value as a constant: nothing flows back through it.
    """

    kind: str
    name: str
    value: float
    layer: int = 0
    direction: str = "forward"
    unit: int | None = None
    start: int = 0
    stop: int | None = None

    def check(self, cfg: ModelConfig, T: int) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TraceError(f"intervention {self.kind} {self.name}: {message}")

        need(self.kind in ("gate", "state"), "kind must be 'gate' or 'state'")
        names = cfg.gates if self.kind == "gate" else cfg.cell_spec.states
        need(self.name in names, f"this {cfg.cell} model has {', '.join(names)}")
        need(0 <= self.layer < cfg.num_layers, f"layer must be 0..{cfg.num_layers - 1}")
        need(self.direction == "forward" or (cfg.bidirectional and self.direction == "reverse"),
             "direction must be forward" + (" or reverse" if cfg.bidirectional else ""))  # fmt: skip
        need(self.unit is None or 0 <= self.unit < cfg.hidden_size, f"unit must be 0..{cfg.hidden_size - 1}")
        need(0 <= self.start < T and (self.stop is None or self.start < self.stop), f"steps must lie in 0..{T - 1}")
        need(math.isfinite(self.value), "value must be a finite number")


def _intervention_edit(interventions, k: int, d: int, t: int):
    """The `edit` hook for layer k, direction d, sequence position t (keep when nothing applies)."""
    direction = "reverse" if d else "forward"
    active = [
        iv for iv in interventions
        if iv.layer == k and iv.direction == direction and iv.start <= t and (iv.stop is None or t < iv.stop)
    ]  # fmt: skip
    if not active:
        return keep

    def edit(name: str, value):
        for iv in active:
            if iv.name == name:
                held = torch.full_like(value, iv.value)
                if iv.unit is None:
                    value = held
                else:
                    mask = torch.zeros(value.shape[-1], dtype=torch.bool, device=value.device)
                    mask[iv.unit] = True
                    value = torch.where(mask, held, value)
        return value

    return edit


def _autograd_pass(cfg: ModelConfig, P: dict, X0: np.ndarray, h0_all, c0_all, targets, final_state_grad,
                   interventions, Pt: dict | None = None) -> Pass:  # fmt: skip
    """The explicit path: step through the readable cell equations with autograd, held values in place.

    A zero probe is added to every h_t (and c_t); the gradient of the loss with respect to it is
    the total derivative dL/dh_t. Slower than the fast pass, and used where the fast pass cannot
    go: a network whose values are held by hand, so that it no longer follows its equations.

    Pt: the tensors on a device (a GPU) to run there, the head and the loss in torch with them;
    None: on the CPU, from the numpy copies P, the head in numpy (`head_and_loss`).
    """
    cell = cfg.cell_spec
    T, H, D = X0.shape[0], cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    on_device = Pt is not None
    if Pt is None:
        Pt = {k: torch.from_numpy(v) for k, v in P.items()}
    dev, dt = Pt["head.weight"].device, Pt["head.weight"].dtype
    given = lambda a: torch.as_tensor(np.ascontiguousarray(a)).to(device=dev, dtype=dt)  # noqa: E731
    h0 = given(h0_all).requires_grad_(True)
    c0 = given(c0_all).requires_grad_(True) if c0_all is not None else None
    probe_h = torch.zeros((LD, T, H), dtype=dt, device=dev, requires_grad=True)
    probe_c = torch.zeros((LD, T, H), dtype=dt, device=dev, requires_grad=True) if c0 is not None else None
    runs, layer_in = [], given(X0)
    with torch.enable_grad():
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                idx = k * D + d
                w = cell.layer_weights(Pt, f"_l{k}" + ("_reverse" if d else ""))
                h = h0[idx]
                c = c0[idx] if c0 is not None else None
                Hs, Cs, gates, pres = [], [], [], []
                for t in reversed(range(T)) if d else range(T):
                    held = _intervention_edit(interventions, k, d, t)
                    probes = {"h": probe_h[idx, t]}
                    if probe_c is not None:
                        probes["c"] = probe_c[idx, t]

                    def edit(name, value, held=held, probes=probes):
                        value = held(name, value)  # the probe sits after the held value, before any reader
                        return value + probes[name] if name in probes else value

                    h, c, g = cell_step(cfg, w, layer_in[t], h, c, edit)
                    Hs.append(h)
                    if c is not None:
                        Cs.append(c)
                    pre = [g[name][0] for name in cfg.gates]  # each gate's a_t, as the step reads it
                    for a in pre:
                        if a.requires_grad:
                            a.retain_grad()  # dL/da_t: the gradient on the tensor the gate reads
                    pres.append(pre)
                    gates.append(g)
                Hr = torch.stack(Hs)  # reading order
                runs.append((k, d, w, Hr, torch.stack(Cs) if Cs else None, gates, pres))
                outs.append(Hr.flip(0) if d else Hr)
            layer_in = torch.cat(outs, dim=-1)
        if on_device:
            head = _torch_head(cfg, Pt, layer_in, targets)
            tensors, grads_in = [head.loss], [torch.ones_like(head.loss)]
        else:
            head = head_and_loss(cfg, P, layer_in.detach().numpy(), targets)
            tensors, grads_in = [layer_in], [torch.from_numpy(np.ascontiguousarray(head.grad_top))]
        if final_state_grad is not None:  # a gradient arriving on the final state from outside
            tensors.append(torch.stack([r[3][-1] for r in runs]))
            grads_in.append(given(final_state_grad[0]))
            if cell.has_cell_state and final_state_grad[1] is not None:
                tensors.append(torch.stack([r[4][-1] for r in runs]))
                grads_in.append(given(final_state_grad[1]))
        torch.autograd.backward(tensors, grads_in)
    host = _host  # the records are numpy, on the CPU
    grad_of = lambda t: host(t.grad if t.grad is not None else torch.zeros_like(t))  # noqa: E731  unused: zero
    layers, grads = [], []
    for idx, (k, d, w, Hr, Cr, gates, pres) in enumerate(runs):
        order = (lambda a: a[::-1].copy()) if d else (lambda a: a)  # probes are by sequence position
        Xr = order(layers_input(layers, X0, k, D))
        H_ = host(Hr)
        C_ = host(Cr) if Cr is not None else None
        pre = {n: host(torch.stack([g[n][0] for g in gates])) for n in cfg.gates}
        act = {n: host(torch.stack([g[n][1] for g in gates])) for n in cfg.gates}
        wn = cell.layer_weights(P, w.suffix)
        c0_ = c0_all[idx] if c0_all is not None else None
        layers.append(cell.record(wn, Xr, H_, C_, pre, act, h0_all[idx], c0_, cfg.activation, k, bool(d)))
        dH = order(grad_of(probe_h)[idx])
        dC = order(grad_of(probe_c)[idx]) if probe_c is not None else None
        dA = np.stack([np.concatenate([grad_of(a) for a in pre]) for pre in pres])  # (T, G*H) torch's row order
        grads.append(LayerGrads(dH, dC, dA, None, None))
    dh0 = grad_of(h0)
    dc0 = grad_of(c0) if c0 is not None else None
    if on_device:
        return Pass(layers, grads, *head.records(), dh0, dc0)
    return Pass(layers, grads, head.outputs, head.loss, head.step_losses, head.targets, dh0, dc0)


# ---- on a device: the head in torch, and torch's fused kernels forward and backward ---------------------
def _host(t: torch.Tensor) -> np.ndarray:
    """A tensor's numpy copy on the CPU: the one way the trace's numbers leave a device."""
    return t.detach().cpu().numpy()


@dataclass(frozen=True)
class TorchHead:
    """`head_and_loss` in torch on the device, in autograd's graph: the outputs, the mean loss to
    run backward from, each row's loss, which rows are scored, and the targets, cleaned."""

    outputs: torch.Tensor  # (rows, O)
    loss: torch.Tensor  # () mean over the scored rows (0 when none is)
    per_row: torch.Tensor  # (rows,)
    scored: np.ndarray  # (rows,) bool
    targets: list

    def records(self) -> tuple:
        """(outputs, loss, step losses, targets) as the numpy records of a Pass."""
        outputs, per_row = _host(self.outputs), _host(self.per_row)
        loss = float(_host(self.loss)) if self.scored.any() else 0.0
        return outputs, loss, np.where(self.scored, per_row, np.nan).astype(outputs.dtype), self.targets


def _torch_head(cfg: ModelConfig, Pt: dict, top: torch.Tensor, targets) -> TorchHead:
    """y_r = V pooled_r + b; the loss of each scored row and their mean L (`head_and_loss`'s
    equations, whose gradient autograd then takes), with `top` (T, D*H) on its device."""
    H = cfg.hidden_size
    if cfg.head == "step":
        pooled = top
    elif cfg.head == "mean":
        pooled = top.mean(0, keepdim=True)
    else:
        last = top[-1, :H]  # the forward direction ends at T-1 ...
        if cfg.bidirectional:
            last = torch.cat([last, top[0, H:]])  # ... the reverse one at 0
        pooled = last[None]
    Y = affine(pooled, Pt["head.weight"], Pt.get("head.bias"))  # (rows, O)
    rows, dev = Y.shape[0], Y.device
    tgt, scored, clean = _as_targets(cfg, targets, rows, np.dtype(str(Y.dtype).removeprefix("torch.")))
    if cfg.loss == "ce":
        per_row = torch.nn.functional.cross_entropy(Y, torch.as_tensor(np.where(scored, tgt, 0)).to(dev), reduction="none")
    else:
        per_row = ((Y - torch.as_tensor(tgt).to(dev)) ** 2).mean(dim=-1)
    picked = torch.as_tensor(np.flatnonzero(scored)).to(dev)  # the scored rows, chosen on the host
    loss = per_row.index_select(0, picked).sum() / max(int(picked.numel()), 1)
    return TorchHead(Y, loss, per_row, scored, clean)


def _scan_back(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """y_{T-1} = base_{T-1};  y_t = base_t + factor_{t+1} ⊙ y_{t+1}: a gradient carried back along
    an elementwise path of the recurrence (the LSTM's c_t = f_t ⊙ c_{t-1} + ..., the GRU's
    h_t = ... + z_t ⊙ h_{t-1}), which a kernel's gradient on its inputs does not show."""
    y = np.empty_like(base)
    y[-1] = base[-1]
    for t in range(base.shape[0] - 2, -1, -1):
        np.multiply(factor[t + 1], y[t + 1], out=y[t])
        y[t] += base[t]
    return y


def _fused_device_pass(cfg: ModelConfig, P: dict, Pt: dict, X0: np.ndarray, h0_all, c0_all, targets,
                       final_state_grad) -> Pass:  # fmt: skip
    """torch's fused kernel for each layer and direction on the device (cuDNN on a GPU), forward
    and backward, for the cells torch has (rnn tanh/relu, lstm, gru).

    The kernel runs in training mode with dropout 0 (cuDNN keeps what its backward needs only in
    training mode; dropout 0 makes the two modes compute the same), on Z_t = W_ih x_t + b_ih made
    outside it and read through an identity input matrix. Every gate pre-activation is
    a_t = Z_t + (its recurrent part), so the gradient autograd leaves on Z_t is δa_t = dL/da_t;
    and on the kernel's output h_t, the gradient reaching h_t from outside the recurrence
    (the head or the layer above), direct_t. The total derivatives follow:

        dL/dh_t = direct_t + W_hh^T δa_{t+1}                                      rnn, lstm
        dL/dh_t = direct_t + W_hh^T [δa_r; δa_z; r ⊙ δa_n]_{t+1} + z_{t+1} ⊙ dL/dh_{t+1}   gru
        dL/dc_t = dL/dh_t ⊙ o_t tanh'(c_t) + f_{t+1} ⊙ dL/dc_{t+1}                   lstm

    the products on the device, the elementwise carries (`_scan_back`) and the LSTM's
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t on the host's numpy copies. The gates come from one step of
    the cell's own equations (`Cell.step`) over every (x_t, h_{t-1}) at once.
    """
    cell = cfg.cell_spec
    kind, H, D, G = cell.fused, cfg.hidden_size, cfg.num_directions, cell.G
    dev, dt = Pt["head.weight"].device, Pt["head.weight"].dtype
    kernel = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN": {"tanh": torch.rnn_tanh, "relu": torch.rnn_relu}.get(cfg.activation)}[kind]
    given = lambda a: torch.as_tensor(np.ascontiguousarray(a)).to(device=dev, dtype=dt)  # noqa: E731
    eye = torch.eye(G * H, dtype=dt, device=dev)  # the input matrix that reads Z_t as it is
    no_bias = torch.zeros(G * H, dtype=dt, device=dev)  # b_ih is in Z_t already
    runs = []
    with torch.enable_grad():
        h0 = given(h0_all).requires_grad_(True)
        c0 = given(c0_all).requires_grad_(True) if c0_all is not None else None
        layer_in = given(X0).requires_grad_(True)  # so that every Z_t is in the graph
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                idx = k * D + d
                w = cell.layer_weights(Pt, f"_l{k}" + ("_reverse" if d else ""))
                Xr = layer_in.flip(0) if d else layer_in  # (T, I) reading order
                Z = affine(Xr, w.W_ih, w.b_ih)  # (T, G*H)
                Z.retain_grad()
                params = [eye, w.W_hh] + ([no_bias, w.b_hh] if cfg.bias else [])
                hx = h0[idx][None, None]  # (1, 1, H)
                with warnings.catch_warnings():  # cuDNN packs the four tensors into one buffer, and says so
                    warnings.filterwarnings("ignore", message="RNN module weights are not part")
                    if kind == "LSTM":
                        out, h_n, c_n = kernel(Z[None], (hx, c0[idx][None, None]), params, cfg.bias, 1, 0.0, True, False, True)
                    else:
                        (out, h_n), c_n = kernel(Z[None], hx, params, cfg.bias, 1, 0.0, True, False, True), None
                Hr = out[0]  # (T, H) h_t in reading order
                Hr.retain_grad()
                runs.append((k, d, w, Xr, Z, Hr, h_n[0, 0], None if c_n is None else c_n[0, 0]))
                outs.append(Hr.flip(0) if d else Hr)
            layer_in = torch.cat(outs, dim=-1) if D > 1 else outs[0]  # (T, D*H)
        head = _torch_head(cfg, Pt, layer_in, targets)
        tensors, grads_in = [head.loss], [torch.ones_like(head.loss)]
        final_h = final_c = None
        if final_state_grad is not None:  # a gradient arriving on the final state from outside
            final_h = given(final_state_grad[0])
            tensors.append(torch.stack([r[6] for r in runs]))
            grads_in.append(final_h)
            if kind == "LSTM" and final_state_grad[1] is not None:
                final_c = given(final_state_grad[1])
                tensors.append(torch.stack([r[7] for r in runs]))
                grads_in.append(final_c)
        torch.autograd.backward(tensors, grads_in)
    host = _host
    layers, grads = [], []
    with torch.no_grad():
        for idx, (k, d, w, Xr, Z, Hr, _, _) in enumerate(runs):
            dA = Z.grad if Z.grad is not None else torch.zeros_like(Z)  # (T, G*H) δa_t
            direct = Hr.grad if Hr.grad is not None else torch.zeros_like(Hr)  # (T, H)
            H_prev = torch.cat([h0[idx][None], Hr[:-1]])  # (T, H) the state each step read
            state = (H_prev, torch.zeros_like(H_prev)) if cell.has_cell_state else (H_prev,)
            _, gates = cell.step(Xr, state, w, cfg.activation)  # the gates read (x_t, h_{t-1}) only
            rows = dA
            if kind == "GRU":  # what W_hn saw: r ⊙ δa_n
                rows = torch.cat([dA[:, : 2 * H], gates["r"][1] * dA[:, 2 * H :]], dim=1)
            rec = torch.zeros_like(Hr)  # (T, H) the gradient reaching h_t from step t+1
            rec[:-1] = rows[1:] @ w.W_hh
            if final_h is not None:
                rec[-1] = final_h[idx]
            base = host(direct + rec)
            H_ = host(Hr)
            pre = {n: host(gates[n][0]) for n in cfg.gates}
            act = {n: host(gates[n][1]) for n in cfg.gates}
            C_ = dC = None
            if kind == "GRU":
                dH = _scan_back(base, act["z"])
            else:
                dH = base
            if kind == "RNN":
                act["a"] = H_  # h_t = act(a_t): the kernel's own, as on the CPU
            if kind == "LSTM":
                i, f, g, o = (act[n] for n in cell.gates)
                C_ = np.empty_like(H_)
                c, ig = np.asarray(c0_all[idx]), i * g
                for t in range(H_.shape[0]):
                    c = np.multiply(f[t], c, out=C_[t])
                    c += ig[t]
                tc = np.tanh(C_)
                K_c = o * (1 - tc * tc)  # ∂h_t/∂c_t
                dc_base = dH * K_c
                if final_c is not None:
                    dc_base[-1] += host(final_c[idx])
                dC = _scan_back(dc_base, f)
            wn = cell.layer_weights(P, w.suffix)
            c0_ = c0_all[idx] if c0_all is not None else None
            layers.append(cell.record(wn, host(Xr), H_, C_, pre, act, h0_all[idx], c0_, cfg.activation, k, bool(d)))
            grads.append(LayerGrads(dH, dC, host(dA), None, None))
    dh0 = host(h0.grad)
    dc0 = host(c0.grad) if c0 is not None else None
    return Pass(layers, grads, *head.records(), dh0, dc0)


def _device_pass(cfg: ModelConfig, P: dict, model: RNNModel, X0: np.ndarray, h0_all, c0_all, targets,
                 final_state_grad, interventions, dev, dtype: str) -> Pass:  # fmt: skip
    """The trace's torch work on `dev` (a torch.device): the fused kernels where torch has the
    cell and nothing is held by hand, else the readable steps with autograd."""
    Pt = {k: v.detach().to(device=dev, dtype=DTYPES[dtype]) for k, v in model.tensors().items()}
    if cfg.torch_native and not interventions:
        return _fused_device_pass(cfg, P, Pt, X0, h0_all, c0_all, targets, final_state_grad)
    return _autograd_pass(cfg, P, X0, h0_all, c0_all, targets, final_state_grad, interventions, Pt=Pt)


def layers_input(layers: list[LayerForward], X0: np.ndarray, k: int, D: int) -> np.ndarray:
    """(T, I) what layer k reads, in sequence order: the inputs, or layer k-1's states side by side."""
    if k == 0:
        return X0
    below = layers[(k - 1) * D : k * D]
    return np.concatenate([fw.H[::-1] if fw.reverse else fw.H for fw in below], axis=1)


# ---- the whole trace -------------------------------------------------------------------------------------
@torch.no_grad()
def run_trace(
    model: RNNModel,
    x,
    targets: Sequence | None = None,
    *,
    tokens: Sequence[str] | None = None,
    vocab: Sequence[str] | None = None,
    dtype: str = "float32",
    initial_state: tuple | None = None,
    final_state_grad: tuple | None = None,
    interventions: Sequence[Intervention] = (),
    device=None,
) -> Trace:
    """Trace one sequence.

    x: token ids (T,) or vectors (T, I). targets: one per output row (T rows for head="step",
    one for a pooled head), None where unscored. initial_state: (h0, c0) in torch's (L*D, H)
    layout; final_state_grad: gradient arriving on the final state (h_n, c_n) from outside (an
    encoder feeding a decoder). The gradient on the initial state is in extras["dL_dh0"] (and
    extras["dL_dc0"]), in the same layout. interventions: values held by hand (see
    `Intervention`); the trace then shows the network as changed. device: where torch's work
    runs (an `engine.device.Device`, "cpu", "cuda" or "auto"); None: where the model is. The
    records are numpy on the CPU wherever it ran; extras["device"] names the device.
    """
    cfg = model.config
    dev = of_module(model) if device is None else as_device(device)
    if dtype not in DTYPES:
        raise TraceError(f"unknown dtype {dtype!r}: choose float32 or float64")
    dt = DTYPES[dtype]
    # numpy copies of every tensor: the computation reads them, and the trace keeps them
    P = {k: v.detach().to(device="cpu", dtype=dt, copy=True).numpy() for k, v in model.tensors().items()}
    X0 = _encode(cfg, x, P, dtype)
    T = X0.shape[0]
    if T == 0:
        raise TraceError("the sequence is empty: give at least one token or vector")
    if T > MAX_STEPS:
        raise TraceError(f"the sequence has {T} steps; at most {MAX_STEPS} can be traced")
    labels = list(tokens) if tokens is not None else [str(i) for i in range(T)]
    if len(labels) != T:
        raise TraceError(f"got {len(labels)} token labels for {T} steps")
    for iv in interventions:
        iv.check(cfg, T)
    H, D = cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    as_np = lambda t: torch.as_tensor(t).detach().to(device="cpu", dtype=dt).reshape(LD, H).numpy()  # noqa: E731
    h0_all = np.zeros((LD, H), dtype) if initial_state is None else as_np(initial_state[0])
    c0_all = None
    if cfg.has_cell_state:
        given = initial_state is not None and initial_state[1] is not None
        c0_all = as_np(initial_state[1]) if given else np.zeros((LD, H), dtype)
    final = None
    if final_state_grad is not None:
        has_c = cfg.has_cell_state and final_state_grad[1] is not None
        final = (as_np(final_state_grad[0]), as_np(final_state_grad[1]) if has_c else None)

    with np.errstate(all="ignore"):  # a diverged model's inf and nan are its numbers, shown as such
        if dev.accelerated:
            run = _device_pass(cfg, P, model, X0, h0_all, c0_all, targets, final, list(interventions), dev.torch, dtype)
        elif interventions:
            run = _autograd_pass(cfg, P, X0, h0_all, c0_all, targets, final, list(interventions))
        else:
            run = _fast_pass(cfg, P, X0, h0_all, c0_all, targets, final)

    seq = lambda fw, a: None if a is None else (a[::-1].copy() if fw.reverse else a)  # noqa: E731
    layers = [
        LayerTrace(
            layer=fw.layer,
            direction="reverse" if fw.reverse else "forward",
            h=seq(fw, fw.H),
            c=seq(fw, fw.C),
            gates={name: seq(fw, a) for name, a in fw.act.items()},
            preacts={name: seq(fw, a) for name, a in fw.pre.items()},
            dL_dh=seq(fw, g.dH),
            dL_dc=seq(fw, g.dC),
            dL_dpre=seq(fw, g.dA),
            h0=np.array(fw.h0),
            c0=None if fw.c0 is None else np.array(fw.c0),
        )
        for fw, g in zip(run.layers, run.grads)
    ]
    return Trace(
        config=cfg,
        dtype=dtype,
        tokens=labels,
        inputs=X0,
        layers=layers,
        outputs=run.outputs,
        targets=run.targets,
        step_losses=run.step_losses,
        loss=run.loss,
        params=P,
        vocab=list(vocab) if vocab is not None else None,
        extras={"dL_dh0": run.dh0, "dL_dc0": run.dc0, "interventions": list(interventions), "device": dev.kind},
    )
