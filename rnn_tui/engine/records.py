"""Plain records the engine hands out: numpy copies, never live tensors.

These are what the CLI prints and the UI draws. They import numpy only, so a UI can hold and
render them without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.numerics import norm

SCHEMA = "rnn-tui.trace/1"


@dataclass(frozen=True)
class LayerTrace:
    """One layer and direction of one sequence. Every array is indexed by sequence position t.

    For a reverse direction, h[t] is the state after reading x_{T-1} .. x_t (torch's layout).
    """

    layer: int
    direction: str  # "forward" | "reverse"
    h: np.ndarray  # (T, H) hidden state h_t
    c: np.ndarray | None  # (T, H) cell state c_t, LSTMs only
    gates: dict[str, np.ndarray]  # gate name -> (T, H) activated value (i f g o / r z n / a)
    preacts: dict[str, np.ndarray]  # gate name -> (T, H) value before the gate's nonlinearity
    dL_dh: np.ndarray  # (T, H) total derivative dL/dh_t, all paths through later steps
    dL_dc: np.ndarray | None  # (T, H) total derivative dL/dc_t, LSTMs only
    dL_dpre: np.ndarray  # (T, G*H) dL/d(pre-activations), torch's gate order (the delta of BPTT)
    h0: np.ndarray  # (H,) state before the first step this direction reads
    c0: np.ndarray | None  # (H,) initial cell state, LSTMs only

    @property
    def name(self) -> str:
        suffix = "_reverse" if self.direction == "reverse" else ""
        return f"l{self.layer}{suffix}"

    @property
    def h_prev(self) -> np.ndarray:
        """(T, H) the state each step reads: h_{t-1} forward, h_{t+1} in reverse."""
        if self.direction == "forward":
            return np.concatenate([self.h0[None], self.h[:-1]], axis=0)
        return np.concatenate([self.h[1:], self.h0[None]], axis=0)

    @property
    def c_prev(self) -> np.ndarray | None:
        if self.c is None or self.c0 is None:
            return None
        if self.direction == "forward":
            return np.concatenate([self.c0[None], self.c[:-1]], axis=0)
        return np.concatenate([self.c[1:], self.c0[None]], axis=0)

    @property
    def dL_dh_norm(self) -> np.ndarray:
        return norm(self.dL_dh, axis=1)

    @property
    def dL_dc_norm(self) -> np.ndarray | None:
        return None if self.dL_dc is None else norm(self.dL_dc, axis=1)


@dataclass(frozen=True)
class Trace:
    """One sequence run through a model, with every state, gate, output, loss and gradient."""

    config: ModelConfig
    dtype: str  # "float32" | "float64"
    tokens: list[str]  # one label per step
    inputs: np.ndarray  # (T, input_size) the exact vectors fed to layer 0
    layers: list[LayerTrace]  # per layer and direction, forward before reverse
    outputs: np.ndarray  # (T, O) per-step head outputs, or (1, O) for a pooled head
    targets: list  # per output row: class index, vector, or None where unscored
    step_losses: np.ndarray  # (len(outputs),) loss of each scored row, nan where unscored
    loss: float  # mean over scored rows
    params: dict[str, np.ndarray]  # every tensor by its torch name, head included
    vocab: list[str] | None = None  # output class labels, when the output is over tokens
    extras: dict = field(default_factory=dict)  # analyses attached by later stages (gradient flow)

    @property
    def T(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def probs(self) -> np.ndarray | None:
        """(rows, O) softmax of the outputs for a cross-entropy model, else None."""
        if self.config.loss != "ce":
            return None
        z = self.outputs - self.outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def layer(self, layer: int, direction: str = "forward") -> LayerTrace:
        for entry in self.layers:
            if entry.layer == layer and entry.direction == direction:
                return entry
        raise KeyError(f"no layer {layer} {direction} in this trace")
