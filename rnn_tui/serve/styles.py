"""Parsed styles kept for the whole process, so that a forked visitor does not parse them again.

Textual parses each stylesheet source (app.tcss, every widget's DEFAULT_CSS) per Stylesheet, and
a theme being set at start makes it parse them all again in a fresh Stylesheet: about 30 parses
for each new explorer, a fifth of a visitor's first frame. The result depends only on the source
text, where it came from, and the CSS variables (the theme) substituted into it; so here the
rules are kept in one table for the process, keyed by exactly that. The preloader installs it
before its warm-up run, which fills the table; each visitor inherits the table and looks its
styles up. Within one Stylesheet Textual already shares the same rule objects between parses, so
sharing them between stylesheets hands out nothing that is changed afterwards.

Textual is pinned (pyproject.toml): `share_parsed_styles` checks that the method it wraps has the
signature it expects, and leaves Textual as it is otherwise.
"""

from __future__ import annotations

import inspect

_MAX_THEMES = 32  # distinct sets of variables kept (a theme each); past that, the table restarts


def share_parsed_styles() -> bool:
    """Wrap Textual's Stylesheet._parse_rules with the process-wide table; False if Textual is
    not the one this was written for (nothing changed then)."""
    from textual.css.stylesheet import Stylesheet

    original = Stylesheet._parse_rules
    if getattr(original, "_rnn_tui_shared", False):
        return True
    params = list(inspect.signature(original).parameters)
    if params != ["self", "css", "read_from", "is_default_rules", "tie_breaker", "scope"]:
        return False
    table: dict[tuple, list] = {}
    themes: dict[tuple, int] = {}  # the variables, frozen -> a small number for the key
    seen: dict[int, tuple] = {}  # id(variables dict) -> (that dict, its number): one freeze per dict

    def theme_of(variables: dict) -> int:
        hit = seen.get(id(variables))
        if hit is None or hit[0] is not variables:
            if len(seen) > 4 * _MAX_THEMES:  # a dict per theme change; keep a few
                seen.clear()
            frozen = tuple(sorted(variables.items()))
            if frozen not in themes and len(themes) >= _MAX_THEMES:
                themes.clear()
                table.clear()
                seen.clear()
            number = themes.setdefault(frozen, len(themes))
            hit = seen[id(variables)] = (variables, number)
        return hit[1]

    def _parse_rules(self, css, read_from, is_default_rules=False, tie_breaker=0, scope=""):
        key = (css, read_from, is_default_rules, tie_breaker, scope, theme_of(self._variables))
        rules = table.get(key)
        if rules is None:
            rules = original(self, css, read_from, is_default_rules, tie_breaker, scope)
            table[key] = rules
        return rules

    _parse_rules._rnn_tui_shared = True
    _parse_rules.__wrapped__ = original
    Stylesheet._parse_rules = _parse_rules
    return True
