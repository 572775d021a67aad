"""The spectrum of each W_hh gate block against 1, on one number line per gate.

    W_hh   0                 1
    i  σ   ·●●·●●──●─────────│──      ‖W‖₂ 1.34
       |λ| ●●●●●─────────────│        ρ 0.91

Singular values bound how much one step can stretch a state (‖W‖₂ is the largest); the
eigenvalue moduli say what repeated steps do: for a linear Elman network J_t = W_hh, so ρ < 1
makes the gradient vanish and ρ > 1 lets it explode. The marker is at 1.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

MIN_SPAN = 1.25  # the line always reaches past 1


def number_line(values: np.ndarray, width: int, top: float) -> str:
    """`width` characters for 0 .. top: ● where a value falls (a digit when several share a
    cell), │ at 1, ─ elsewhere."""
    cells = [0] * width
    for v in np.asarray(values, dtype=np.float64):
        if np.isfinite(v):
            x = min(int(round(v / top * (width - 1))), width - 1)
            cells[max(x, 0)] += 1
    one = int(round(1.0 / top * (width - 1)))
    out = []
    for x, n in enumerate(cells):
        if n == 0:
            out.append("│" if x == one else "─")
        elif n == 1:
            out.append("●")
        else:
            out.append(str(n) if n < 10 else "+")
    return "".join(out)


def span(spectra: dict) -> float:
    """The top of the shared number line: the largest value, and at least MIN_SPAN."""
    top = MIN_SPAN
    for s in spectra.values():
        for arr in (s.singular_values, s.eigenvalue_moduli):
            fin = np.asarray(arr)[np.isfinite(arr)]
            if fin.size:
                top = max(top, float(fin.max()) * 1.05)
    return top


class SpectrumView(Widget):
    """Bound to a dict gate -> `engine.gradflow.Spectrum` (None: nothing yet)."""

    COMPONENT_CLASSES = {"spectrum-view--over"}

    DEFAULT_CSS = """
    SpectrumView { height: auto; text-wrap: nowrap; text-overflow: clip; }
    SpectrumView > .spectrum-view--over { color: $error; text-style: bold; }
    """

    spectra: reactive[dict | None] = reactive(None, layout=True, always_update=True)  # holds arrays: no ==
    message: reactive[str] = reactive("")
    diagonal: reactive[bool] = reactive(False)  # the recurrence is w_hh ⊙ h (IndRNN): one |w_hh| per unit

    def render(self) -> Text:
        spectra = self.spectra
        if not spectra:
            return Text(self.message, style="dim italic")
        if self.diagonal:
            return self._diagonal(next(iter(spectra.values())))
        suffix = max(max(len(f"  ‖W‖₂ {s.spectral_norm:.3g}"), len(f"  ρ {s.spectral_radius:.3g}"))
                     for s in spectra.values())
        width = max(self.size.width - 7 - suffix, 8)
        top = span(spectra)
        over = self.get_component_rich_style("spectrum-view--over")
        out = Text(no_wrap=True, overflow="crop")
        one = int(round(1.0 / top * (width - 1)))
        out.append("W_hh   " + "0".ljust(one) + "1\n", style="dim")
        for gate, s in spectra.items():
            name = "" if gate == "a" else gate
            out.append(f"{name:<2} σ   ", style="bold")
            out.append(number_line(s.singular_values, width, top))
            out.append(f"  ‖W‖₂ {s.spectral_norm:.3g}\n")
            out.append("   |λ| ", style="bold")
            line = number_line(s.eigenvalue_moduli, width, top)
            out.append(line)
            rho = s.spectral_radius
            out.append(f"  ρ {rho:.3g}", style=over if rho > 1 else "")
            out.append("\n")
        out.rstrip()
        return out

    def _diagonal(self, s) -> Text:
        """IndRNN: diag(w_hh) has singular values and eigenvalue moduli |w_hh|, one per unit."""
        mags = np.asarray(s.singular_values, dtype=np.float64)
        above = int((mags > 1).sum())
        suffix = f"  max {s.spectral_radius:.3g}"
        width = max(self.size.width - 7 - len(suffix), 8)
        top = span({"a": s})
        one = int(round(1.0 / top * (width - 1)))
        out = Text(no_wrap=True, overflow="crop")
        out.append("w_hh   " + "0".ljust(one) + "1\n", style="dim")
        out.append("|w_hh| ", style="bold")
        out.append(number_line(mags, width, top))
        out.append(suffix + "\n", style=self.get_component_rich_style("spectrum-view--over") if above else "")
        out.append(f"{above} of {len(mags)} units above 1", style="dim")
        return out
