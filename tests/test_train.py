"""The trainer: repeatable curves, divergence, cancel and resume, truncated BPTT, penalties, and
the classic result in small (gated cells remember across a gap where a tanh RNN does not)."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from rnn_tui.engine.checkpoint import load_checkpoint, read_metrics
from rnn_tui.engine.tasks import get_task
from rnn_tui.engine.tasks.base import IGNORE, Batch, Task, TrainDefaults
from rnn_tui.engine.train import Progress, TrainConfig, TrainConfigError, Trainer, train


class DelayTask(Task):
    """Per-step targets: output the token read `lag` steps ago (unscored before that)."""

    name = "recall"  # any catalog name will do for the records; the trainer never asks the catalog
    head = "step"
    loss_name = "ce"

    def __init__(self, lag: int = 2, T: int = 12, V: int = 3):
        self.lag, self.T, self.V = lag, T, V
        self.vocab = [str(i) for i in range(V)]
        self.output_labels = list(self.vocab)
        self.defaults = TrainDefaults(hidden=8, steps=20, batch=4, lr=0.05, log_every=5)

    def sample(self, batch_size, generator):
        x = torch.randint(0, self.V, (batch_size, self.T), generator=generator)
        y = torch.full_like(x, IGNORE)
        y[:, self.lag :] = x[:, : -self.lag]
        return Batch(x=x, y=y)


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.tensors().items()}


def curve(result) -> list[tuple]:
    return [(r["step"], r["loss"], r["grad_norm"], r["metric"]) for r in result.history]


def small(task, **changes) -> TrainConfig:
    return TrainConfig.from_defaults(task.defaults, **({"steps": 30, "batch": 16, "log_every": 5} | changes))


# ---- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, words",
    [
        (dict(steps=0), "steps"),
        (dict(lr=-1e-3), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(clip=-1.0), "clip"),
        (dict(tbptt=0), "tbptt"),
        (dict(batch=True), "batch"),
    ],
)
def test_bad_settings_say_what_to_change(bad, words):
    with pytest.raises(TrainConfigError, match=words):
        TrainConfig(**bad)


def test_from_defaults_keeps_the_task_defaults_unless_given():
    task = get_task("recall", distance=5)
    c = TrainConfig.from_defaults(task.defaults, lr=None, steps=7)
    assert c.steps == 7 and c.lr == task.defaults.lr and c.batch == task.defaults.batch
    with pytest.raises(TrainConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"steps": 3, "learning_rate": 1})


# ---- repeatable ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "gru-textbook"])
def test_same_seed_same_loss_curve_exactly(cell):
    task = get_task("recall", distance=4)
    a = train(task, small(task, seed=3), cell=cell, hidden=12)
    b = train(task, small(task, seed=3), cell=cell, hidden=12)
    c = train(task, small(task, seed=4), cell=cell, hidden=12)
    assert curve(a) == curve(b)
    assert len(curve(a)) == 6
    assert curve(a) != curve(c)


def test_progress_reports_every_step_and_the_end():
    task = get_task("adding", seq_len=10)
    seen: list[Progress] = []
    result = train(task, small(task, steps=12), cell="gru", hidden=8, on_progress=seen.append)
    assert [p.step for p in seen[:-1]] == list(range(1, 13))
    last = seen[-1]
    assert last.done and last.status == "finished" and last.metric_name == "mse"
    assert last.metric == result.metric and result.status == "finished" and result.step == 12
    assert all(math.isfinite(p.loss) and p.grad_norm >= 0 and p.tokens_per_s > 0 for p in seen)
    assert result.chance == pytest.approx(1 / 6)


# ---- divergence ----------------------------------------------------------------------------
def test_a_huge_learning_rate_stops_cleanly_and_keeps_the_last_good_weights(tmp_path):
    task = get_task("adding", seq_len=20)
    config = small(task, optimizer="sgd", momentum=0.0, lr=1e12, clip=None, steps=50)
    trainer = Trainer(task, config, cell="rnn", activation="relu", hidden=16, run_dir=tmp_path / "run")
    weights = {0: params(trainer.model)}

    def keep(p: Progress):
        if not p.done:
            weights[p.step] = params(trainer.model)

    result = trainer.run(on_progress=keep)
    assert result.status == "diverged"
    assert result.diverged_at is not None and result.diverged_at <= 50
    assert f"step {result.diverged_at}" in result.message
    kept = params(trainer.model)
    assert all(torch.isfinite(t).all() for t in kept.values())
    assert result.step in weights and result.step < result.diverged_at
    for name, t in weights[result.step].items():
        assert torch.equal(kept[name], t), name
    # those weights give a finite loss
    batch = task.sample(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert math.isfinite(float(task.loss(trainer.model(batch.x), batch)))
    # and the run directory holds them, marked diverged
    saved = load_checkpoint(tmp_path / "run")
    assert saved.info.status == "diverged" and saved.info.step == result.step
    assert saved.info.result["diverged_at"] == result.diverged_at
    for name, t in saved.tensors.items():
        assert torch.equal(t, kept[name])


def test_a_diverged_run_resumes_with_a_lower_lr_and_a_fresh_optimizer(tmp_path):
    task = get_task("adding", seq_len=20)
    config = small(task, optimizer="sgd", momentum=0.0, lr=1e12, clip=None, steps=50)
    first = Trainer(task, config, cell="rnn", activation="relu", hidden=16, run_dir=tmp_path / "run").run()
    assert first.status == "diverged"
    again = Trainer.resume(tmp_path / "run", lr=1e-3, clip=1.0)
    assert any("fresh optimizer" in n for n in again.notes)
    result = again.run()
    assert result.status == "finished" and result.step == 50
    assert all(r["step"] <= 50 for r in read_metrics(tmp_path / "run"))


# ---- cancel and resume ---------------------------------------------------------------------
def cancel_at(step: int, event: threading.Event):
    def on_progress(p: Progress):
        if p.step == step:
            event.set()

    return on_progress


@pytest.mark.parametrize(
    "task_factory, settings",
    [
        (lambda: get_task("recall", distance=4), dict(cell="lstm", optimizer="adam")),
        (lambda: get_task("adding", seq_len=12), dict(cell="gru", optimizer="sgd")),
        (lambda: DelayTask(), dict(cell="lstm", optimizer="adam", tbptt=5)),  # cancelled mid-batch
        (lambda: get_task("reverse", seq_len=4), dict(cell="gru", optimizer="adam")),  # encoder-decoder
    ],
)
def test_cancel_then_resume_gives_the_uninterrupted_curve(tmp_path, task_factory, settings):
    settings = dict(settings)
    cell = settings.pop("cell")
    task = task_factory()
    config = small(task, steps=23, **settings)
    whole = Trainer(task, config, cell=cell, hidden=10, run_dir=tmp_path / "whole").run()

    event = threading.Event()
    part = Trainer(task_factory(), config, cell=cell, hidden=10, run_dir=tmp_path / "part")
    first = part.run(on_progress=cancel_at(13, event), cancel=event)
    assert first.status == "cancelled" and first.step == 13
    assert load_checkpoint(tmp_path / "part").info.status == "cancelled"

    resumed = Trainer.resume(tmp_path / "part", task=task_factory()).run()
    assert resumed.status == "finished" and resumed.step == 23
    assert curve(resumed) == curve(whole)
    assert [r["step"] for r in read_metrics(tmp_path / "part")] == [r["step"] for r in whole.history]
    a, b = load_checkpoint(tmp_path / "whole").tensors, load_checkpoint(tmp_path / "part").tensors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cancel_by_callback_or_on_progress_returning_false():
    task = get_task("recall", distance=3)
    r = Trainer(task, small(task), cell="gru", hidden=8).run(cancel=lambda: True)
    assert r.status == "cancelled" and r.step == 1
    r = Trainer(task, small(task), cell="gru", hidden=8).run(on_progress=lambda p: p.step < 4)
    assert r.status == "cancelled" and r.step == 4


def test_cancel_from_another_thread_while_training():
    task = get_task("adding", seq_len=30)
    trainer = Trainer(task, small(task, steps=1_000_000, log_every=1000), cell="lstm", hidden=16)
    event = threading.Event()
    started = threading.Event()
    out = {}
    worker = threading.Thread(
        target=lambda: out.setdefault("r", trainer.run(on_progress=lambda p: started.set(), cancel=event))
    )
    worker.start()
    assert started.wait(20)
    event.set()
    worker.join(20)
    assert not worker.is_alive() and out["r"].status == "cancelled"


def test_reconfigure_between_runs_changes_the_next_steps():
    task = get_task("recall", distance=3)
    trainer = Trainer(task, small(task, steps=10, optimizer="sgd", momentum=0.0, clip=None), cell="gru", hidden=6)
    trainer.run(on_progress=lambda p: p.step < 4)
    trainer.reconfigure(lr=0.0, steps=8)
    frozen = params(trainer.model)
    result = trainer.run()
    assert result.status == "finished" and result.step == 8
    assert all(torch.equal(frozen[k], v) for k, v in params(trainer.model).items())  # lr 0: nothing moved
    with pytest.raises(TrainConfigError, match="lr"):
        trainer.reconfigure(lr=-1.0)
    assert trainer.config.lr == 0.0


def test_resume_may_turn_weight_decay_on(tmp_path):
    task = get_task("recall", distance=3)
    Trainer(task, small(task, steps=4), cell="gru", hidden=6, run_dir=tmp_path / "r").run()
    trainer = Trainer.resume(tmp_path / "r", steps=6, weight_decay=0.5)
    assert not trainer.notes  # the optimizer state still fits
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.5, 0.0]
    assert trainer.run().step == 6


def test_a_new_run_refuses_a_folder_that_holds_one(tmp_path):
    task = get_task("recall", distance=3)
    Trainer(task, small(task, steps=2), cell="gru", hidden=4, run_dir=tmp_path / "run").run()
    with pytest.raises(Exception, match="--resume"):
        Trainer(task, small(task, steps=2), cell="gru", hidden=4, run_dir=tmp_path / "run")


def test_resume_refuses_another_task(tmp_path):
    task = get_task("recall", distance=3)
    Trainer(task, small(task, steps=2), cell="gru", hidden=4, run_dir=tmp_path / "run").run()
    with pytest.raises(Exception, match="trained on task 'recall'"):
        Trainer.resume(tmp_path / "run", task=get_task("adding"))


# ---- snapshots -------------------------------------------------------------------------------
def test_snapshots_every_n_steps_go_to_the_run_dir_and_the_callback(tmp_path):
    from rnn_tui.engine.checkpoint import list_snapshots, load_model

    task = get_task("recall", distance=3)
    got = []
    trainer = Trainer(task, small(task, steps=20, snapshot_every=5), cell="lstm", hidden=6, run_dir=tmp_path / "r")
    trainer.run(on_checkpoint=got.append)
    assert [s.step for s in got] == [5, 10, 15, 20]
    assert [s for s, _ in list_snapshots(tmp_path / "r")] == [5, 10, 15, 20]
    assert got[0].path.name == "step_000005.safetensors"
    model, _ = load_model(tmp_path / "r", snapshot=10)
    for name, t in model.tensors().items():
        assert torch.equal(t.detach(), torch.from_numpy(got[1].tensors[name]))


# ---- truncated BPTT ------------------------------------------------------------------------
def manual_tbptt(task, config, cell, K):
    """What TBPTT with window K means, written out: per window, detached state, one SGD step."""
    model = task.build_model(task.model_config(cell=cell, hidden=6), seed=config.seed)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    g = torch.Generator().manual_seed(config.seed)
    steps = 0
    while steps < config.steps:
        batch = task.sample(config.batch, g)
        state = None
        for a in range(0, batch.x.shape[1], K):
            w = Batch(batch.x[:, a : a + K], batch.y[:, a : a + K])
            if not (w.y != IGNORE).any():
                with torch.no_grad():
                    _, state = model(w.x, state, return_state=True)
                continue
            out, state = model(w.x, state, return_state=True)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = task.loss(out, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if steps == config.steps:
                break
    return params(model)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tbptt_windows_match_the_written_out_algorithm(cell):
    task = DelayTask(lag=1, T=10)
    config = small(task, optimizer="sgd", momentum=0.0, clip=None, lr=0.1, steps=7, tbptt=4)
    trainer = Trainer(task, config, cell=cell, hidden=6)
    trainer.run()
    expected = manual_tbptt(task, config, cell, 4)
    for name, t in params(trainer.model).items():
        torch.testing.assert_close(t, expected[name], rtol=1e-6, atol=1e-7)


def test_tbptt_window_as_long_as_the_sequence_is_full_bptt():
    task = DelayTask(T=10)
    full = train(task, small(task), cell="gru", hidden=6)
    window = train(task, small(task, tbptt=10), cell="gru", hidden=6)
    assert curve(full) == curve(window)


def test_tbptt_on_a_pooled_head_cuts_the_gradient_at_k_steps():
    task = get_task("recall", distance=6)  # the answer sits at step 0, 7 steps before the cue
    config = small(task, steps=1, optimizer="sgd", momentum=0.0, clip=None, tbptt=3)
    trainer = Trainer(task, config, cell="gru", hidden=6)
    before = params(trainer.model)
    trainer.run()
    # written out: the first 5 steps carry the state untracked, the last 3 get the gradient
    model = task.build_model(trainer.model_config, seed=0)
    batch = task.sample(config.batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, state = model(batch.x[:, :5], None, return_state=True)
    loss = task.loss(model(batch.x[:, 5:], state), batch)
    loss.backward()
    for name, p in model.tensors().items():
        torch.testing.assert_close(params(trainer.model)[name], before[name] - config.lr * p.grad)


def test_tbptt_refuses_what_it_cannot_do():
    with pytest.raises(TrainConfigError, match="one-direction"):
        Trainer(DelayTask(), small(DelayTask(), tbptt=3), cell="gru", bidirectional=True)
    with pytest.raises(TrainConfigError, match="mean"):
        task = DelayTask()
        task.head = "mean"
        Trainer(task, small(task, tbptt=3), cell="gru")


# ---- penalties and clipping ----------------------------------------------------------------
def one_sgd_step(task, cell="rnn", **changes):
    config = small(task, steps=1, optimizer="sgd", momentum=0.0, clip=None, lr=0.1).replace(**changes)
    trainer = Trainer(task, config, cell=cell, hidden=5)
    before = params(trainer.model)
    trainer.run()
    return before, params(trainer.model), trainer


def reference_grads(task, before, _unused, penalty=None):
    from rnn_tui.engine.model import build_model

    model = build_model(task.model_config(cell="rnn", hidden=5))
    model.load_tensors(before)
    batch = task.sample(16, torch.Generator().manual_seed(0))
    loss = task.loss(model(batch.x), batch)
    if penalty is not None:
        loss = loss + penalty(model)
    loss.backward()
    return {k: v.grad.clone() for k, v in model.tensors().items()}


def test_l1_and_weight_decay_reach_weight_matrices_not_biases():
    task = get_task("recall", distance=3)
    before, after, _ = one_sgd_step(task, l1=0.01, weight_decay=0.1)

    def l1(model):
        return 0.01 * sum(p.abs().sum() for n, p in model.tensors().items() if "bias" not in n)

    grads = reference_grads(task, before, {}, penalty=l1)
    for name in before:
        decay = 0.0 if "bias" in name else 0.1 * before[name]
        torch.testing.assert_close(after[name], before[name] - 0.1 * (grads[name] + decay), rtol=1e-5, atol=1e-7)


def test_clipping_by_norm_and_by_value():
    task = get_task("recall", distance=3)
    before, after, _ = one_sgd_step(task, clip=1e-3)
    moved = torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before))
    assert float(moved) == pytest.approx(0.1 * 1e-3, rel=1e-3)
    before, after, _ = one_sgd_step(task, clip_value=1e-4)
    grads = reference_grads(task, before, {})
    assert any(float(g.abs().max()) > 1e-3 for g in grads.values())  # there is something to clamp
    for name in before:
        expected = before[name] - 0.1 * grads[name].clamp(-1e-4, 1e-4)
        torch.testing.assert_close(after[name], expected, rtol=1e-6, atol=1e-8)


# ---- the classic result, in small ----------------------------------------------------------
def test_gated_cells_learn_the_adding_problem_where_a_tanh_rnn_stays_at_the_baseline():
    """Adding over 50 steps: a GRU and an LSTM go far below the error of always answering the mean
    (the variance of the target, measured here on fresh data), a tanh RNN of the same size trained
    the same way stays near it. (The full-size figures are in assets/models/README.md.)"""
    task = get_task("adding", seq_len=50)
    y = task.sample(8192, torch.Generator().manual_seed(123)).y
    baseline = float(((y - y.mean()) ** 2).mean())
    assert abs(baseline - 1 / 6) < 0.02
    config = TrainConfig.from_defaults(task.defaults, steps=800, batch=64, lr=1e-2, clip=1.0, log_every=50)
    steps = {"gru": 450, "lstm": 800, "rnn": 800}  # the rnn gets as many steps as the slowest gated cell
    results = {cell: Trainer(task, config.replace(steps=n), cell=cell, hidden=32).run() for cell, n in steps.items()}
    assert results["gru"].metric < 0.2 * baseline, results["gru"].metric
    assert results["lstm"].metric < 0.2 * baseline, results["lstm"].metric
    assert results["rnn"].metric > 0.7 * baseline, results["rnn"].metric


def test_an_lstm_learns_short_recall_in_a_few_steps():
    task = get_task("recall", distance=5)
    config = TrainConfig.from_defaults(task.defaults, steps=150, batch=64, log_every=50)
    untrained = Trainer(task, config, cell="lstm", hidden=32)
    _, before = untrained.evaluate(batches=8)
    assert before < 1 / task.symbols + 0.1  # an untrained model guesses
    result = untrained.run()
    assert result.metric >= 0.95 and result.solved


def test_an_encoder_decoder_run_saves_and_loads_both_halves(tmp_path):
    from rnn_tui.engine.checkpoint import load_model

    task = get_task("reverse", seq_len=4)
    trainer = Trainer(task, small(task, steps=6), cell="lstm", hidden=8, run_dir=tmp_path / "r")
    trainer.run()
    model, ckpt = load_model(tmp_path / "r")
    assert any(name.startswith("encoder.") for name in ckpt.tensors)
    assert any(name.startswith("decoder.") for name in ckpt.tensors)
    batch = task.sample(4, torch.Generator().manual_seed(1))
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(task.forward(model, batch), task.forward(trainer.model, batch), rtol=0, atol=0)
    with pytest.raises(TrainConfigError, match="encoder-decoder"):
        Trainer(task, small(task, tbptt=2), cell="lstm", hidden=8)
