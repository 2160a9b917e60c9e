"""Recipe runner: ``iepile reproduce recipes/reproduce.yaml --data ../shared/data``.

A recipe is one YAML manifest in ``recipes/`` listing steps that run top to bottom (like a torchtune recipe)::

    name: reproduce
    seed: 42
    model: default            # SmolLM2-135M-Instruct, or a local HF folder / .gguf (--model overrides)
    steps:
      - {name: corpus, kind: build, manifest: corpus-small.yaml, ...}    # iepile build, with overrides
      - {name: train, kind: train, corpus: corpus, config: {...}}         # iepile train (LoRA)
      - {name: test, kind: sample, corpus: corpus, max_instructions: 64}  # a seeded sample of the test files
      - {name: predict, kind: predict, tests: [test], systems: {...}}     # iepile predict (± constrain)
      - {name: results, kind: report, predict: predict, modes: [...]}     # iepile eval → results.md / .json

Every step writes into ``<output>/<step name>/`` and ends by writing ``step.json`` with a key: a hash of its settings
and of the keys of the steps it reads. A rerun skips a step whose ``step.json`` has the same key (so an interrupted
run resumes: a half-trained adapter continues from its last checkpoint, a half-done prediction file from its
journal). A step whose settings changed is refused until its folder is removed (or ``--redo NAME``, which reruns
it and every later step that reads it, directly or not). ``--until NAME`` stops after that step.

Step kinds:

``build``
    ``manifest`` (an ``iepile build`` manifest, relative to the recipe) with ``manifest_data_root`` (the data root as
    that manifest writes it): every dataset path under it is moved under ``--data``. ``datasets`` keeps a subset,
    ``all`` sets keys on every dataset, ``overrides: {dataset: {key: value}}`` on one (``null`` removes a key),
    ``clean``, ``tokenizer`` and ``balance`` replace the manifest's (answer-token balancing: :mod:`iepile.data.corpus`).
``train``
    ``corpus`` (a build step), ``config`` (:class:`iepile.training.config.TrainConfig` fields; ``max_steps``, or
    ``epochs`` when no ``max_steps`` is given, is multiplied by ``--budget-scale``), ``max_minutes`` (a wall-clock cap:
    training stops at the next step after it, recorded), ``max_tokens`` (a cap on the tokens trained, prompts
    included: the same amount of training on any machine; scaled by ``--budget-scale``); with ``fit_schedule``
    (default true) the learning-rate schedule is refitted every 20 steps to end at the steps that fit in the caps:
    ``schedule_fitted_to``.
``sample``
    ``corpus``, ``split`` (default test), ``datasets``, ``max_instructions`` or ``max_records`` per dataset (both
    scaled by ``--budget-scale``; a number, or a mapping ``{dataset: n, "*": n}``). Whole records are drawn (the
    scorer counts every gold item of a record), in a seeded order that depends only on the seed and the dataset name,
    so samples of differently converted test files of the same corpus hold the same records.
``tune``
    ``dev`` (a sample step of a dev split), ``system`` (a train step), ``thresholds`` (list), ``constrain``,
    ``options``: predicts the dev sample greedily and at each threshold, keeps the threshold with the best F1 averaged
    over datasets, and draws each dataset's precision/recall points (``pr-<dataset>.png``). ``per_dataset: true``
    also keeps each dataset's own best threshold where its dev sample holds at least ``min_gold`` (default 20) gold
    items, the macro choice elsewhere.
``predict``
    ``tests`` (sample steps), ``systems: {name: null | train step}`` (null = the base model, zero-shot),
    ``tuned: {system: tune step}`` (the system once more at the threshold that step chose, as ``system@t``, or at
    each dataset's, as ``system@dev``;
    ``keep_greedy: false`` keeps only that one), ``constrain: [false, true]``, ``options``
    (:class:`iepile.inference.predict.PredictOptions` fields).
``report``
    ``predict`` (a predict step), ``tune`` (a tune step: its table and curves), ``modes`` (eval modes),
    ``published`` (text shown next to the table), ``confusable`` (``{file, sections: {dataset: [task, section]}}``:
    per-type F1 and confusion counts for the labels of a hard-negative dictionary). Writes ``results.md``,
    ``results.html`` and ``results.json`` with the commit and machine.
"""


from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

from iepile.fileio import atomic_output, write_text_atomic
from iepile.recipes.manifest import (DEFAULT_DATA, RecipeError, corpus_document, load_recipe, per_dataset,
                                     scaled, step_key)
from iepile.recipes.results import (answers_by_source, commit_info, load_confusable, machine_info, score_rows,
                                    write_results)

MARKER = "step.json"


def _say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(message)


class Runner:
    def __init__(self, recipe: dict, *, data: Optional[str] = None, model: Optional[str] = None,
                 budget_scale: float = 1.0, output: Optional[str] = None, redo: tuple[str, ...] = (),
                 until: Optional[str] = None, progress: bool = True, log: Callable[[str], None] = _say):
        self.recipe = recipe
        self.recipe_dir = Path(recipe["_path"]).parent
        self.data = Path(data or recipe.get("data") or DEFAULT_DATA)
        if not self.data.is_absolute():  # --data from the working directory, the recipe's from its own folder
            self.data = (Path.cwd() / self.data) if data else (self.recipe_dir / self.data)
        self.data = self.data.resolve()
        self.model = model or recipe.get("model") or None
        if self.model in ("default", ""):
            self.model = None
        if self.model:
            self.model = str(Path(self.model).resolve())
        if budget_scale <= 0:
            raise RecipeError("--budget-scale must be positive")
        self.scale = budget_scale
        self.seed = int(recipe.get("seed", 42))
        name = recipe["name"] + ("" if budget_scale == 1 else f"-scale{budget_scale:g}")
        self.out = Path(output) if output else Path.cwd() / "runs" / name
        self.progress = progress
        self.log = log
        self.steps = {step["name"]: step for step in recipe["steps"]}
        for wanted in (*redo, *([until] if until else [])):
            if wanted not in self.steps:
                raise RecipeError(f"no step {wanted!r} in {recipe['_path']}; its steps: {', '.join(self.steps)}")
        self.redo = set(redo)  # grows by every step that reads a redone one (see run_step)
        self.until = until
        self.keys: dict[str, str] = {}
        self.results: dict[str, dict] = {}
        self.status: dict[str, str] = {}

    # -- driving ------------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self.log(f"[bold]recipe {self.recipe['name']}[/] → {self.out} (data {self.data}, model "
                 f"{self.model or 'default SmolLM2-135M-Instruct'}, budget scale {self.scale:g})")
        for number, step in enumerate(self.recipe["steps"], start=1):
            self.run_step(number, step)
            if step["name"] == self.until:
                self.log(f"stopped after step {self.until!r} (--until)")
                break
        self.log(f"recipe finished in {time.perf_counter() - started:.0f} s; everything is under {self.out}")
        return {"output": str(self.out), "status": dict(self.status), "results": self.results}

    def run_step(self, number: int, step: dict) -> None:
        name, kind = step["name"], step["kind"]
        folder = self.out / name
        upstream = self.depends(step)
        key = step_key({"step": step, "upstream": [self.keys[d] for d in upstream], "scale": self.scale,
                     "seed": self.seed, "data": str(self.data), "model": self.model, "files": self._read_files(step)})
        self.keys[name] = key
        marker = folder / MARKER
        if self.redo.intersection(upstream):  # a redone step's key does not change: its readers must rerun too
            self.redo.add(name)
        if name in self.redo and folder.exists():
            shutil.rmtree(folder)
        if marker.exists():
            done = json.loads(marker.read_text(encoding="utf-8"))
            if done.get("key") == key:
                self.log(f"[bold]{number}. {name}[/] ({kind}): cached ({folder})")
                self.results[name] = done.get("result", {})
                self.status[name] = "cached"
                return
            raise RecipeError(f"step {name!r}: {folder} was made with different settings; remove it or pass "
                              f"--redo {name}")
        self.log(f"[bold]{number}. {name}[/] ({kind})")
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        result = self.step_runners()[kind](step, folder)
        seconds = round(time.perf_counter() - started, 1)
        result = {**result, "seconds": seconds}
        write_text_atomic(marker, json.dumps({"key": key, "kind": kind, "result": result}, ensure_ascii=False,
                                             indent=2) + "\n")
        self.results[name] = result
        self.status[name] = "ran"
        self.log(f"   done in {seconds:.0f} s")

    def _read_files(self, step: dict) -> dict[str, str]:
        """The hashes of the recipe-side files a step reads (a build step's manifest): editing one reruns it."""
        if step.get("kind") != "build":
            return {}
        manifest = self.recipe_dir / step["manifest"]
        return {step["manifest"]: hashlib.sha256(manifest.read_bytes()).hexdigest()}

    def step_runners(self) -> dict[str, Callable[[dict, Path], dict]]:
        """The registry of step kinds: what each ``kind:`` of a recipe runs (the keys are :data:`STEP_KINDS`)."""
        return {"build": self.step_build, "train": self.step_train, "sample": self.step_sample, "tune": self.step_tune,
                "predict": self.step_predict, "report": self.step_report}

    def depends(self, step: dict) -> list[str]:
        refs = []
        for key in ("corpus", "predict", "dev", "system", "tune"):
            if step.get(key):
                refs.append(step[key])
        refs += list(step.get("tests") or [])
        refs += [v for v in (step.get("systems") or {}).values() if v]
        if step.get("kind") == "predict":
            refs += list((step.get("tuned") or {}).values())
        for ref in refs:
            if ref not in self.keys:
                raise RecipeError(f"step {step['name']!r} refers to {ref!r}, which is not an earlier step")
        return refs

    # -- build --------------------------------------------------------------------------------------------------------
    def step_build(self, step: dict, folder: Path) -> dict:
        import yaml

        from iepile.data.corpus import build
        from iepile.data.manifest import parse_manifest

        manifest_path = (self.recipe_dir / step["manifest"]).resolve()
        doc = corpus_document(step, manifest_path, self.data, self.seed, folder / "corpus")
        datasets = doc["datasets"]
        resolved = folder / "corpus.yaml"  # the record of what was built (paths resolved under --data)
        write_text_atomic(resolved, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        combined = build(parse_manifest(doc, manifest_path.parent, str(manifest_path)))
        splits: dict[str, dict[str, str]] = {}  # evaluation split → dataset → converted file
        for item in datasets:
            for split in item["splits"]:
                if split != "train":
                    splits.setdefault(split, {})[item["name"]] = str(folder / "corpus" / "test" / item["name"]
                                                                     / f"{split}.json")
        tests = splits.get("test", {})
        self.log(f"   {combined['train']['lines']} training lines; test files: {', '.join(tests)}")
        return {"corpus": str(folder / "corpus"), "train": str(folder / "corpus" / "train.json"),
                "train_lines": combined["train"]["lines"], "tests": tests, "splits": splits,
                "mix": combined["train"].get("mix"),
                "tasks": {item["name"]: str(item["task"]).upper() for item in datasets},
                "languages": {item["name"]: item.get("language", "en") for item in datasets}}

    # -- train --------------------------------------------------------------------------------------------------------
    def step_train(self, step: dict, folder: Path) -> dict:
        from iepile.training.callbacks import DeadlineCallback
        from iepile.training.recipe import TrainConfig, train

        corpus = self.results[step["corpus"]]
        settings = dict(step.get("config") or {})
        settings["max_steps"] = scaled(settings.get("max_steps", -1), self.scale)
        if settings["max_steps"] < 0 and self.scale != 1:  # an epoch-bounded run: a quick run trains on a fraction
            settings["epochs"] = float(settings.get("epochs", 1.0)) * self.scale
        run_dir = folder / "run"
        has_checkpoint = any((run_dir / "checkpoints").glob("checkpoint-*"))
        config = TrainConfig(train_file=corpus["train"], output_dir=str(run_dir), model=self.model,
                             seed=self.seed, progress=self.progress, resume=has_checkpoint,
                             overwrite=not has_checkpoint, **settings)
        deadline = DeadlineCallback(float(step["max_minutes"]) * 60 * self.scale if step.get("max_minutes") else None,
                                    fit_schedule=step.get("fit_schedule", True),
                                    tokens=scaled(step["max_tokens"], self.scale) if step.get("max_tokens") else None)
        if has_checkpoint:
            self.log(f"   resuming from the last checkpoint in {run_dir / 'checkpoints'}")
        length = f"{config.max_steps} steps" if config.max_steps > 0 else f"{config.epochs:g} epoch(s)"
        self.log(f"   {'LoRA' if config.finetuning == 'lora' else 'full'} fine-tune: {length} × batch "
                 f"{config.batch_size}×{config.grad_accum}"
                 + (f", stops after {deadline.seconds / 60:.0f} min" if deadline.seconds else "")
                 + (f", stops at {deadline.tokens:,} tokens" if deadline.tokens else ""))
        result = train(config, callbacks=[deadline])
        tps = result.tokens_seen / result.train_seconds if result.train_seconds else 0.0
        fitted = (f"; the schedule was fitted to the time cap: {deadline.fitted_steps} steps" if deadline.fitted_steps
                  else "")
        self.log(f"   trained {result.global_step} steps, {result.tokens_seen} tokens in {result.train_seconds:.0f} s "
                 f"({tps:.0f} tokens/s); loss {result.train_loss}{fitted}")
        return {"saved_dir": result.saved_dir, "finetuning": config.finetuning, "global_step": result.global_step,
                "max_steps": config.max_steps, "schedule_fitted_to": deadline.fitted_steps,
                "stopped_by_time_cap": deadline.stopped_by == "time",
                "stopped_by_token_cap": deadline.stopped_by == "tokens", "train_loss": result.train_loss, "tokens_seen": result.tokens_seen,
                "train_seconds": round(result.train_seconds, 1), "tokens_per_second": round(tps, 1),
                "examples": result.data_report["train"].get("examples")}

    # -- sample -------------------------------------------------------------------------------------------------------
    def step_sample(self, step: dict, folder: Path) -> dict:
        corpus = self.results[step["corpus"]]
        out_file = folder / "test.json"
        counts = {}
        split = step.get("split", "test")
        if split not in corpus["splits"]:
            raise RecipeError(f"step {step['name']!r}: corpus {step['corpus']!r} has no {split!r} split")
        with atomic_output(out_file) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for dataset, path in corpus["splits"][split].items():
                if step.get("datasets") and dataset not in step["datasets"]:
                    continue
                max_instructions = scaled(per_dataset(step.get("max_instructions"), dataset), self.scale)
                max_records = scaled(per_dataset(step.get("max_records"), dataset), self.scale)
                lines, records = sample_records(Path(path), dataset, self.seed, max_instructions, max_records)
                out.writelines(lines)
                counts[dataset] = {"instructions": len(lines), "records": records}
        self.log("   " + ", ".join(f"{d}: {c['instructions']} instructions / {c['records']} records"
                                   for d, c in counts.items()))
        return {"file": str(out_file), "datasets": counts, "max_instructions": step.get("max_instructions"),
                "max_records": step.get("max_records"), "tasks": corpus["tasks"]}

    # -- predict ------------------------------------------------------------------------------------------------------
    def step_predict(self, step: dict, folder: Path) -> dict:
        runs = []
        # every system plain first, then constrained (about 2.5x slower): the main numbers come first when a
        # session ends mid-step (the step resumes where it stopped)
        for test in step["tests"]:
            for constrain in step.get("constrain", [False]):
                for system, train_step, threshold in self._systems(step):
                    label = f"{system}{'+constrain' if constrain else ''}"
                    dst = folder / test / f"{system}{'-constrained' if constrain else ''}.json"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    self.log(f"   {test}: {label}")
                    summary = self._predict(self.results[test]["file"], dst, train_step, bool(constrain), threshold,
                                            step)
                    runs.append({"test": test, "system": system, "constrain": bool(constrain), "file": str(dst),
                                 "threshold": threshold, "lines": summary.lines, "generated": summary.generated,
                                 "seconds": round(summary.seconds, 1),
                                 "instructions_per_second": round(summary.instructions_per_second, 3)})
        return {"runs": runs, "options": step.get("options") or {}}

    def _systems(self, step: dict) -> list[tuple[str, Optional[str], Optional[float]]]:
        """(name, train step or None, threshold) per system; ``tuned: {system: tune step}`` adds the system
        once more with the threshold that tune step chose (``finetuned@0.3``), unless greedy decoding won;
        ``keep_greedy: false`` then drops its greedy run (half the prediction time on a large sample)."""
        systems = []
        for system, train_step in (step.get("systems") or {"base": None}).items():
            tune = (step.get("tuned") or {}).get(system)
            chosen = self.results[tune]["threshold"] if tune else None
            if tune and self.results[tune].get("thresholds"):  # per dataset; the macro choice for the others
                chosen = {**self.results[tune]["thresholds"], "*": chosen}
                if all(t is None for t in chosen.values()):
                    chosen = None  # greedy won everywhere
            if chosen is None or step.get("keep_greedy", True):
                systems.append((system, train_step, None))
            if isinstance(chosen, dict):
                systems.append((f"{system}@dev", train_step, chosen))
            elif chosen is not None:
                systems.append((f"{system}@{chosen:g}", train_step, chosen))
        return systems

    # -- tune ---------------------------------------------------------------------------------------------------------
    def step_tune(self, step: dict, folder: Path) -> dict:
        """``--threshold`` for one system, chosen on a dev sample (never the test): one prediction run per
        threshold and one greedy, scored per dataset (strict); the best F1 averaged over datasets wins (with
        ``per_dataset``, also each dataset's own best where its dev gold suffices), and each dataset's
        precision/recall points are drawn to ``pr-<dataset>.png``."""
        from iepile.evaluate.curves import best_threshold, best_thresholds_per_dataset, plot_precision_recall

        dev = self.results[step["dev"]]
        constrain = bool(step.get("constrain", False))
        points = []
        for threshold in [None, *step["thresholds"]]:
            name = "greedy" if threshold is None else f"t{threshold:g}"
            dst = folder / f"{name}.json"
            self.log(f"   {step['dev']}: {step['system']} {name}")
            self._predict(dev["file"], dst, step["system"], constrain, threshold, step)
            run = {"test": step["dev"], "system": step["system"], "constrain": constrain, "threshold": threshold}
            for dataset, lines in answers_by_source(dst).items():
                row = score_rows(lines, dataset, "strict", run, None)
                points.append({"threshold": threshold, "dataset": dataset, "precision": row["precision"],
                               "recall": row["recall"], "f1": row["f1"], "pred": row["pred"], "gold": row["gold"]})
        chosen, macro = best_threshold(points)
        min_gold = int(step.get("min_gold", 20))
        own = best_thresholds_per_dataset(points, chosen, min_gold) if step.get("per_dataset") else {}
        plots = {}
        for dataset in dict.fromkeys(p["dataset"] for p in points):
            plots[dataset] = str(folder / f"pr-{dataset}.png")
            plot_precision_recall(points, dataset, Path(plots[dataset]), own.get(dataset, chosen))
        name = lambda t: "greedy" if t is None else f"{t:g}"  # noqa: E731
        self.log(f"   chosen threshold: {name(chosen)} (dev macro F1 "
                 + ", ".join(f"{name(t)}: {f1:.2f}" for t, f1 in macro.items()) + ")"
                 + ("; per dataset: " + ", ".join(f"{d} {name(t)}" for d, t in own.items()) if own else ""))
        result = {"threshold": chosen, "system": step["system"], "constrain": constrain, "points": points,
                  "macro_f1": [[t, f1] for t, f1 in macro.items()], "plots": plots}
        if own:
            result.update(thresholds=own, min_gold=min_gold)
        return result

    def _predict(self, src: str, dst: Path, train_step: Optional[str], constrain: bool,
                 threshold: Optional[float] | dict[str, Optional[float]], step: dict):
        """Answer ``src`` with a system (the base model, or what ``train_step`` trained) and the step's options; a
        threshold per dataset (``{source: t, "*": t for the rest}``) answers each dataset's lines apart and joins
        them in order."""
        if isinstance(threshold, dict):
            return self._predict_per_dataset(src, dst, train_step, constrain, threshold, step)
        return self._predict_one(src, dst, train_step, constrain, threshold, step)

    def _predict_per_dataset(self, src: str, dst: Path, train_step: Optional[str], constrain: bool,
                             thresholds: dict[str, Optional[float]], step: dict):
        from iepile.inference.predict import PredictSummary

        parts_dir = dst.parent / f"{dst.stem}.parts"
        parts_dir.mkdir(exist_ok=True)
        groups: dict[str, list[int]] = {}  # dataset → its line numbers in src
        with open(src, encoding="utf-8") as handle:
            lines = [line if line.endswith("\n") else line + "\n" for line in handle if line.strip()]
        for number, line in enumerate(lines):
            groups.setdefault(json.loads(line).get("source", ""), []).append(number)
        total, answers = PredictSummary(output=str(dst)), [""] * len(lines)
        for dataset, numbers in groups.items():
            if dataset not in thresholds and "*" not in thresholds:
                raise RecipeError(f"{src}: no tuned threshold for dataset {dataset!r} (tuned: {sorted(thresholds)})")
            part_in, part_out = parts_dir / f"{dataset}.in.json", parts_dir / f"{dataset}.json"
            write_text_atomic(part_in, "".join(lines[n] for n in numbers))
            summary = self._predict_one(str(part_in), part_out, train_step, constrain,
                                        per_dataset(thresholds, dataset), step)
            total.lines += summary.lines
            total.generated += summary.generated
            total.seconds += summary.seconds
            with open(part_out, encoding="utf-8") as handle:
                for number, answer in zip(numbers, (a for a in handle if a.strip()), strict=True):
                    answers[number] = answer if answer.endswith("\n") else answer + "\n"
        with atomic_output(dst) as tmp, open(tmp, "w", encoding="utf-8") as out:
            out.writelines(answers)
        return total

    def _predict_one(self, src: str, dst: Path, train_step: Optional[str], constrain: bool,
                     threshold: Optional[float], step: dict):
        """One ``iepile predict`` run of ``src`` at one threshold (None: greedy)."""
        from iepile.inference.predict import PredictOptions, predict_file

        model, adapter = self._system_model(train_step)
        options = PredictOptions(model=model, adapter=adapter, constrain=constrain, threshold=threshold,
                                 progress=self.progress, **(step.get("options") or {}))
        return predict_file(src, dst, options)

    def _system_model(self, train_step: Optional[str]) -> tuple[Optional[str], Optional[str]]:
        """(model, adapter) of a system: the base model, base + a trained adapter, or a fully fine-tuned model."""
        if not train_step:
            return self.model, None
        trained = self.results[train_step]
        if trained.get("finetuning", "lora") == "full":
            return trained["saved_dir"], None
        return self.model, trained["saved_dir"]

    # -- report -------------------------------------------------------------------------------------------------------
    def step_report(self, step: dict, folder: Path) -> dict:
        runs = self.results[step["predict"]]["runs"]
        modes = step.get("modes") or ["strict", "iepile"]
        confusable = load_confusable(step.get("confusable"), self.recipe_dir, self.data)
        rows = []
        for run in runs:
            for dataset, lines in answers_by_source(Path(run["file"])).items():
                for mode in modes:
                    rows.append(score_rows(lines, dataset, mode, run, confusable.get(dataset)))
        document = {
            "recipe": self.recipe["name"], "recipe_file": os.path.relpath(self.recipe["_path"]),
            **commit_info(), "machine": machine_info(), "budget_scale": self.scale,
            "model": self.model or "default (SmolLM2-135M-Instruct)", "data": str(self.data),
            "steps": {name: {k: v for k, v in result.items() if k not in ("runs",)}
                      for name, result in self.results.items()},
            "predict_runs": runs, "published": step.get("published"), "rows": rows,
        }
        if step.get("tune"):
            tuned = self.results[step["tune"]]
            document["tuning"] = {k: v for k, v in tuned.items() if k != "plots"}
            document["tuning"]["plots"] = {}
            for dataset, plot in tuned["plots"].items():  # next to the results, so that both pages show them
                shutil.copyfile(plot, folder / Path(plot).name)
                document["tuning"]["plots"][dataset] = Path(plot).name
        self.log(write_results(folder, document, step))
        self.log(f"   results: {folder / 'results.md'}, results.html and results.json")
        return {"markdown": str(folder / "results.md"), "json": str(folder / "results.json"), "rows": len(rows)}


# ---- samples ---------------------------------------------------------------------------------------------------------


def _record_key(record: dict) -> str:
    return str(record.get("record_index", record.get("id")))


def sample_records(path: Path, dataset: str, seed: int, max_instructions: Optional[int],
                   max_records: Optional[int]) -> tuple[list[str], int]:
    """Whole records of a test file in a seeded order (seed and dataset name only), until ``max_records`` records
    or ``max_instructions`` lines (at least one record); returned in file order."""
    groups: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                groups.setdefault(_record_key(json.loads(line)), []).append(line if line.endswith("\n") else line + "\n")
    order = sorted(groups, key=lambda k: (len(k), k))
    random.Random(f"{seed}:sample:{dataset}").shuffle(order)
    chosen, total = set(), 0
    for key in order:
        if max_records is not None and len(chosen) >= max_records:
            break
        if max_instructions is not None and chosen and total + len(groups[key]) > max_instructions:
            continue
        chosen.add(key)
        total += len(groups[key])
        if max_instructions is not None and total >= max_instructions:
            break
    return [line for key in groups if key in chosen for line in groups[key]], len(chosen)


# ---- entry point -----------------------------------------------------------------------------------------------------


def run_recipe(path: str | os.PathLike, *, data: Optional[str] = None, model: Optional[str] = None,
               budget_scale: float = 1.0, output: Optional[str] = None, settings: Optional[dict] = None,
               redo: tuple[str, ...] = (), until: Optional[str] = None, progress: bool = True,
               log: Callable[[str], None] = _say) -> dict:
    """Run a recipe; returns ``{"output", "status": {step: "ran" | "cached"}, "results": {step: ...}}``."""
    recipe = load_recipe(path, settings)
    return Runner(recipe, data=data, model=model, budget_scale=budget_scale, output=output, redo=tuple(redo),
                  until=until, progress=progress, log=log).run()
