"""Part-of-speech tagging of a toy grammar: one tag per word, synchronous sequence-to-sequence.

    x = the   old  watch fish  near a   duck .     she  can  watch ...
    y = DET   ADJ  NOUN  VERB  ADP  DET NOUN PUNCT PRON VERB VERB ...

Sentences follow  S -> NP VP "."   NP -> DET [ADJ] NOUN | PRON   VP -> VERB [NP] [ADP NP]
(with an optional "can" before the verb), and are run together into one stream of `seq_len` words.
Many words are both nouns and verbs ("watch", "fish", "duck", "book", "saw", "light"), so a tag
depends on the words before it; "light" can also be an adjective, which only the next word
reveals: a case for a bidirectional model.
"""

from __future__ import annotations

import torch

from rnn_tui.engine.tasks.base import Batch, Example, Task, TrainDefaults, int_option, python_rng

TAGS = ["DET", "ADJ", "NOUN", "VERB", "ADP", "PRON", "AUX", "PUNCT"]
DETS = ("the", "a", "every", "this")
ADJS = ("old", "small", "red", "quick", "light")
NOUNS = ("dog", "man", "park", "table", "watch", "fish", "duck", "book", "saw", "light")
VERBS = ("see", "like", "find", "watch", "fish", "duck", "book", "saw", "light")
PREPS = ("in", "on", "near", "with")
SUBJECT_PRONS = ("she", "they", "we", "it")
OBJECT_PRONS = ("her", "them", "us", "it")


class TaggingTask(Task):
    name = "tagging"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95

    def __init__(self, seq_len: int = 32):
        self.seq_len = int_option(self.name, "seq_len", seq_len, 1, 100_000)
        words: list[str] = []
        for group in (DETS, ADJS, NOUNS, VERBS, PREPS, SUBJECT_PRONS, OBJECT_PRONS, ("can", ".")):
            words += [w for w in group if w not in words]
        self.vocab = words
        self.index = {w: i for i, w in enumerate(words)}
        self.output_labels = list(TAGS)
        self.tag_index = {t: i for i, t in enumerate(TAGS)}
        self.chance = None
        self.defaults = TrainDefaults(
            hidden=32, steps=600, batch=32, lr=1e-2, clip=1.0, seq_len=self.seq_len, log_every=25
        )

    @staticmethod
    def noun_phrase(rng, subject: bool = False) -> list[tuple[str, str]]:
        if rng.random() < 0.25:
            return [(rng.choice(SUBJECT_PRONS if subject else OBJECT_PRONS), "PRON")]
        phrase = [(rng.choice(DETS), "DET")]
        if rng.random() < 0.4:
            phrase.append((rng.choice(ADJS), "ADJ"))
        return phrase + [(rng.choice(NOUNS), "NOUN")]

    def sentence(self, rng) -> list[tuple[str, str]]:
        words = self.noun_phrase(rng, subject=True)
        if rng.random() < 0.25:
            words.append(("can", "AUX"))
        words.append((rng.choice(VERBS), "VERB"))
        if rng.random() < 0.7:
            words += self.noun_phrase(rng)
        if rng.random() < 0.4:
            words += [(rng.choice(PREPS), "ADP")] + self.noun_phrase(rng)
        return words + [(".", "PUNCT")]

    def stream(self, rng) -> list[tuple[str, str]]:
        """`seq_len` tagged words: whole sentences run together, the last one cut off."""
        words: list[tuple[str, str]] = []
        while len(words) < self.seq_len:
            words += self.sentence(rng)
        return words[: self.seq_len]

    def _encode(self, words: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
        return [self.index[w] for w, _ in words], [self.tag_index[t] for _, t in words]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        rng = python_rng(generator)
        xs, ys = zip(*(self._encode(self.stream(rng)) for _ in range(batch_size)))
        return Batch(x=torch.tensor(xs, dtype=torch.long), y=torch.tensor(ys, dtype=torch.long))

    def example(self, seed: int = 0) -> Example:
        words = self.stream(python_rng(torch.Generator().manual_seed(seed)))
        x, y = self._encode(words)
        return Example(tokens=[w for w, _ in words], x=torch.tensor(x, dtype=torch.long), targets=y)
