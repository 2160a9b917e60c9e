"""Options written once: a typer command built from a config dataclass, with --config YAML under the flags."""

from __future__ import annotations

import dataclasses
from typing import Literal

import typer
from typer.testing import CliRunner

from iepile.config import opt, resume_ignored, typer_command
from iepile.training.recipe import TrainConfig


@dataclasses.dataclass
class Settings:
    path: str = opt(help="The input.")
    rate: float | None = opt(None, "A rate.", flag="--lr")
    mode: Literal["a", "b"] = opt("a", "A mode.")
    names: list[str] | None = opt(None, "Names.")
    progress: bool = opt(True, "No progress bar.", flag="--quiet", invert=True, resume_check=False)
    steps: int = opt(3, "Steps.")
    secret: bool = opt(False, "Not on the command line.", cli=False)


def run(argv: list[str]) -> Settings:
    seen = []
    app = typer.Typer()
    app.command()(typer_command(Settings, seen.append, arguments=("path",)))
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return seen[0]


def test_flags_come_from_the_fields(tmp_path):
    assert run(["in.json"]) == Settings(path="in.json")
    got = run(["in.json", "--lr", "0.5", "--mode", "b", "--names", "x, y", "--quiet", "--steps", "7"])
    assert got == Settings(path="in.json", rate=0.5, mode="b", names=["x", "y"], progress=False, steps=7)


def test_config_file_under_the_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("steps: 9\nrate: 0.1\nprogress: false\n", encoding="utf-8")
    assert run(["in.json", "--config", str(config)]) == Settings(path="in.json", steps=9, rate=0.1, progress=False)
    assert run(["in.json", "--config", str(config), "--steps", "2"]).steps == 2  # a flag given wins
    config.write_text("colour: red\n", encoding="utf-8")
    app = typer.Typer()
    app.command()(typer_command(Settings, print, arguments=("path",)))
    result = CliRunner().invoke(app, ["in.json", "--config", str(config)])
    assert result.exit_code != 0 and "colour" in result.output


def test_train_config_is_the_train_command():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {"learning_rate", "batch_tokens", "finetuning", "progress"} <= names
    assert resume_ignored(TrainConfig) == {"resume", "overwrite", "progress", "record_batches"}
    assert all(f.metadata.get("help") for f in dataclasses.fields(TrainConfig))  # every setting says what it does
