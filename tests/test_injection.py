"""Nothing from a file, a run, a model or a command line reaches the terminal raw.

A corpus of what a terminal obeys (C0 and C1 controls, ESC with CSI, OSC, OSC 52 and DCS
sequences, bidirectional and other format characters) is put everywhere a string enters
rnn-tui: a scenario's title, text and vocabulary; a text a model is trained on (so the run's
vocabulary, targets and predictions hold it); config.json's entries; file and folder names;
names typed as flags. Every command's output, errors included, is then checked to hold none of
it: each such character is shown as a visible escape (`\\x1b`, `\\u202e`) by `rnn_tui.safe_text`.
The explorer's side is tests/ui/test_injection.py; the browser's, tests/test_serve.py.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest

from rnn_tui.cli import main
from rnn_tui.safe_text import is_safe, markup, safe

ROOT = Path(__file__).resolve().parents[1]

CORPUS = [
    "\x1b]0;owned\x07",  # OSC 0: retitle the window
    "\x1b]52;c;b3duZWQ=\x07",  # OSC 52: write the clipboard
    "\x1b[2J\x1b[H",  # CSI: clear the screen, cursor home
    "\x1bP+q544e\x1b\\",  # DCS: ask the terminal for its capabilities
    "\x1b[6n",  # CSI: report the cursor (the answer arrives as typed input)
    "\x9b2J",  # C1 CSI
    "\x9d0;owned\x9c",  # C1 OSC ... ST
    "\x00\x07\x08\r\x0b\x0c\x7f\x1b",  # NUL, BEL, BS, CR, VT, FF, DEL, a lone ESC
    "abc\u202edcba",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066isolate\u2069\u200f\u061c",  # isolates, RLM, Arabic letter mark
    "\u2028\u2029\ufeff\u200b",  # line and paragraph separators, BOM, zero-width space
]
EVERYTHING = "".join(CORPUS)
# what no output may hold: controls other than the line break, and format / separator characters
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def forbidden(text: str) -> list[str]:
    return sorted({f"U+{ord(ch):04X}" for ch in text if ch != "\n" and unicodedata.category(ch) in FORBIDDEN_CATEGORIES})


def assert_clean(text: str, where: str = "") -> None:
    bad = forbidden(text)
    assert not bad, f"{where}: raw {', '.join(bad)} in {text[:300]!r}"


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out + err


# ---- the sanitizer itself ----------------------------------------------------------------------
@pytest.mark.parametrize("text", CORPUS)
def test_every_control_is_shown_as_a_visible_escape(text):
    shown = safe(text)
    assert_clean(shown)
    assert is_safe(shown) and safe(shown) == shown  # idempotent: escaping twice changes nothing
    assert shown.count("\\") >= len(forbidden(text.replace("\n", "\x0a")))


def test_printable_text_is_left_as_it_is():
    for text in ("plain", "中文，标点。", "emoji 😀", "Ünïcödé", "tab\tand\nnewline", "[b]markup[/b]"):
        assert safe(text, newlines=True, tabs=True) == text
    assert safe("a\nb") == "a\\nb" and safe("a\tb") == "a\\tb"
    assert markup("[b]x\x1b") == "\\[b]x\\x1b"
    assert safe("\ue000", strict=True) == "\\ue000" and safe("\ue000") == "\ue000"


def test_hypothesis_no_string_survives_raw():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60))
    def check(text):
        shown = safe(text, newlines=True)
        assert_clean(shown)
        assert safe(shown, newlines=True) == shown

    check()


# ---- the command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_scenario(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    text = "ab" + "".join(ch for ch in EVERYTHING if ch not in "\x00\r") + "ab"
    vocab = sorted(set(text))
    doc = (
        f"title = {json.dumps(EVERYTHING)}\n"
        f'[model]\ncell = "rnn"\nhidden_size = 3\n'
        f"[input]\ntext = {json.dumps(text)}\nvocab = {json.dumps(vocab)}\n"
    )
    path = folder / "scenario.toml"
    path.write_text(doc, encoding="utf-8")
    return path


def test_trace_text_and_json_of_a_hostile_scenario(capsys, hostile_scenario):
    code, text = run_cli(capsys, "trace", "--scenario", hostile_scenario)
    assert code == 0
    assert_clean(text, "trace text")
    assert "'\\x1b'" in text and "'\\u202e'" in text  # shown, escaped
    code, text = run_cli(capsys, "trace", "--scenario", hostile_scenario, "--format", "json")
    assert code == 0
    assert_clean(text, "trace json")
    doc = json.loads(text)
    assert "\\x1b" in doc["tokens"]  # the labels escape it; the JSON is still JSON


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A model trained on a text full of controls, saved under a name full of them."""
    folder = tmp_path_factory.mktemp("hostile-run")
    text = folder / "text.txt"
    text.write_text(("the cat sat " + "".join(CORPUS[:8]).replace("\x00", "")) * 40, encoding="utf-8")
    run = folder / "run\x1b]0;owned\x07"
    code = main(["train", "--task", "chars", "--text", str(text), "--hidden", "8", "--steps", "3", "--batch", "4",
                 "--seq-len", "16", "--quiet", "--out", str(run)])  # fmt: skip
    assert code == 0
    return run


def test_train_on_a_hostile_text_and_trace_the_run(capsys, hostile_run, tmp_path):
    capsys.readouterr()
    code, text = run_cli(capsys, "trace", "--checkpoint", hostile_run)
    assert code == 0
    assert_clean(text, "trace of the run")
    code, text = run_cli(capsys, "trace", "--checkpoint", hostile_run, "--format", "json")
    assert code == 0
    assert_clean(text, "json of the run")
    code, text = run_cli(capsys, "train", "--resume", hostile_run, "--steps", "4")  # the summary names the run
    assert code == 0
    assert_clean(text, "train --resume")
    assert "run\\x1b]0;owned\\x07" in text


def test_a_run_whose_config_holds_controls(capsys, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "assets" / "models" / "recall-lstm", run)
    doc = json.loads((run / "config.json").read_text())
    for change in (
        lambda d: d["task"].update(name=EVERYTHING),
        lambda d: d["task"].update(options={EVERYTHING: 1}),
        lambda d: d.update(status=EVERYTHING),
        lambda d: d.update(format=EVERYTHING),
        lambda d: d.update(version=EVERYTHING),
        lambda d: d["model"].update(cell=EVERYTHING),
        lambda d: d["model"].update({EVERYTHING: 1}),
        lambda d: d.update(vocab=[EVERYTHING] * len(d["vocab"])),
        lambda d: d.update(output_labels=[EVERYTHING] * len(d["output_labels"])),
        lambda d: d["train"].update(optimizer=EVERYTHING),
    ):
        changed = json.loads(json.dumps(doc))
        change(changed)
        (run / "config.json").write_text(json.dumps(changed))
        for argv in (["trace", "--checkpoint", run], ["train", "--resume", run, "--steps", "301", "--quiet"]):
            _, text = run_cli(capsys, *argv)
            assert_clean(text, f"{argv[0]} with {changed}")


@pytest.mark.parametrize("name", CORPUS)
def test_file_and_flag_names_in_error_messages(capsys, tmp_path, name):
    file_name = name.replace("\x00", "")  # a file name cannot hold NUL (a flag below does)
    missing = tmp_path / f"x{file_name}.toml"
    garbage = tmp_path / f"g{file_name}.toml"
    garbage.write_bytes(b"\xff\xfe not toml")
    folder = tmp_path / f"d{file_name}"
    folder.mkdir()
    for argv in (
        ["trace", "--scenario", missing],
        ["trace", "--scenario", f"{tmp_path}/{name}"],
        ["trace", "--scenario", garbage],
        ["trace", "--checkpoint", folder],
        ["trace", "--weights", missing],
        ["trace", "--task", name],
        ["train", "--task", name],
        ["train", "--task", "chars", "--text", missing],
        ["train", "--resume", folder],
        ["train", "--task", "recall", "--distance", name],
        ["lesson", name],
        ["lesson", "memory", "--theme", name],
        ["--theme", name],
        ["serve", "--runs", missing],
        ["serve", "--theme", name],
        ["serve", "--", "--cell", name],
        [name],
    ):
        code, text = run_cli(capsys, *argv)
        assert code == 2, (argv, text)
        assert_clean(text, f"{argv}")
    code, text = run_cli(capsys, "trace", "--input", "ab" + name)  # typed text is traced, its labels escaped
    assert code in (0, 2)
    assert_clean(text, "--input")


def test_tasks_and_a_headless_lesson_print_clean_text(capsys):
    code, text = run_cli(capsys, "tasks", "--options")
    assert code == 0
    assert_clean(text, "tasks")
    code, text = run_cli(capsys, "lesson", "memory", "--headless", "--width", "60")
    assert code == 0
    assert_clean(text, "lesson --headless")
