"""The catalog of tasks: name -> TaskInfo (description, mode, options), without importing torch
or any task's module, so `rnn-tui tasks` and the UI's task picker stay fast. `TaskInfo.load`
imports the task's module when it is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str  # one line
    mode: str  # "lm" | "seq2seq" | "seq2class" | "regression" | "encdec"
    module: str  # rnn_tui.engine.tasks.<module> holds the class
    cls_name: str
    options: dict[str, str]  # option -> one-line help

    def load(self) -> type[Task]:
        return getattr(import_module(f"rnn_tui.engine.tasks.{self.module}"), self.cls_name)


TASKS: dict[str, TaskInfo] = {
    info.name: info
    for info in (
        TaskInfo(
            "chars",
            "language model on a text: predict the next character (or word)",
            "lm",
            "chars",
            "CharsTask",
            {
                "text": "a text file, or a built-in text: zen, stdlib, rnn-notes (default zen)",
                "tokenize": "char, word (CJK characters and punctuation are tokens of their own) or space "
                "(split on whitespace only)",
                "seq_len": "steps per training sequence",
                "max_vocab": "word tokens beyond the most frequent N read as <unk> (without --vocab)",
                "vocab": "the vocabulary file of a model given with --weights: the text is read with its token ids",
            },
        ),
        TaskInfo(
            "recall",
            "long-range memory: a symbol, N distractors, then recall the symbol",
            "seq2class",
            "recall",
            "RecallTask",
            {
                "distance": "distractors between the symbol and the recall cue",
                "symbols": "how many symbols to remember (classes)",
            },
        ),
        TaskInfo(
            "adding",
            "the adding problem: sum the two marked numbers in a long stream (MSE)",
            "regression",
            "adding",
            "AddingTask",
            {"seq_len": "numbers in the stream"},
        ),
        TaskInfo(
            "brackets",
            "nested brackets: predict the nesting depth (or the next bracket) at every step",
            "seq2seq",
            "brackets",
            "BracketsTask",
            {
                "target": "depth (classify the depth) or next (predict the next character)",
                "kinds": "kinds of bracket pairs, 1 to 3: () [] {}",
                "max_depth": "deepest nesting generated",
                "p_open": "chance of opening a bracket at each step (below max_depth)",
                "seq_len": "characters per sequence",
            },
        ),
        TaskInfo(
            "agreement",
            "subject-verb agreement across a distracting clause: is or are?",
            "seq2class",
            "agreement",
            "AgreementTask",
            {"clauses": "most distracting phrases between the subject and the verb"},
        ),
        TaskInfo(
            "sentiment",
            "toy sentiment of a sentence from a small grammar with negation and 'but'",
            "seq2class",
            "sentiment",
            "SentimentTask",
            {"pool": "last or mean: classify from the last state or the mean of all states"},
        ),
        TaskInfo(
            "tagging",
            "part-of-speech tagging of a toy grammar, one tag per word (ambiguous words)",
            "seq2seq",
            "tagging",
            "TaggingTask",
            {"seq_len": "words per training sequence"},
        ),
        TaskInfo(
            "sine",
            "time-series forecasting: predict the next value of a sum of sine waves (MSE)",
            "regression",
            "sine",
            "SineTask",
            {
                "seq_len": "samples per sequence",
                "horizon": "how many samples ahead to predict",
                "waves": "sine waves summed, 1 to 4",
                "noise": "standard deviation of noise added to the inputs",
            },
        ),
        TaskInfo(
            "reverse",
            "encoder-decoder: read a sequence, then write it backwards",
            "encdec",
            "reverse",
            "ReverseTask",
            {
                "seq_len": "symbols per sequence",
                "symbols": "alphabet size",
                "attention": "none, dot (Luong) or additive (Bahdanau): the decoder attends to every encoder state",
            },
        ),
    )
}
