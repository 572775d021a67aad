"""rnn-tui: open up a recurrent neural network in a terminal and watch it think."""

__version__ = "0.1.0"
