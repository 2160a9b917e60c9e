"""What a run reports while it trains: metrics.jsonl and the progress bar; and what it leaves: the saved model and the loss curve."""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any

from iepile.training.config import TrainConfig

# ---- 5. callbacks --------------------------------------------------------------------------------------------------


def _trainer_callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class DeadlineCallback(_trainer_callback_base()):
    """A cap on training: wall-clock ``seconds`` and/or ``tokens`` (every token of the batches, the prompts' too, as
    ``num_input_tokens_seen`` counts them). The trainer stops (and saves) at the end of the step that passes a cap;
    ``stopped_by`` says which cap stopped it ("time", "tokens" or None; a recipe records it next to its results). A time cap is what a user waits for; a
    token cap trains the same amount on any machine (the recipe's 65 minutes were 554k tokens on one 2-core CPU and
    1.06M on another, bench/RESULTS.md), so runs on different machines compare.

    With ``fit_schedule`` the learning-rate schedule is fitted to the cap: every ``calibration_steps`` steps the steps
    that fit in the time (or tokens) left are estimated from the steps so far, and when that differs from the
    current length (never more than the ``max_steps`` asked), the schedule (warm-up and decay) is recomputed to end
    there and training stops there. A cosine cut off by the clock stops with the learning rate near its peak; on a
    machine half as fast (no AMX: 190 instead of 350-460 tokens/s) that was the whole second half of the decay. The
    fit is repeated because the first steps are no sample of the rest: length-grouped batches differ in size, and one
    fit after 20 steps (298 tokens/s) overestimated a run that went on at 241. ``fitted_steps`` records the length
    the schedule ended with."""

    def __init__(self, seconds: float | None, fit_schedule: bool = False, calibration_steps: int = 20,
                 margin: float = 0.95, clock=time.monotonic, tokens: int | None = None):
        self.seconds, self.tokens, self.stopped_by, self.started = seconds, tokens, None, 0.0
        self.fit_schedule, self.calibration_steps, self.margin = fit_schedule, calibration_steps, margin
        self.clock = clock
        self.first_step, self.first_tokens, self.asked_steps, self.fitted_steps = 0, 0, 0, None

    @property
    def hit(self) -> bool:
        return self.stopped_by is not None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step, self.asked_steps = self.clock(), state.global_step, state.max_steps
        self.first_tokens = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, lr_scheduler=None, optimizer=None, **kwargs):
        elapsed = self.clock() - self.started
        done = state.global_step - self.first_step
        if self.tokens and state.num_input_tokens_seen >= self.tokens:
            self.stopped_by = "tokens"
        elif self.seconds and elapsed > self.seconds:
            self.stopped_by = "time"
        if self.stopped_by:
            control.should_training_stop = True
            control.should_save = True
        elif (self.seconds or self.tokens) and self.fit_schedule and done and done % self.calibration_steps == 0:
            self.refit(args, state, lr_scheduler, optimizer, self.steps_left(state, elapsed, done))

    def steps_left(self, state, elapsed: float, done: int) -> int:
        """Steps that fit in what is left of each cap, at the pace of the ``done`` steps so far: the time with a
        margin, as steps vary; the tokens up to the step that reaches their cap, where training stops anyway."""
        left = []
        if self.seconds:
            left.append(self.margin * (self.seconds - elapsed) / (elapsed / done))
        if self.tokens:
            per_step = max(state.num_input_tokens_seen - self.first_tokens, 1) / done
            left.append(math.ceil((self.tokens - state.num_input_tokens_seen) / per_step))
        return int(min(left))

    def refit(self, args, state, lr_scheduler, optimizer, steps_left: int) -> None:
        """End the schedule ``steps_left`` steps from now (or at the steps asked, if sooner)."""
        fitting = min(self.asked_steps, state.global_step + steps_left)
        if fitting != state.max_steps and refit_schedule(lr_scheduler, optimizer, args, fitting):
            self.fitted_steps = state.max_steps = fitting


def refit_schedule(scheduler, optimizer, args, total_steps: int) -> bool:
    """Give a running LambdaLR schedule (every schedule transformers builds) the lambdas of the same schedule over
    ``total_steps``, and set the learning rate of the next step from them; False if the scheduler is of another
    kind (left as it is)."""
    import warnings

    from transformers import get_scheduler

    if not hasattr(scheduler, "lr_lambdas") or optimizer is None:
        return False
    with warnings.catch_warnings():  # building a scheduler steps it once, before any optimizer step: harmless here
        warnings.simplefilter("ignore")
        fresh = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(total_steps),
                              num_training_steps=total_steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    scheduler.lr_lambdas = fresh.lr_lambdas
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    return True


class MetricsCallback(_trainer_callback_base()):
    """Appends every log (train loss, eval loss, lr, tokens/s) to metrics.jsonl as it happens (main process)."""

    def __init__(self, path: pathlib.Path, initial_eval: dict | None):
        self.path = path
        self.initial_eval = initial_eval
        self.started = time.perf_counter()
        self.tokens_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if self.initial_eval and state.global_step == 0:
            state.log_history.insert(0, {**self.initial_eval, "step": 0, "epoch": 0.0})
        self.started, self.tokens_at_start = time.perf_counter(), state.num_input_tokens_seen
        if state.is_world_process_zero:
            self.rewrite(state.log_history)  # after a resume: exactly the history up to the checkpoint

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        elapsed = time.perf_counter() - self.started
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        record["tokens_seen"] = int(state.num_input_tokens_seen)
        record["tokens_per_second"] = round((state.num_input_tokens_seen - self.tokens_at_start) / max(elapsed, 1e-9), 1)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def rewrite(self, log_history: list[dict]) -> None:
        from iepile.fileio import write_text_atomic

        write_text_atomic(self.path, "".join(json.dumps(entry) + "\n" for entry in log_history))


class RichProgressCallback(_trainer_callback_base()):
    """A progress bar: step, loss, tokens/s and ETA (main process only)."""

    def __init__(self):
        self.bar = None
        self.loss = float("nan")
        self.started = 0.0
        self.tokens_at_start = 0
        self.steps_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from iepile.fileio import ProgressBar

        self.bar = ProgressBar("train", state.max_steps, fields={"loss": "loss -", "speed": "- tok/s"}).start(
            completed=state.global_step)
        self.started = time.perf_counter()
        self.tokens_at_start, self.steps_at_start = state.num_input_tokens_seen, state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        speed = (state.num_input_tokens_seen - self.tokens_at_start) / elapsed
        self.bar.update(completed=state.global_step, total=state.max_steps,  # a schedule fitted to a time cap
                        loss=f"loss {self.loss:.4f}", speed=f"{speed:,.0f} tok/s")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = logs["loss"]
        if self.bar is not None and logs and "eval_loss" in logs:
            self.bar.print(f"step {state.global_step}: validation loss {logs['eval_loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# ---- 6. outputs ----------------------------------------------------------------------------------------------------


def save_final(trainer: Any, output: pathlib.Path, config: TrainConfig, builder: Any) -> pathlib.Path:
    """adapter/ (LoRA) or model/ (full) in HF format, plus the tokenizer and iepile.json (base model, template)."""
    from iepile.modeling.loading import IEPILE_META_FILE

    saved_dir = output / ("adapter" if config.finetuning == "lora" else "model")
    trainer.save_model(str(saved_dir))  # main process only; handles DDP/DeepSpeed unwrapping
    if trainer.is_world_process_zero():
        builder.tokenizer.save_pretrained(saved_dir)
        meta = {"base_model": portable_model_name(config.model), "template": builder.template_name,
                "system": config.system}
        write_json(saved_dir / IEPILE_META_FILE, meta)
    trainer.accelerator.wait_for_everyone()
    return saved_dir


def portable_model_name(model: str | None) -> str | None:
    """None stays None (the default model, found anew on any machine); local paths become absolute."""
    if model is None or not pathlib.Path(model).exists():
        return model
    return str(pathlib.Path(model).resolve())


def plot_loss_curve(log_history: list[dict], path: pathlib.Path) -> None:
    """Training and validation loss against the optimiser step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_points = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    eval_points = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    figure, axes = plt.subplots(figsize=(7, 4))
    if train_points:
        axes.plot(*zip(*train_points), label="train loss")
    if eval_points:
        axes.plot(*zip(*eval_points), marker="o", label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_json(path: pathlib.Path, value: Any) -> None:
    from iepile.fileio import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def last_logged(log_history: list[dict], key: str) -> float | None:
    values = [e[key] for e in log_history if key in e]
    return values[-1] if values else None
