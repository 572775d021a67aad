"""The explorer's themes. Each pairs a Textual theme (the app's colours) with a heatmap palette
(`palette.PALETTES`) of the same short name.

    dark            the default
    high-contrast   black and saturated colours, large marks: for projectors
    colorblind      blue/orange diverging and cividis heatmaps, safe under colour-vision deficiency
    mono            no colour: greys for the chrome, a glyph ramp for the heatmaps (NO_COLOR)
"""

from __future__ import annotations

from textual.theme import Theme

THEMES: dict[str, Theme] = {
    "dark": Theme(
        name="rnn-dark",
        primary="#4393c3",
        secondary="#2166ac",
        accent="#f4a582",
        warning="#fdb863",
        error="#e0454f",
        success="#5ab46e",
        foreground="#e0e0e0",
        background="#121212",
        surface="#1b1b1b",
        panel="#262626",
        dark=True,
    ),
    "high-contrast": Theme(
        name="rnn-high-contrast",
        primary="#ffff00",
        secondary="#00ffff",
        accent="#00ff00",
        warning="#ffff00",
        error="#ff4040",
        success="#00ff00",
        foreground="#ffffff",
        background="#000000",
        surface="#000000",
        panel="#1a1a1a",
        dark=True,
        luminosity_spread=0.3,
        text_alpha=1.0,
    ),
    "colorblind": Theme(
        name="rnn-colorblind",
        primary="#5e3c99",
        secondary="#b2abd2",
        accent="#e66101",
        warning="#fdb863",
        error="#e66101",
        success="#b2abd2",
        foreground="#e0e0e0",
        background="#121212",
        surface="#1b1b1b",
        panel="#262626",
        dark=True,
    ),
    "mono": Theme(
        name="rnn-mono",
        primary="#c0c0c0",
        secondary="#808080",
        accent="#ffffff",
        warning="#ffffff",
        error="#ffffff",
        success="#c0c0c0",
        foreground="#e0e0e0",
        background="#000000",
        surface="#0a0a0a",
        panel="#202020",
        dark=True,
    ),
}

THEME_NAMES = tuple(THEMES)  # the order `t` cycles through


def theme_name(short: str) -> str:
    """"dark" -> "rnn-dark"; an unknown name raises ValueError listing the choices."""
    if short in THEMES:
        return THEMES[short].name
    if short.removeprefix("rnn-") in THEMES:
        return THEMES[short.removeprefix("rnn-")].name
    raise ValueError(f"unknown theme {short!r}: choose one of {', '.join(THEMES)}")


def short_name(name: str) -> str:
    return name.removeprefix("rnn-")
