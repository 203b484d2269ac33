"""Tuning studies: the hyperparameter search a cell runs before it is scored.

A suite's ``[tuning]`` table (:class:`TuningSettings`) gives each cell ``n_trials`` trials.
Trial 0 is the model's configuration as the suite writes it (the "default"); trials 1, 2, ...
draw from the model's search space (:mod:`tabscope.models.search_spaces`) with Optuna's
sampler. Each trial is fitted with early stopping on the split's validation part and scored
there; the configuration with the best validation score is selected (ties: the earliest
trial), and only it is scored for the cell's results and analysed by the lens.

Determinism and resume. Trials run in order inside the cell. Each proposal comes from a
fresh sampler seeded from ``(cell seed, trial number)`` over the earlier trials, so a
study's trials are a function of the seed alone: the same with 1 or N workers, on Dask, and
after an interruption. Each finished trial is appended to a per-cell journal (JSON lines,
flushed and synced) under the results directory; a rerun replays the journal instead of
repeating those trials. The driver copies the trials into the ``trials`` table with the
cell's row, in one transaction, and then removes the journal. Workers that cannot reach the
results directory (Dask workers on other machines without a shared file system) run the same
trials without a journal: results are unchanged, only resuming mid-study is lost.

Pruning. Networks report their validation score every ``validation_interval`` steps; Optuna's
median pruner stops a trial whose score is worse than the median of earlier trials at the
same step (``pruning = false`` turns it off). It waits for :data:`PRUNING_STARTUP_TRIALS`
finished trials and judges no trial before :data:`PRUNING_WARMUP_STEPS`: a small learning
rate starts slowly, and pruning it at its first report (step 20) discarded most of a
study's proposals on the medium suite before they had trained at all.

The test score of every trial is kept in the ``trials`` table for the report's
score-against-trials curves (as Grinsztajn et al. 2022 draw them); selection never reads it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from tabscope.validation import Interval, one_of
from tabscope.vocabulary import Sampler, TrialStatus

__all__ = ["TUNING_CONSTRAINTS", "Trial", "TuningSettings", "journal_path", "read_journal",
           "run_study"]

logger = logging.getLogger(__name__)

#: Folder of the per-cell trial journals, under the results directory.
JOURNAL_DIR = "journals"

#: Finished trials the median pruner needs before it prunes (Optuna's default).
PRUNING_STARTUP_TRIALS = 5
#: Steps before a trial can be pruned: the networks' default early-stopping window
#: (``n_iter_no_change`` 10 checks x ``validation_interval`` 20 steps), so no trial is cut
#: sooner than it could have stopped on its own.
PRUNING_WARMUP_STEPS = 200


@dataclass(frozen=True)
class TuningSettings:
    """A suite's ``[tuning]`` table; ``n_trials = 0`` (the default) means no tuning.

    ``timeout`` bounds the seconds a cell's study may take (no new trial starts after it);
    a study cut by time depends on the machine's speed, so it is reproducible only as far
    as the trials it ran.
    """

    n_trials: int = 0
    timeout: float | None = None
    sampler: str = Sampler.TPE.value
    pruning: bool = True


#: What each ``[tuning]`` setting accepts.
TUNING_CONSTRAINTS = {
    "n_trials": [Interval(Integral, 0, None, closed="left")],
    "timeout": [Interval(Real, 0, None, closed="neither"), None],
    "sampler": [one_of(Sampler)],
    "pruning": ["boolean"],
}


@dataclass
class Trial:
    """One finished trial of a study (a row of the ``trials`` table, less the cell)."""

    number: int
    params: dict
    status: str
    validation_score: float | None
    test_score: float | None
    steps: int | None
    seconds: float
    intermediate: dict
    error: str | None = None

    def as_json(self, config_hash: str) -> str:
        record = {k: v for k, v in vars(self).items()}
        record["intermediate"] = {str(k): v for k, v in self.intermediate.items()}
        return json.dumps(record | {"config_hash": config_hash}, sort_keys=True)


def journal_path(results_dir: str | os.PathLike, cell_key: str) -> Path:
    """The journal file of a cell (``cell_key``: the store's storage key of the cell)."""
    return Path(results_dir) / JOURNAL_DIR / f"{cell_key}.jsonl"


def read_journal(path: Path | None, config_hash: str) -> list[Trial]:
    """The trials 0..k-1 a journal holds for this configuration; a torn last line (the
    process killed mid-write) and trials of another configuration are ignored."""
    try:
        text = path.read_text(encoding="utf-8") if path is not None else ""
    except OSError:  # no journal yet, or not reachable from this worker
        return []
    trials: dict[int, Trial] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.pop("config_hash", None) != config_hash:
            continue
        record["intermediate"] = {int(k): v for k, v in record["intermediate"].items()}
        trials[record["number"]] = Trial(**record)
    out = []
    while len(out) in trials:
        out.append(trials[len(out)])
    return out


def _append(path: Path | None, trial: Trial, config_hash: str) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = False
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"  # a line cut by a kill: end it, keep ours whole
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if torn else "") + trial.as_json(config_hash) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number, 4242]).generate_state(1)[0])


def _sampler(kind: str, seed: int, number: int):
    import optuna

    trial_seed = _trial_seed(seed, number)
    if Sampler(kind) is Sampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=trial_seed)
    return optuna.samplers.TPESampler(seed=trial_seed)


def _add_finished(study, trial: Trial, distributions: dict, maximize: bool) -> None:
    """Put a finished sampled trial into the study the sampler reads (values stored so
    that higher is better, whatever the metric's direction)."""
    import optuna

    if trial.status == TrialStatus.FAILED:
        state, value = optuna.trial.TrialState.FAIL, None
    elif trial.status == TrialStatus.PRUNED:
        state, value = optuna.trial.TrialState.PRUNED, None
    else:
        state = optuna.trial.TrialState.COMPLETE
        value = trial.validation_score if maximize else -trial.validation_score
        if not math.isfinite(value):
            state, value = optuna.trial.TrialState.FAIL, None
    study.add_trial(optuna.trial.create_trial(
        params=trial.params, distributions=distributions, value=value, state=state,
        intermediate_values={int(k): float(v) for k, v in trial.intermediate.items()},
    ))


def run_study(settings: TuningSettings, space: dict, seed: int, objective, *,
              maximize: bool, journal: Path | None = None, config_hash: str = ""):
    """Run (or resume) a cell's study; return its trials and the selected trial number.

    Parameters
    ----------
    settings : TuningSettings
    space : dict
        The checked search space (:func:`~tabscope.models.search_spaces.check_search_space`).
    seed : int
        The cell's seed.
    objective : callable
        ``objective(params, report) -> (validation score, test score, steps)`` fits the
        configuration ``params`` (``{}`` for trial 0); ``report(step, score)``, for the
        networks' intermediate scores, raises ``optuna.TrialPruned`` to prune. Scores are
        the task's primary metric.
    maximize : bool
        Whether a higher validation score is better.
    journal : Path, optional
        Where finished trials are appended and read back from.
    config_hash : str
        The cell's configuration: journal lines of another configuration are ignored.

    Returns
    -------
    trials : list of Trial
    selected : int
        Number of the trial with the best validation score.
    """
    import optuna
    from tabscope.models.search_spaces import to_distributions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = to_distributions(space)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNING_STARTUP_TRIALS,
                                         n_warmup_steps=PRUNING_WARMUP_STEPS)
    trials = read_journal(journal, config_hash)[: settings.n_trials]
    if trials:
        logger.info("resuming a study at trial %d", len(trials))
    started = time.perf_counter()
    while len(trials) < settings.n_trials:
        if settings.timeout is not None and time.perf_counter() - started > settings.timeout:
            break
        number = len(trials)
        ask, study, params = None, None, {}
        if number > 0:
            if not distributions:
                break  # nothing to search: trial 0 is the only configuration
            # A fresh study over the finished trials and a sampler seeded from (seed,
            # number): the proposal is the same whether or not the study was resumed.
            study = optuna.create_study(direction="maximize", pruner=pruner,
                                        sampler=_sampler(settings.sampler, seed, number))
            for earlier in trials[1:]:
                _add_finished(study, earlier, distributions, maximize)
            ask = study.ask(fixed_distributions=distributions)
            params = dict(ask.params)
        trial = _run_trial(number, params, objective, ask, settings)
        try:
            _append(journal, trial, config_hash)
        except OSError as exc:  # e.g. a Dask worker without the driver's file system
            logger.warning("cannot journal tuning trials in %s (%s): this study will not "
                           "resume after an interruption", journal, exc)
            journal = None
        trials.append(trial)
    return trials, select(trials, maximize)


def _run_trial(number, params, objective, ask, settings) -> Trial:
    import optuna

    intermediate: dict[int, float] = {}

    def report(step: int, score: float) -> None:
        value = float(score)  # networks' validation scores: higher is better
        intermediate[int(step)] = value
        if ask is None or not settings.pruning:
            return
        ask.report(value, int(step))
        if ask.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    started = time.perf_counter()
    try:
        validation, test, steps = objective(params, report)
        status, error = TrialStatus.COMPLETE, None
        if validation is None or not math.isfinite(validation):
            status, error = TrialStatus.FAILED, f"validation score {validation}"
    except optuna.TrialPruned as exc:
        validation = test = None
        steps = max(intermediate) if intermediate else None  # the step it was stopped at
        status, error = TrialStatus.PRUNED, str(exc)
    except Exception as exc:  # a configuration that cannot be fitted is a failed trial
        logger.debug("trial %d failed", number, exc_info=True)
        validation = test = steps = None
        status, error = TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"
    return Trial(number=number, params=params, status=status.value,
                 validation_score=None if validation is None else float(validation),
                 test_score=None if test is None else float(test),
                 steps=None if steps is None else int(steps),
                 seconds=time.perf_counter() - started, intermediate=intermediate, error=error)


def select(trials: list[Trial], maximize: bool) -> int:
    """The number of the best complete trial by validation score (earliest on ties)."""
    best, best_value = None, None
    for trial in trials:
        if trial.status != TrialStatus.COMPLETE:
            continue
        value = trial.validation_score if maximize else -trial.validation_score
        if best_value is None or value > best_value:
            best, best_value = trial.number, value
    if best is None:
        errors = "; ".join(f"trial {t.number}: {t.error}" for t in trials[:3])
        raise RuntimeError(f"no tuning trial finished: {errors}")
    return best
