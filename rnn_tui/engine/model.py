"""A recurrent model: input encoding -> stacked recurrent layers -> linear head.

Two paths compute the recurrent layers, side by side as in nanoGPT:
- the fast path, `torch.nn.RNN/LSTM/GRU`, for the cells torch fuses (training uses it);
- the explicit path, `CellStack`, which loops over a cell's readable step (`rnn_tui.engine.cells`)
  for the variants torch lacks (lstm-peephole, gru-textbook, sigmoid/identity rnn).
Both register their tensors under torch's state_dict names, so `model.tensors()` reads the same
whichever path is in use, and a user's own `torch.nn.LSTM` state_dict loads straight in.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnn_tui.engine.cells import LayerWeights
from rnn_tui.engine.config import ConfigError, ModelConfig, layer_names

IGNORE = -100  # target index of an unscored step (cross-entropy), as torch's ignore_index


class CellStack(nn.Module):
    """Stacked, optionally bidirectional layers of any registered cell, under torch's tensor names.

    Each layer and direction holds the tensors its cell declares (`Cell.weights`): weight_ih_l{k},
    weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, and for peepholes the vectors weight_ci_l{k},
    weight_cf_l{k}, weight_co_l{k}.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        cell, H = config.cell_spec, config.hidden_size
        for k, _, sfx in layer_names(config):
            I = config.input_size if k == 0 else H * config.num_directions
            for prefix, shape in cell.tensor_shapes(H, I, config.bias).items():
                self.register_parameter(prefix + sfx, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation for recurrent layers: U(-1/sqrt(H), 1/sqrt(H)) for everything,
        except the tensors a cell starts otherwise (`Cell.init_ranges`: IndRNN's w_hh in [0, 1])."""
        bound = 1.0 / math.sqrt(self.config.hidden_size)
        ranges = self.config.cell_spec.init_ranges
        for name, p in self.named_parameters():
            lo, hi = next(((a, b) for prefix, a, b in ranges if name.startswith(prefix + "_l")), (-bound, bound))
            nn.init.uniform_(p, lo, hi)

    def weights(self, sfx: str) -> LayerWeights:
        """The tensors of one layer and direction, by their equation names."""
        return self.config.cell_spec.layer_weights(self._parameters, sfx)

    def step(self, sfx: str, x: Tensor, h: Tensor, c: Tensor | None):
        """One step of one layer and direction: returns (h_t, c_t or None, gates)."""
        cell = self.config.cell_spec
        state, gates = cell.step(x, (h, c) if cell.has_cell_state else (h,), self.weights(sfx), self.config.activation)
        return state[0], (state[1] if cell.has_cell_state else None), gates

    def forward(self, x: Tensor, state=None):
        """x (B, T, I) -> output (B, T, D*H), and the final state in torch's (L*D, B, H) layout."""
        cfg = self.config
        B, T, _ = x.shape
        D = cfg.num_directions
        h0, c0 = split_state(cfg, state, B, x)
        h_n, c_n = [], []
        layer_in = x
        scans = hasattr(cfg.cell_spec, "torch_layer")  # a linear recurrence: a whole layer at once
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                h, c = h0[k * D + d], (c0[k * D + d] if c0 is not None else None)
                if scans:
                    xs = layer_in.flip(1) if d else layer_in  # reading order
                    hr = cfg.cell_spec.torch_layer(xs, h, self.weights(sfx), parallel=cfg.scan == "parallel")
                    outs.append(hr.flip(1) if d else hr)
                    h_n.append(hr[:, -1])
                    c_n.append(None)
                    continue
                hs = [None] * T
                for t in reversed(range(T)) if d else range(T):
                    h, c, _ = self.step(sfx, layer_in[:, t], h, c)
                    hs[t] = h
                outs.append(torch.stack(hs, dim=1))  # (B, T, H)
                h_n.append(h)
                c_n.append(c)
            layer_in = torch.cat(outs, dim=-1)  # (B, T, D*H)
        h_n = torch.stack(h_n)  # (L*D, B, H)
        if cfg.has_cell_state:
            return layer_in, (h_n, torch.stack(c_n))
        return layer_in, h_n


def split_state(cfg: ModelConfig, state, B: int, like: Tensor):
    """(h0, c0) in torch's (L*D, B, H) layout, zeros where not given."""
    shape = (cfg.num_layers * cfg.num_directions, B, cfg.hidden_size)
    if state is None:
        z = like.new_zeros(shape)
        return z, (like.new_zeros(shape) if cfg.has_cell_state else None)
    if cfg.has_cell_state:
        return state
    return state, None


def fused_core(config: ModelConfig) -> nn.Module:
    """The torch.nn module that computes this config's layers (cells torch has)."""
    kwargs = dict(
        input_size=config.input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        bias=config.bias,
        batch_first=True,
        bidirectional=config.bidirectional,
    )
    kind = config.cell_spec.fused  # "LSTM", "GRU" or "RNN": the module's name in torch.nn
    if kind == "RNN":
        kwargs["nonlinearity"] = config.activation
    return getattr(nn, kind)(**kwargs)


class RNNModel(nn.Module):
    """y = head(core(encode(x))): one-hot / embedding / raw vectors in, a linear read-out.

    head="step":  y_t = V h_t + b at every step        -> (B, T, O)   (b = 0 without head_bias)
    head="last":  y = V h_T + b (both directions' ends) -> (B, O)
    head="mean":  y = V mean_t(h_t) + b                 -> (B, O)
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        if config.input_mode == "embedding":
            self.embedding = nn.Embedding(config.vocab_size, config.input_size)
        self.core = fused_core(config) if config.torch_native else CellStack(config)
        self.head = nn.Linear(config.hidden_size * config.num_directions, config.output_size, bias=config.head_bias)

    def encode(self, x: Tensor) -> Tensor:
        """Token ids (B, T) -> the vectors fed to layer 0 (B, T, I); raw vectors pass through."""
        mode = self.config.input_mode
        if mode == "vectors":
            return x.to(self.head.weight.dtype)
        if mode == "embedding":
            return self.embedding(x)
        return nn.functional.one_hot(x, self.config.vocab_size).to(self.head.weight.dtype)

    def pool(self, out: Tensor) -> Tensor:
        """(B, T, D*H) -> what the head reads: every step, or one pooled state per sequence."""
        head = self.config.head
        if head == "step":
            return out
        if head == "mean":
            return out.mean(dim=1)
        H = self.config.hidden_size
        last = out[:, -1, :H]  # the forward direction ends at T-1 ...
        if self.config.bidirectional:
            last = torch.cat([last, out[:, 0, H:]], dim=-1)  # ... the reverse one at 0
        return last

    def forward(self, x: Tensor, state=None, return_state: bool = False):
        out, final = self.core(self.encode(x), state)
        y = self.head(self.pool(out))
        return (y, final) if return_state else y

    # ---- tensors by their torch names -------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        """Every tensor by its torch name: weight_ih_l0 ..., head.weight, head.bias, embedding.weight."""
        named = dict(self.core.named_parameters())
        named.update({f"head.{k}": v for k, v in self.head.named_parameters()})
        if self.config.input_mode == "embedding":
            named["embedding.weight"] = self.embedding.weight
        return named

    def load_tensors(self, tensors: dict[str, Tensor], strict: bool = True) -> None:
        """Copy tensors in by name; a missing, extra or mis-shaped tensor raises ConfigError."""
        copy_tensors(self.tensors(), tensors, f"a {self.config.cell} model", strict)
        if isinstance(self.core, nn.RNNBase):
            self.core.flatten_parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.tensors().values())


@torch.no_grad()
def copy_tensors(mine: dict[str, Tensor], given: dict[str, Tensor], what: str, strict: bool = True) -> None:
    """Copy `given` into the model's own tensors `mine`, by name, checking names and shapes."""
    if strict:
        missing = sorted(set(mine) - set(given))
        extra = sorted(set(given) - set(mine))
        if missing:
            raise ConfigError(f"missing tensor(s) for {what}: {', '.join(missing)}")
        if extra:
            raise ConfigError(f"unexpected tensor(s) for {what}: {', '.join(extra)}")
    for name, value in given.items():
        if name not in mine:
            continue
        value = torch.as_tensor(value)
        if tuple(value.shape) != tuple(mine[name].shape):
            raise ConfigError(f"tensor {name} has shape {tuple(value.shape)}, the model needs {tuple(mine[name].shape)}")
        mine[name].copy_(value.to(mine[name].dtype))


def use_scan(model: nn.Module, scan: str) -> None:
    """Run a model's linear recurrences (minGRU, minLSTM) as the loop or the chunked scan from now on:
    the same numbers either way. ConfigError (one line) for a cell that has no scan."""
    for half in (getattr(model, "encoder", None), getattr(model, "decoder", None), model):
        if half is None or not hasattr(half, "config"):
            continue
        half.config = half.config.replace(scan=scan)
        if isinstance(getattr(half, "core", None), CellStack):
            half.core.config = half.config
    if hasattr(model, "encoder_config"):
        model.encoder_config = model.encoder_config.replace(scan=scan)


def build_model(config: ModelConfig, seed: int | None = None) -> RNNModel:
    """A freshly initialised model; the same seed gives the same weights."""
    if seed is None:
        return RNNModel(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RNNModel(config)


def compute_loss(config: ModelConfig, outputs: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """The mean loss over scored outputs.

    ce:  outputs (..., O) logits, targets (...) class indices, IGNORE where unscored.
    mse: outputs (..., O), targets (..., O); per-row loss is the mean over O; mask (...) marks
         the scored rows (all when None).
    """
    if config.loss == "ce":
        O = outputs.shape[-1]
        return nn.functional.cross_entropy(outputs.reshape(-1, O), targets.reshape(-1), ignore_index=IGNORE)
    row = ((outputs - targets) ** 2).mean(dim=-1)
    if mask is None:
        return row.mean()
    return row[mask].mean()
