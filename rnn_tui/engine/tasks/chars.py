"""Language model on a text: read a window of tokens, predict the next token at every step.

    x = t h e ␣ c a t        (characters, or words with tokenize="word")
    y = h e ␣ c a t ␣        (x shifted by one: every step is scored)

The text is a built-in one (zen, stdlib, rnn-notes; see text.py) or the user's own UTF-8 file.
Training windows are drawn at random offsets; a long window can be trained with truncated BPTT.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rnn_tui.engine.tasks.base import (
    Batch,
    Example,
    Task,
    TaskError,
    TrainDefaults,
    choice_option,
    int_option,
)
from rnn_tui.engine.tasks.text import (
    ASCII_VOCAB,
    UNK,
    build_vocab,
    char_tokens,
    load_text,
    word_tokens,
)
from rnn_tui.engine.tokens import label

ONEHOT_UP_TO = 128  # larger vocabularies read through a learned embedding instead of one-hot


class CharsTask(Task):
    name = "chars"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"

    def __init__(
        self,
        text: str | Path = "zen",
        tokenize: str = "char",
        seq_len: int = 64,
        max_vocab: int = 5000,
        vocab: str | Path | None = None,
    ):
        self.tokenize = choice_option(self.name, "tokenize", tokenize, ("char", "word", "space"))
        seq_len = int_option(self.name, "seq_len", seq_len, 1, 100_000)
        self.max_vocab = int_option(self.name, "max_vocab", max_vocab, 2, 1_000_000)
        self.text_name, content = load_text(text)
        self.user_vocab = None  # a model's own vocabulary (engine.vocab.Vocab), when given
        self.unknown = 0  # tokens of the text read as <unk> by that vocabulary
        if vocab is not None:
            # the model's own token ids (a person's trained model): the text is read with them,
            # <unk> and <eos> where the vocabulary has them (see engine.vocab)
            from rnn_tui.engine.vocab import VocabError, encode_text, load_vocab

            try:
                self.user_vocab = load_vocab(vocab)
                enc = encode_text(content, self.user_vocab, self.tokenize)
            except VocabError as e:
                raise TaskError(str(e)) from None
            vocab, raw, self.unknown = list(self.user_vocab.tokens), enc.tokens, enc.unknown
        else:
            raw = (char_tokens(content) if self.tokenize == "char" else
                   word_tokens(content) if self.tokenize == "word" else content.split())  # fmt: skip
        if len(raw) < 2:
            raise TaskError(f"{self.text_name!r} holds {len(raw)} token(s); a language model needs at least 2")
        if self.user_vocab is not None:
            pass  # the model's own
        elif self.text_name == "stdlib" and self.tokenize == "char":
            vocab = list(ASCII_VOCAB)  # fixed, so a checkpoint outlives a Python upgrade
        else:
            vocab = build_vocab(raw, self.max_vocab)
        self.vocab = vocab  # raw tokens; `label` draws " " as "␣", "\n" as "⏎"
        self.index = {tok: i for i, tok in enumerate(vocab)}
        unk = self.index.get(UNK)
        self.ids = torch.tensor([self.index.get(tok, unk) for tok in raw], dtype=torch.long)  # (N,)
        self.output_labels = list(self.vocab)
        self.seq_len = min(seq_len, len(raw) - 1)  # a short text gives shorter windows
        self.chance = 1.0 / len(self.vocab)
        V = len(self.vocab)
        self.defaults = TrainDefaults(
            hidden=128,
            steps=2000,
            batch=32,
            lr=3e-3,
            clip=1.0,
            seq_len=self.seq_len,
            embedding=None if V <= ONEHOT_UP_TO else 64,
            gate_bias=1.0,
            log_every=50,
        )

    @property
    def num_tokens(self) -> int:
        return int(self.ids.shape[0])

    def _windows(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.arange(self.seq_len + 1)  # (T+1,)
        rows = self.ids[starts[:, None] + offsets]  # (B, T+1)
        return rows[:, :-1], rows[:, 1:]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        high = self.num_tokens - self.seq_len  # windows start in [0, N - T - 1]
        starts = torch.randint(0, high, (batch_size,), generator=generator)
        x, y = self._windows(starts)
        return Batch(x=x, y=y)

    def example(self, seed: int = 0) -> Example:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, self.num_tokens - self.seq_len, (1,), generator=g)
        x, y = self._windows(start)
        return Example(tokens=[label(self.vocab[i]) for i in x[0].tolist()], x=x[0], targets=y[0].tolist())

    def encode(self, text: str) -> Example:
        """Trace a text the user types: its tokens, and each next token as the target (the last
        step is unscored). Unknown tokens read as <unk>, or raise when the vocabulary has none."""
        if self.user_vocab is not None:
            from rnn_tui.engine.vocab import VocabError, encode_text

            try:
                enc = encode_text(text, self.user_vocab, self.tokenize)
            except VocabError as e:
                raise TaskError(str(e)) from None
            x = torch.tensor(enc.ids, dtype=torch.long)
            return Example(tokens=[label(t) for t in enc.tokens], x=x, targets=enc.ids[1:] + [None])
        raw = (char_tokens(text) if self.tokenize == "char" else
               word_tokens(text) if self.tokenize == "word" else text.split())  # fmt: skip
        if not raw:
            raise TaskError("nothing to read: the text is empty")
        unk = self.index.get(UNK)
        ids = []
        for tok in raw:
            i = self.index.get(tok, unk)
            if i is None:
                raise TaskError(f"{tok!r} is not in the {self.text_name} vocabulary")
            ids.append(i)
        x = torch.tensor(ids, dtype=torch.long)
        return Example(tokens=[label(self.vocab[i]) for i in ids], x=x, targets=ids[1:] + [None])
