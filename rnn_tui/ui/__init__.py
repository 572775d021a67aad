"""The explorer: a Textual app that draws a Trace.

Nothing here imports torch at module import time; the engine is reached through a data source
(`rnn_tui.ui.source`) whose methods import it lazily, inside a thread worker.
"""
