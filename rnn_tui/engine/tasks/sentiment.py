"""Toy sentiment: is a sentence from a small grammar positive or negative?

    x = the plot was not very good but i loved the music
    y = positive

A clause is "the <thing> was [not] [very] <adjective>" or "i [did not] <verb> the <thing>";
"not" flips a clause's polarity. A sentence is one clause, or two joined by "but" (the second
clause decides) or "and" (both clauses agree). The class is read from a pooled state: the last
state (pool="last") or the mean of all states (pool="mean"), where a model must spread its
evidence over every step instead of keeping a running verdict.
"""

from __future__ import annotations

from rnn_tui.engine.tasks.base import (
    SentenceClassTask,
    TrainDefaults,
    choice_option,
)

PAD = SentenceClassTask.pad
THINGS = ("film", "plot", "acting", "music", "ending", "cast", "script", "story")
INTENSIFIERS = ("very", "really", "quite", "so")
ADJECTIVES = {
    1: ("good", "great", "fun", "lovely", "clever", "brilliant"),
    0: ("bad", "dull", "awful", "boring", "weak", "silly"),
}
VERBS = {  # (past, base after "did not")
    1: (("liked", "like"), ("loved", "love"), ("enjoyed", "enjoy")),
    0: (("hated", "hate"), ("disliked", "dislike")),
}
LABELS = ["negative", "positive"]


class SentimentTask(SentenceClassTask):
    name = "sentiment"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95
    chance = 0.5

    def __init__(self, pool: str = "last"):
        self.head = choice_option(self.name, "pool", pool, ("last", "mean"))
        words = [PAD, "the", "was", "not", "i", "did", "but", "and", *THINGS, *INTENSIFIERS]
        for p in (1, 0):
            words += list(ADJECTIVES[p])
            words += [w for pair in VERBS[p] for w in pair]
        self.vocab = words
        self.index = {w: i for i, w in enumerate(words)}
        self.output_labels = list(LABELS)
        self.defaults = TrainDefaults(
            hidden=32, steps=600, batch=64, lr=1e-2, clip=1.0, seq_len=13, log_every=25
        )

    @staticmethod
    def clause(rng, polarity: int) -> list[str]:
        """A clause whose meaning has the given polarity (1 positive, 0 negative)."""
        negated = rng.random() < 0.4
        word_polarity = 1 - polarity if negated else polarity
        if rng.random() < 0.5:
            words = ["the", rng.choice(THINGS), "was"]
            if negated:
                words.append("not")
            if rng.random() < 0.4:
                words.append(rng.choice(INTENSIFIERS))
            return words + [rng.choice(ADJECTIVES[word_polarity])]
        past, base = rng.choice(VERBS[word_polarity])
        verb = ["did", "not", base] if negated else [past]
        return ["i", *verb, "the", rng.choice(THINGS)]

    def sentence(self, rng) -> tuple[list[str], int]:
        label = int(rng.random() < 0.5)
        form = rng.random()
        if form < 0.4:
            return self.clause(rng, label), label
        if form < 0.8:  # the clause after "but" decides, the first one says the opposite
            return self.clause(rng, 1 - label) + ["but"] + self.clause(rng, label), label
        return self.clause(rng, label) + ["and"] + self.clause(rng, label), label
