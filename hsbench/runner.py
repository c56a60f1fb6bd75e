"""One run end to end: dataset, split, strategy, timing, evaluation, storage.

A run is (dataset, split, strategy + options, seed). Its id hashes the resolved configuration, including the
dataset's content hash and the split's hash, so a changed input can never be mistaken for a finished run.

A run executes exactly once at a time: the main process claims it in the results database (:func:`hsbench.claims.
hold`, the mechanism of benchmark cells) before touching its folder, so a second process on the same run waits
and reports the first one's result, and takes over only when the first one died.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsbench
from hsbench.claims import RUNS_SUITE, CellClaims, Hold, hold
from hsbench.data.dataset import Dataset
from hsbench.data.dataset_spec import open_dataset
from hsbench.distributed import is_main_process, rank
from hsbench.errors import HsbenchError
from hsbench.evaluation import evaluate_view
from hsbench.faults import BestEffortFileHandler, describe, located
from hsbench.metrics import compute_metrics, per_class_metrics
from hsbench.names import path_component
from hsbench.options import config_hash
from hsbench.provenance import git_commit, hardware_and_builds
from hsbench.seeding import SeedStreams
from hsbench.splits import Split, make_split, parse_split_spec
from hsbench.store import ResultsStore, default_database
from hsbench.strategy import EpochRecord, RunContext, SplitView, Strategy, default_guard, resolve_strategy
from hsbench.tensorboard_log import RunBoard, require_tensorboard
from hsbench.visualize import save_prediction_panel
from hsbench.zoo import Zoo

__all__ = ["RunSpec", "RunOutcome", "ValidationOutcome", "Runner"]

log = logging.getLogger("hsbench")

PROTOCOL = 3
"""What a run computes beyond its options, part of every run id: bumped whenever the harness changes the results of
an unchanged config, so a stored run is never reused across such a change. 2: training inputs of scenes blanked
outside the readable region, ``kshot`` classes too small for the split excluded, disjoint guard from the strategies.
3: val views of scenes hide the test pixels and their guard band (model selection and val metrics)."""

_NOT_COLUMNS = ("options", "split_params", "protocol")
"""Config keys kept in ``config`` (and the run id) but not given a column of their own in the runs table."""


@dataclass(frozen=True)
class RunSpec:
    """What the user asked for (before defaults are resolved)."""

    dataset: str
    strategy: str
    split: str = "fraction=0.1"
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunOutcome:
    run_id: str
    status: str  # completed | skipped | failed | busy (another process runs it and the runner would not wait)
    label: str
    test_metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    run_dir: Path | None = None
    holder: str | None = None  # who runs it, when busy ("pid 123 on host h")


@dataclass
class ValidationOutcome:
    """What :meth:`Runner.validate` measured: val metrics only (a sweep trial's objective)."""

    run_id: str
    label: str
    val_metrics: dict[str, float]
    facts: dict[str, Any]
    timings: dict[str, float]


@dataclass(frozen=True)
class _Prepared:
    """A spec resolved against its dataset and split: everything a run or a validation needs."""

    strategy_cls: type[Strategy]
    options: dict[str, Any]
    dataset: Dataset
    split: Split
    config: dict[str, Any]
    run_id: str
    label: str

    def view(self, part: str) -> SplitView:
        """The view of ``part`` that the strategy and the evaluation get (:meth:`SplitView.of`: a val view of a
        scene hides its test pixels); a transductive run's val view shows whole images, like its pretraining."""
        view = SplitView.of(self.dataset, self.split, part)
        return view.transductive() if part == "val" and self.options.get("transductive") else view


class _PhaseTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class Runner:
    """Runs specs against one results folder and database.

    Args:
        results_dir: run folders go to ``results_dir/runs/<run_id>/``.
        db: database URL or SQLite path (default ``results_dir/hsbench.db``).
        data_root: where real datasets are prepared (``--data-root`` / ``HSBENCH_DATA``).
        device: torch device for training.
        progress: show progress bars.
        force: re-run completed runs (those completed before this call: a run completed by the process it waited
            for is reported, not repeated).
        num_prediction_images: how many test predictions to save as PNG per run.
        wait: when another live process runs the same run, wait for it (else return at once as ``busy``).
        claim_timeout_s: a run claim without a heartbeat for this long is taken over (another host died).
        heartbeat_s: how often a running run refreshes its claim.
        save_model: keep each run's selected model in ``<run_dir>/model/`` (:mod:`hsbench.saved_model`); not part
            of the run id. Off (``--no-save-model``), or for a strategy that cannot save, the facts say
            ``model_saved: false``.
        tensorboard: write TensorBoard curves (per-epoch loss, val mIoU, learning rates; test confusion matrix)
            to ``<run_dir>/tensorboard/``; not part of the run id. Fails here when TensorBoard is not installed.
    """

    def __init__(
        self,
        results_dir: Path,
        *,
        db: str | None = None,
        data_root: Path | None = None,
        device: torch.device | None = None,
        progress: bool = True,
        force: bool = False,
        num_prediction_images: int = 3,
        wait: bool = True,
        claim_timeout_s: float = 600.0,
        heartbeat_s: float = 30.0,
        save_model: bool = True,
        tensorboard: bool = False,
    ) -> None:
        if tensorboard:
            require_tensorboard()  # before the database or any run folder is touched
        self.tensorboard = tensorboard
        self.results_dir = Path(results_dir)
        self.save_model = save_model
        self.wait, self.claim_timeout_s, self.heartbeat_s = wait, claim_timeout_s, heartbeat_s
        self._claims: CellClaims | None = None  # made on the first run, by the main process only
        self.store = ResultsStore(default_database(self.results_dir, db))
        self.data_root = data_root
        self.device = device or torch.device("cpu")
        self.progress = progress
        self.force = force
        self.num_prediction_images = num_prediction_images
        self._datasets: dict[str, Dataset] = {}
        # The last split made: consecutive runs of one (dataset, split, seed) cell, e.g. a benchmark's variants or
        # a sweep's trials, share it instead of re-reading every label image. One entry bounds the memory.
        self._last_split: tuple[tuple[str, str, int], Split] | None = None

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:  # NAME[:key=value,...]: dataset options (hsbench.data.dataset_spec)
            self._datasets[name] = open_dataset(name, self.data_root)
        return self._datasets[name]

    def _split(self, dataset: Dataset, spec: RunSpec) -> Split:
        key = (spec.dataset, spec.split, spec.seed)
        if self._last_split is None or self._last_split[0] != key:
            # One guard band for every strategy (the largest spatial context), so paired comparisons share a split.
            self._last_split = (key, make_split(dataset, spec.split, spec.seed, guard=default_guard()))
        return self._last_split[1]

    def _prepare(self, spec: RunSpec, timer: _PhaseTimer) -> _Prepared:
        """Resolve options, open the dataset and make the split; the run id hashes all of it."""
        # Typos fail before data is read; the dataset picks a recipe's per-dataset values.
        strategy_cls, options = resolve_strategy(spec.strategy, spec.options, spec.dataset)
        parse_split_spec(spec.split)
        with timer.phase("load"):
            dataset = self.dataset(spec.dataset)
        with timer.phase("split"):
            split = self._split(dataset, spec)
        config = {
            "dataset": spec.dataset,
            "dataset_fingerprint": dataset.fingerprint,
            "dataset_version": dataset.card.version,
            "protocol": PROTOCOL,
            "split": split.spec,
            "split_hash": split.hash,
            **({"split_params": split.params} if split.params else {}),  # the guard band used, for disjoint splits
            "strategy": spec.strategy,
            "options": options,
            "seed": spec.seed,
        }
        return _Prepared(strategy_cls, options, dataset, split, config, config_hash(config),
                         strategy_cls.label(options))

    def run(self, spec: RunSpec) -> RunOutcome:
        """Run one spec (or skip it when already completed). User errors raise :class:`HsbenchError`."""
        timer = _PhaseTimer()
        prepared = self._prepare(spec, timer)
        run_dir = self.results_dir / "runs" / prepared.run_id
        if not self.force and self._completed(prepared.run_id):
            return self._skipped(spec, prepared, run_dir)
        if not is_main_process():
            return self._execute(spec, prepared, run_dir, timer)
        with self._hold(spec, prepared) as held:
            if held.busy is not None:
                return RunOutcome(prepared.run_id, "busy", prepared.label, run_dir=run_dir, holder=str(held.busy))
            if (held.waited_for is not None or not self.force) and self._completed(prepared.run_id):
                return self._skipped(spec, prepared, run_dir)  # the holder we waited for completed it
            return self._start(spec, prepared, run_dir, timer)

    def _completed(self, run_id: str) -> bool:
        existing = self.store.get(run_id)
        return existing is not None and existing.status == "completed"

    def _skipped(self, spec: RunSpec, prepared: _Prepared, run_dir: Path) -> RunOutcome:
        log.info("run %s (%s, %s, seed %d) already completed: skipped", prepared.run_id, prepared.label,
                 prepared.split.spec, spec.seed)
        return RunOutcome(prepared.run_id, "skipped", prepared.label, self._stored_test_metrics(prepared.run_id),
                          run_dir=run_dir)

    def _hold(self, spec: RunSpec, prepared: _Prepared) -> AbstractContextManager[Hold]:
        """Claim the run as the cell ``<run id>`` of :data:`RUNS_SUITE`; its folder is ours while held."""
        from hsbench.suite import Cell  # hsbench.suite imports this module

        if self._claims is None:
            self._claims = CellClaims(self.store.engine)
        cell = Cell(RUNS_SUITE, 0, spec.dataset, spec.strategy, prepared.label, prepared.split.spec, spec.seed,
                    dict(spec.options), prepared.run_id)
        return hold(self._claims, cell, what=f"run {prepared.run_id} ({prepared.label}, {prepared.split.spec}, "
                    f"seed {spec.seed})", stale_after_s=self.claim_timeout_s, heartbeat_s=self.heartbeat_s,
                    wait=self.wait)

    def _start(self, spec: RunSpec, prepared: _Prepared, run_dir: Path, timer: _PhaseTimer) -> RunOutcome:
        """Start a held run: clear leftovers of an interrupted or failed attempt, mark it running, execute."""
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        commit, provenance = git_commit(), hardware_and_builds()
        self.store.begin(
            prepared.run_id,
            {
                **{key: value for key, value in prepared.config.items() if key not in _NOT_COLUMNS},
                "strategy_label": prepared.label,
                "config": prepared.config,
                "hsbench_version": hsbench.__version__,
                "git_commit": commit,
                "device": str(self.device),
                "provenance": provenance,
                "run_dir": str(run_dir.resolve()),
            },
        )
        return self._execute(spec, prepared, run_dir, timer, commit=commit, provenance=provenance)

    def validate(
        self, spec: RunSpec, *, run_dir: Path, epoch_callback: Callable[[int, float], None] | None = None
    ) -> ValidationOutcome:
        """Fit on train and score on val only: the objective of a sweep trial.

        No test view is built and nothing is written to the results database, so tuning never sees test labels
        and sweep trials never appear among ordinary runs. No model is saved either (a trial is no run; the
        ``--refit-best`` runs are, and keep theirs). Exceptions, including an Optuna prune raised by
        ``epoch_callback``, propagate to the caller.

        Args:
            spec: what to fit.
            run_dir: folder for the trial's log and work files.
            epoch_callback: passed to the strategy as ``RunContext.epoch_callback``.
        """
        timer = _PhaseTimer()
        prepared = self._prepare(spec, timer)
        run_dir.mkdir(parents=True, exist_ok=True)
        run_log = logging.getLogger(f"hsbench.run.{prepared.run_id}")
        handler = self._attach_log_file(run_log, run_dir)
        try:
            strategy, facts = self._fit(spec, prepared, run_dir / "work", run_log, timer, epoch_callback)
            results = self._evaluate(strategy, prepared, run_dir, timer, parts=("val",))
            return ValidationOutcome(prepared.run_id, prepared.label, results["val"]["metrics"], facts, timer.seconds)
        except Exception as exc:  # a prune or a crash: the caller decides; the trial's log keeps the why
            run_log.info("validation of %s stopped: %s: %s", prepared.run_id, type(exc).__name__, exc, exc_info=True)
            raise
        finally:
            run_log.removeHandler(handler)
            handler.close()

    def _fit(
        self,
        spec: RunSpec,
        prepared: _Prepared,
        work_dir: Path,
        run_log: logging.Logger,
        timer: _PhaseTimer,
        epoch_callback: Callable[[int, float], None] | None = None,
        epoch_observer: Callable[[EpochRecord], None] | None = None,
    ) -> tuple[Strategy, dict[str, Any]]:
        """Build the strategy and let it learn from the train and val views (the test part is never shown)."""
        dataset, split = prepared.dataset, prepared.split
        for warning in split.coverage_warnings(dataset.card.class_names):
            run_log.warning(warning)
        context, guard = prepared.strategy_cls.spatial_context(prepared.options), split.params.get("guard")
        if guard is not None and context > guard:
            run_log.warning("%s uses %d px of spatial context, more than the split's %d px guard band: its training "
                            "crops may reach test pixels (write guard=%d in the split)", prepared.label, context,
                            guard, context)
        ctx = RunContext(
            device=self.device,
            seeds=SeedStreams(spec.seed),
            work_dir=work_dir,
            logger=run_log,
            progress=self.progress,
            epoch_callback=epoch_callback,
            epoch_observer=epoch_observer,
            zoo=Zoo(),
            data_root=self.data_root,
        )
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(ctx.seeds.int_seed("init"))
        strategy = prepared.strategy_cls(prepared.options, ctx, dataset.card)
        train, val = prepared.view("train"), prepared.view("val")  # pixels pretrain may read; val hides test
        run_log.info("run %s: %s on %s, split %s, seed %d", prepared.run_id, prepared.label, dataset.card.name,
                     split.spec, spec.seed)
        if prepared.strategy_cls.spec.needs_unlabeled:
            with timer.phase("pretrain"):
                strategy.pretrain([train])
        with timer.phase("fit"):
            facts = dict(strategy.fit(train, val) or {})
        return strategy, facts

    def _execute(
        self, spec: RunSpec, prepared: _Prepared, run_dir: Path, timer: _PhaseTimer, *, commit: str | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """Fit, evaluate and record; ``commit`` and ``provenance`` (the main process's, as stored in the database)
        go into ``config.json`` and ``provenance.json``."""
        main = is_main_process()
        run_id, label, dataset, split = prepared.run_id, prepared.label, prepared.dataset, prepared.split
        run_log = logging.getLogger(f"hsbench.run.{run_id}")
        handler = self._attach_log_file(run_log, run_dir) if main else None
        # Under DDP only rank 0 touches the run folder (it may be deleting and re-creating it at this moment);
        # the other ranks get a private work folder.
        work_dir = run_dir / "work" if main else Path(tempfile.mkdtemp(prefix=f"hsbench-rank{rank()}-"))
        board: RunBoard | None = None  # --tensorboard: the main process's event files
        try:
            if main:
                (run_dir / "config.json").write_text(
                    json.dumps({**prepared.config, "hsbench_version": hsbench.__version__,
                                "git_commit": commit}, indent=2)
                )
                (run_dir / "provenance.json").write_text(json.dumps(provenance or hardware_and_builds(), indent=2))
                split.save(run_dir / "split")
            if main and self.tensorboard:
                board = RunBoard(run_dir / "tensorboard")
            strategy, facts = self._fit(spec, prepared, work_dir, run_log, timer,
                                        epoch_observer=board.epoch if board is not None else None)
            if not main:
                return RunOutcome(run_id, "completed", label)
            facts.update(self._save_model(strategy, prepared, run_dir, spec.seed, run_log))
            results = self._evaluate(strategy, prepared, run_dir, timer)
            if board is not None:
                board.confusion(results["test"]["confusion"], dataset.card.class_names)
            facts.update(
                split_coverage=split.coverage,
                **split.protocol(),  # labelled train / val pixels and images, val protocol, excluded classes
                threads=torch.get_num_threads(),
            )
            self._write_results(run_dir, results, timer.seconds, facts)
            self.store.complete(
                run_id,
                metrics={part: r["metrics"] for part, r in results.items()},
                per_class={part: r["per_class"] for part, r in results.items()},
                confusions={part: r["confusion"] for part, r in results.items()},
                timings=timer.seconds,
                facts=facts,
                evidence={"test": results["test"]["units"]},
            )
            run_log.info("run %s completed: test mIoU %.4f", run_id, results["test"]["metrics"]["miou"])
            log.info(
                "%s on %s (%s, seed %d): test mIoU %.2f%%, fit %.0f s -> %s",
                label, dataset.card.name, split.spec, spec.seed,
                100 * results["test"]["metrics"]["miou"], timer.seconds.get("fit", 0.0), run_dir,
            )
            return RunOutcome(run_id, "completed", label, results["test"]["metrics"], run_dir=run_dir)
        except BaseException as exc:
            fault = describe(located(exc, run_dir)) if main else None
            if main:
                self._record_failure(run_id, run_log, handler, timer.seconds, fault)
            if fault is not None or isinstance(exc, HsbenchError) or not isinstance(exc, Exception):
                raise  # an environment fault stops the command: the next run would hit it too
            return RunOutcome(run_id, "failed", label, error=f"{type(exc).__name__}: {exc}", run_dir=run_dir)
        finally:
            if board is not None:
                board.close()
            if handler is not None:
                run_log.removeHandler(handler)
                handler.close()
            if not main:
                shutil.rmtree(work_dir, ignore_errors=True)

    def _save_model(
        self, strategy: Strategy, prepared: _Prepared, run_dir: Path, seed: int, run_log: logging.Logger
    ) -> dict[str, Any]:
        """Write the fitted model to ``<run_dir>/model/`` when enabled and the strategy can; facts for the run."""
        if not self.save_model:
            return {"model_saved": False}
        if not strategy.saves_model():
            run_log.warning("%s cannot save its model (no model_state / restore): the run keeps no model",
                            prepared.label)
            return {"model_saved": False}
        from hsbench.saved_model import save_model

        start = time.perf_counter()
        facts = save_model(run_dir, strategy.model_state(), strategy=prepared.config["strategy"],
                           label=prepared.label, options=prepared.options, card=prepared.dataset.card, seed=seed,
                           run_id=prepared.run_id)
        return {"model_saved": True, **facts, "model_save_s": time.perf_counter() - start}

    def _record_failure(
        self, run_id: str, run_log: logging.Logger, handler: logging.Handler | None, seconds: dict[str, float],
        fault: str | None,
    ) -> None:
        """Mark the run failed in the database first, then log the traceback where it can still be written.

        The fault may be the run folder itself (full disk, read-only), so the row comes first and the log file is
        best effort; a row left ``running`` would look like a live run. A database that refuses even this leaves the
        row to be reset by the next attempt, and the original exception is what the user sees. An environment
        fault's traceback goes to ``log.txt`` only (the console gets one line); a crash's to both.
        """
        text = traceback.format_exc()
        try:
            self.store.fail(run_id, fault or text, seconds)
        except Exception as db_exc:  # noqa: BLE001 (the original exception matters more)
            log.debug("run %s could not be marked failed: %s", run_id, db_exc)
        if fault is None:
            run_log.error("run %s failed:\n%s", run_id, text)
        elif handler is not None:
            handler.handle(run_log.makeRecord(run_log.name, logging.ERROR, __file__, 0, "run %s failed: %s\n%s",
                                              (run_id, fault, text), None))

    def _evaluate(
        self,
        strategy: Strategy,
        prepared: _Prepared,
        run_dir: Path,
        timer: _PhaseTimer,
        parts: tuple[str, ...] = ("val", "test"),
    ) -> dict[str, dict[str, Any]]:
        dataset, split = prepared.dataset, prepared.split
        results: dict[str, dict[str, Any]] = {}
        saved: list[str] = []

        def keep_panel(sample, prediction) -> None:
            if len(saved) < self.num_prediction_images:
                save_prediction_panel(run_dir / "predictions" / f"{path_component(sample.id)}.png", sample, prediction,
                                      dataset.card)
                saved.append(sample.id)

        for part in parts:
            view = prepared.view(part)  # val as the strategy selected on it; test whole
            with timer.phase(f"predict_{part}"):
                units = evaluate_view(strategy.predict, view, on_prediction=keep_panel if part == "test" else None)
            cm = units.total()
            results[part] = {"confusion": cm, "metrics": compute_metrics(cm, split.evaluated_classes),
                             "per_class": per_class_metrics(cm, split.evaluated_classes),
                             "units": units}
        return results

    @staticmethod
    def _write_results(
        run_dir: Path, results: dict[str, dict[str, Any]], timings: dict[str, float], facts: dict[str, Any]
    ) -> None:
        metrics = {
            part: {**r["metrics"], **{f"{k}_per_class": v.tolist() for k, v in r["per_class"].items()}}
            for part, r in results.items()
        }
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        np.savez_compressed(run_dir / "confusion.npz", **{part: r["confusion"] for part, r in results.items()})
        (run_dir / "timings.json").write_text(json.dumps(timings, indent=2))
        (run_dir / "facts.json").write_text(json.dumps(facts, indent=2, default=str))

    def _stored_test_metrics(self, run_id: str) -> dict[str, float]:
        table = self.store.scalar_metrics([run_id])
        return {} if table.empty else {k: float(v) for k, v in table.loc[run_id].items()}


    @staticmethod
    def _attach_log_file(logger: logging.Logger, run_dir: Path) -> logging.Handler:
        handler = BestEffortFileHandler(run_dir / "log.txt")  # a full disk must not fail the failure path
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler
