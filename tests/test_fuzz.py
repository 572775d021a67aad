"""A fuzz harness over every file format rnn-tui reads: whatever a file holds, reading it either
works or ends in one EngineError of one line; never another exception, a hang or a traceback.

    scenario TOML      random text, and documents built from the real keys with random values
    config.json        a real run's config with entries replaced by random JSON, and random bytes
    metrics.jsonl      random lines and records
    trainer state      safetensors whose JSON metadata is random
    commit.json        random JSON in a run's commit record
    safetensors        random headers (length prefix + JSON) before random data, read as a run's
                       weights and as a person's own (--weights)
    texts              random bytes as a --text file, and as the text a chars task trains on

Bounded for CI (about 20 s in all). Run it longer by hand, with more examples per format and
other random choices (docs/robustness.md):

    RNN_TUI_FUZZ=50 RNN_TUI_FUZZ_SEED=1 .venv/bin/python -m pytest tests/test_fuzz.py -q
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from rnn_tui.engine.errors import EngineError

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "assets" / "models" / "recall-lstm"
FUZZ = max(1, int(os.environ.get("RNN_TUI_FUZZ", "1")))
SEED = os.environ.get("RNN_TUI_FUZZ_SEED")


def fuzz(examples: int):
    """Hypothesis settings for one format: `examples` cases in CI (times RNN_TUI_FUZZ), the same
    ones every run unless RNN_TUI_FUZZ_SEED picks another random sequence."""
    chosen = settings(
        max_examples=examples * FUZZ,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],  # fmt: skip
    )

    def apply(test):
        test = chosen(test)
        return test if SEED is None else seed(int(SEED))(test)

    return apply


def one_line_or_success(call):
    """Run `call`; an EngineError must be one line (what the CLI prints); anything else fails."""
    try:
        return call()
    except EngineError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        return None


# JSON values of every kind and size, nested a little and (rarely) very deep
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["lstm", "gru", "rnn", "tanh", "ce", "mse", "step", "last", "onehot",
                                            "finished", "running", "rnn-tui-run", "", "1"]),
)  # fmt: skip
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
                           max_leaves=12)  # fmt: skip


class Deep:
    """Lists nested n deep, written straight into the JSON text (Python's json cannot build them)."""

    def __init__(self, n: int):
        self.n = n


deep = st.integers(60, 5000).map(Deep)


def dumps(value) -> str:
    """json.dumps, with each Deep written as n nested lists."""
    deeps: list[Deep] = []

    def mark(v):
        if isinstance(v, Deep):
            deeps.append(v)
            return f"@@deep{len(deeps) - 1}@@"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), allow_nan=True)
    for i, d in enumerate(deeps):
        text = text.replace(f'"@@deep{i}@@"', "[" * d.n + "]" * d.n, 1)
    return text


# ---- scenarios --------------------------------------------------------------------------------
def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v) if v == v and abs(v) != float("inf") else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"


model_keys = st.sampled_from(["cell", "activation", "input_size", "hidden_size", "output_size", "num_layers",
                              "bidirectional", "bias", "head", "loss", "seed", "dtype", "other"])  # fmt: skip
small = st.one_of(st.integers(-2, 6), st.sampled_from([0, 1, 2, 65536, 2**63, -(2**63)]))
vectors = st.lists(st.lists(st.one_of(st.floats(-3, 3), small, st.just(float("nan"))), min_size=0, max_size=3),
                   min_size=0, max_size=5)  # fmt: skip
model_tables = st.dictionaries(model_keys, st.one_of(small, st.booleans(), st.sampled_from(
    ["rnn", "lstm", "gru", "lstm-peephole", "gru-textbook", "tanh", "relu", "identity", "step", "last", "mean",
     "ce", "mse", "float32", "float64", "x"])), max_size=8)  # fmt: skip
input_tables = st.fixed_dictionaries({}, optional={
    "vectors": vectors, "text": st.text(max_size=8), "vocab": st.one_of(st.text(max_size=6), st.lists(st.text(max_size=2), max_size=4)),
    "targets": st.lists(st.one_of(small, st.lists(st.floats(-2, 2), max_size=3)), max_size=6),
})  # fmt: skip
weights_tables = st.dictionaries(st.sampled_from(["fill", "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "head.weight",
                                                  "nope"]), st.one_of(small, st.floats(-2, 2), vectors), max_size=3)  # fmt: skip
scenario_docs = st.fixed_dictionaries({"model": model_tables, "input": input_tables},
                                      optional={"weights": weights_tables, "title": st.text(max_size=8), "extra": small})  # fmt: skip


def scenario_text(doc: dict) -> str:
    lines = []
    for key, value in doc.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {toml_value(value)}")
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


@fuzz(120)
@given(doc=scenario_docs)
def test_scenarios_built_from_the_real_keys(tmp_path, doc):
    from rnn_tui.engine.subject import Spec, scenario_subject, trace_subject

    path = tmp_path / "fuzz.toml"
    path.write_text(scenario_text(doc), encoding="utf-8")
    subject = one_line_or_success(lambda: scenario_subject(Spec(scenario=str(path))))
    if subject is not None:  # it loads: it must also trace
        one_line_or_success(lambda: trace_subject(subject))


@fuzz(150)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      deep.map(lambda d: "a = " + dumps(d))))  # fmt: skip
def test_scenarios_of_random_text(tmp_path, text):
    from rnn_tui.engine.scenario import load_scenario

    path = tmp_path / "random.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    one_line_or_success(lambda: load_scenario(path))


# ---- a run directory --------------------------------------------------------------------------
def run_copy(tmp_path) -> Path:
    run = tmp_path / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(RUN, run)
    return run


def replace_at(doc, path: list, value):
    """doc with the entry at `path` (keys/indices, as far as they reach) set to `value`."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    key = path[0]
    if isinstance(doc, dict):
        key = list(doc)[key % len(doc)]
        return {**doc, key: replace_at(doc[key], path[1:], value)}
    i = key % len(doc)
    return doc[:i] + [replace_at(doc[i], path[1:], value)] + doc[i + 1 :]


@fuzz(60)
@given(where=st.lists(st.integers(0, 50), min_size=1, max_size=3), value=st.one_of(json_values, deep))
def test_config_json_with_any_entry_replaced(tmp_path, where, value):
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.train import Trainer

    run = run_copy(tmp_path)
    doc = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(dumps(replace_at(doc, where, value)))
    one_line_or_success(lambda: load_model(run))
    one_line_or_success(lambda: Trainer.resume(run, steps=301))


@fuzz(60)
@given(data=st.binary(max_size=300))
def test_config_json_of_random_bytes(tmp_path, data):
    from rnn_tui.engine.checkpoint import load_checkpoint

    run = run_copy(tmp_path)
    (run / "config.json").write_bytes(data)
    one_line_or_success(lambda: load_checkpoint(run))


metric_lines = st.lists(st.one_of(
    st.text(max_size=40), json_values.map(dumps), deep.map(dumps),
    st.fixed_dictionaries({"step": st.one_of(small, st.integers())}, optional={"loss": scalars, "metric": scalars}).map(json.dumps),
), max_size=8)  # fmt: skip


@fuzz(100)
@given(lines=metric_lines, newline=st.booleans())
def test_metrics_jsonl_of_random_lines(tmp_path, lines, newline):
    from rnn_tui.engine.checkpoint import read_metrics
    from rnn_tui.engine.train import Trainer

    run = run_copy(tmp_path)
    (run / "metrics.jsonl").write_text("\n".join(lines) + ("\n" if newline else ""), encoding="utf-8",
                                       errors="surrogateescape")  # fmt: skip
    records = one_line_or_success(lambda: read_metrics(run))
    assert records is None or all(isinstance(r, dict) and isinstance(r["step"], int) for r in records)
    one_line_or_success(lambda: Trainer.resume(run, steps=301))


@fuzz(60)
@given(meta=st.one_of(json_values, deep, st.text(max_size=30)))
def test_trainer_state_with_random_metadata(tmp_path, meta):
    import torch

    from rnn_tui.engine.checkpoint import FORMAT, load_trainer_state, read_config, save_tensors
    from rnn_tui.engine.train import Trainer

    run = run_copy(tmp_path)
    text = meta if isinstance(meta, str) else dumps(meta)
    save_tensors(run / "trainer.safetensors", {"rng": torch.zeros(5056, dtype=torch.uint8)},
                 {"format": FORMAT, "json": text, "generation": str(read_config(run).generation or 1)})  # fmt: skip
    one_line_or_success(lambda: load_trainer_state(run))
    one_line_or_success(lambda: Trainer.resume(run, steps=301))


@fuzz(60)
@given(doc=st.one_of(json_values, deep, st.fixed_dictionaries({"format": st.just("rnn-tui-run"), "generation": small,
                                                             "files": json_values})))  # fmt: skip
def test_commit_json_with_random_content(tmp_path, doc):
    from rnn_tui.engine.checkpoint import load_checkpoint

    run = run_copy(tmp_path)
    (run / "commit.json").write_text(dumps(doc))
    one_line_or_success(lambda: load_checkpoint(run))


# ---- safetensors headers ----------------------------------------------------------------------
dtypes = st.sampled_from(["F32", "F64", "F16", "I64", "U8", "BOOL", "X9", ""])
entries = st.fixed_dictionaries({}, optional={
    "dtype": st.one_of(dtypes, scalars), "shape": st.one_of(st.lists(st.one_of(small, st.integers()), max_size=3), scalars),
    "data_offsets": st.one_of(st.lists(st.one_of(small, st.integers()), max_size=3), scalars)})  # fmt: skip
headers = st.one_of(
    st.dictionaries(st.sampled_from(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "__metadata__", "x"]),
                    st.one_of(entries, json_values), max_size=5).map(dumps),
    json_values.map(dumps), deep.map(dumps), st.text(max_size=30),
)  # fmt: skip


@fuzz(150)
@given(header=headers, body=st.binary(max_size=64), length=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_safetensors_with_random_headers(tmp_path, header, body, length):
    from rnn_tui.engine.checkpoint import load_tensors

    raw = header.encode("utf-8", "surrogateescape")
    n = len(raw) if length is None else length
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(n.to_bytes(8, "little") + raw + body)
    one_line_or_success(lambda: load_tensors(path))
    from rnn_tui.engine.weights import load_user_weights

    one_line_or_success(lambda: load_user_weights(path))


# ---- texts ------------------------------------------------------------------------------------
@fuzz(80)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))),
       tokenize=st.sampled_from(["char", "word"]))  # fmt: skip
def test_texts_of_random_bytes(tmp_path, data, tokenize):
    from rnn_tui.engine.tasks import get_task

    path = tmp_path / "fuzz.txt"
    path.write_bytes(data)
    one_line_or_success(lambda: get_task("chars", text=str(path), tokenize=tokenize, seq_len=8))


def test_the_special_files_a_run_may_hold_are_refused_without_waiting(tmp_path):
    """A FIFO or a device where a run's file should be: one line, at once (it used to hang)."""
    from rnn_tui.engine.checkpoint import load_checkpoint, load_trainer_state, read_metrics
    from rnn_tui.engine.train import Trainer
    from rnn_tui.ui.lab import load_run_snapshots

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    for name, reader in (
        ("config.json", load_checkpoint),
        ("model.safetensors", load_checkpoint),
        ("metrics.jsonl", read_metrics),
        ("trainer.safetensors", load_trainer_state),
        ("metrics.jsonl", lambda r: Trainer.resume(r, steps=301)),
        ("trainer.safetensors", lambda r: Trainer.resume(r, steps=301)),
        ("snapshots/step_000100.safetensors", load_run_snapshots),
    ):
        run = run_copy(tmp_path)
        (run / name).unlink(missing_ok=True)
        os.mkfifo(run / name)
        with pytest.raises(EngineError, match="not a regular file"):
            reader(run)
        (run / name).unlink()
        (run / name).symlink_to("/dev/zero")
        with pytest.raises(EngineError, match="not a regular file"):
            reader(run)


# ---- explorer sessions (rnn-tui --session FILE) -------------------------------------------------
SESSION = {
    "format": "rnn-tui-session", "version": 1, "model": {"checkpoint": str(RUN)},
    "request": {"cell": "lstm", "activation": "tanh", "hidden": 64, "layers": 1, "bidirectional": False,
                "task": "recall", "text": "", "tokenize": "char", "seed": 0, "checkpoint": None},
    "view": {"step": 3, "unit": 1, "layer": 0, "direction": "forward", "matrix": "c", "all_maps": True},
    "tab": "Compare",
    "panes": {"Interventions": {"holds": [{"kind": "state", "name": "h", "value": 0.0, "layer": 0,
                                           "direction": "forward", "unit": 2, "start": 4, "stop": None}]},
              "Compare": {"other_cell": None, "other_activation": "tanh", "partner": "demo"}},
}  # fmt: skip


def open_session_file(path):
    from rnn_tui.ui.launch import open_session
    from rnn_tui.ui.session import request_of

    spec, request, session = open_session(str(path), set())
    assert request == request_of(session) and spec.checkpoint in (None, str(RUN.resolve()))


@fuzz(80)
@given(where=st.lists(st.integers(0, 50), min_size=1, max_size=4), value=st.one_of(json_values, deep))
def test_a_session_with_any_entry_replaced(tmp_path, where, value):
    path = tmp_path / "session.json"
    path.write_text(dumps(replace_at(json.loads(json.dumps(SESSION)), where, value)))
    one_line_or_success(lambda: open_session_file(path))


@fuzz(40)
@given(data=st.one_of(st.binary(max_size=300), json_values.map(lambda v: dumps(v).encode())))
def test_a_session_of_random_content(tmp_path, data):
    path = tmp_path / "session.json"
    path.write_bytes(data)
    one_line_or_success(lambda: open_session_file(path))


def test_the_fuzzed_session_itself_opens(tmp_path):
    path = tmp_path / "session.json"
    path.write_text(json.dumps(SESSION))
    open_session_file(path)
