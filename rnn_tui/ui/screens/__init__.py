"""Screens: the main explorer screen and the overlays pushed on top of it."""
