"""Subject-verb number agreement across distracting phrases: "is" or "are"?

    x = the dogs near the house that the cat sees      (the verb is left out)
    y = are                                            (one class from the last state)

A subject noun (singular or plural), then 1 to `clauses` phrases, each with a noun of a random
number (an "attractor"): a prepositional phrase ("near the house") or a relative clause ("that the
cat sees", whose own verb agrees with its own noun). The answer depends on the first noun only,
so a model must store the subject's number and keep it through the attractors; a trained model
often has a unit that holds it, a "number unit" to look for in the explorer.

Sentences of different lengths are padded on the left with "·", so every row ends at the verb.
"""

from __future__ import annotations

from rnn_tui.engine.tasks.base import (
    SentenceClassTask,
    TrainDefaults,
    int_option,
)

PAD = SentenceClassTask.pad
NOUNS = ("dog", "cat", "key", "teacher", "house", "car", "friend", "bird", "box", "child")
PLURAL = {n: n + ("es" if n.endswith("x") else "s") for n in NOUNS} | {"child": "children"}
PREPOSITIONS = ("near", "in", "by", "behind", "with", "under")
RC_VERBS = ("see", "like", "know", "watch")  # relative-clause verbs: "sees" / "see"
PHRASE_WORDS = ("the", "that")
VERB_LABELS = ["is", "are"]  # class 0 singular, class 1 plural


def third_person(verb: str) -> str:
    return verb + ("es" if verb.endswith(("ch", "sh", "s", "x")) else "s")


class AgreementTask(SentenceClassTask):
    name = "agreement"
    head = "last"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95
    chance = 0.5

    def __init__(self, clauses: int = 2):
        self.clauses = int_option(self.name, "clauses", clauses, 0, 20)
        words = [PAD, *PHRASE_WORDS, *PREPOSITIONS]
        words += [w for n in NOUNS for w in (n, PLURAL[n])]
        words += [w for v in RC_VERBS for w in (third_person(v), v)]
        self.vocab = words
        self.index = {w: i for i, w in enumerate(words)}
        self.output_labels = list(VERB_LABELS)
        self.defaults = TrainDefaults(
            hidden=32,
            steps=500,
            batch=64,
            lr=1e-2,
            clip=1.0,
            seq_len=2 + 4 * self.clauses,
            log_every=25,
        )

    def sentence(self, rng) -> tuple[list[str], int]:
        """Words before the verb, and the subject's number (0 singular, 1 plural)."""

        def noun(plural: bool) -> str:
            n = rng.choice(NOUNS)
            return PLURAL[n] if plural else n

        plural = rng.random() < 0.5
        words = ["the", noun(plural)]
        for _ in range(rng.randint(min(1, self.clauses), self.clauses)):
            inner = rng.random() < 0.5  # the attractor's number, independent of the subject's
            if rng.random() < 0.5:
                words += [rng.choice(PREPOSITIONS), "the", noun(inner)]
            else:
                verb = rng.choice(RC_VERBS)
                words += ["that", "the", noun(inner), verb if inner else third_person(verb)]
        return words, int(plural)
