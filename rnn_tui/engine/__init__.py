"""The numbers behind rnn-tui: cells, models, traces, gradient flow, tasks, training, checkpoints.

Usable on its own from a notebook::

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

Importing this package loads neither torch nor textual; the submodules that need torch load it.
"""
