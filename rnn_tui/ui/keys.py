"""Keys from a focused widget to the bindings at once.

Textual hands a key to the focused widget, then passes it up through each of its containers,
one message queue at a time, to the app, which looks up the binding (the screen's, for the keys
that step). The explorer's map sits six containers deep: the passing cost ~0.6 ms of a ~10 ms
step. None of those containers handles a key, so `KeysUp` lets a widget look the binding up
itself, as the app would, when nothing between it and the app would have handled the key.
"""

from __future__ import annotations

from textual import events
from textual._dispatch_key import dispatch_key
from textual.widget import Widget

_HANDLES: dict[type, bool] = {}


def _class_handles_keys(cls: type) -> bool:
    """An `on_key` / `_on_key` of its own, or an `@on(Key)` handler, below Widget's (which only
    looks for `key_<name>` methods); KeysUp's own does not count."""
    handles = _HANDLES.get(cls)
    if handles is None:
        handles = False
        for base in cls.__mro__:
            if base is Widget:
                break
            if base is KeysUp:
                continue
            own = base.__dict__
            decorated = own.get("_decorated_handlers") or {}
            if "on_key" in own or "_on_key" in own or any(issubclass(m, events.Key) for m in decorated):
                handles = True
                break
        handles = _HANDLES[cls] = handles
    return handles


def handles_key(node, event: events.Key) -> bool:
    """Would `node` do anything with the key as Textual passes it up?"""
    if _class_handles_keys(type(node)):
        return True
    return any(getattr(node, f"key_{name}", None) is not None or getattr(node, f"_key_{name}", None) is not None
               for name in event.name_aliases)


class KeysUp:
    """For a focusable widget that handles no key itself: a key it is given runs the app's
    bindings for it now (as `App._on_key` does once the key has come up to the app), when no
    container between the widget and the app would handle the key; else Textual's way."""

    async def on_key(self, event: events.Key) -> None:
        app = self.app
        if handles_key(self, event):
            return
        for node in self.ancestors:
            if node is app:
                break
            if handles_key(node, event):
                return
        event.stop()  # it would only come up to the app, which does what follows
        event.prevent_default()
        if not await app._check_bindings(event.key):
            await dispatch_key(app, event)
