"""Section 'Suite and environment': what was run, with which models, settings and software."""

from __future__ import annotations

import tomllib

from ..document import Code, Section, Table
from ._common import ReportContext, ReportSection, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data = context.data
    meta = data.meta
    try:
        description = tomllib.loads(meta.get("suite") or "").get("description", "")
    except tomllib.TOMLDecodeError:
        description = ""
    models = meta.get("models") or {}
    rows = [
        ["suite", meta.get("suite_name", "(unknown)")],
        ["description", description or "—"],
        ["datasets", ", ".join(data.dataset_names.get(s, s) for s in data.dataset_order()) or "—"],
        ["seeds", ", ".join(map(str, meta.get("seeds") or [])) or "—"],
        ["models", "; ".join(f"{name} ({spec.get('role', 'other')})"
                             for name, spec in models.items()) or "—"],
        ["compared pairs", ", ".join(f"{a} vs {b}" for a, b in meta.get("compare") or []) or "—"],
        ["analyses", ", ".join(meta.get("analyses") or []) or "none"],
    ]
    if meta.get("used_fallback_datasets"):
        rows.append(["datasets note", "OpenML was out of reach: the suite's offline fallback "
                                      "datasets were used"])
    section = Section(SECTION.title, [Table("Suite", ["setting", "value"], rows)])
    if models:
        section.blocks.append(Table(
            "Models and their parameters", ["model", "role", "preprocessing", "parameters"],
            [[name, spec.get("role", ""), spec.get("preprocessing", ""),
              ", ".join(f"{k}={v}" for k, v in (spec.get("params") or {}).items()) or "defaults"]
             for name, spec in models.items()],
        ))
    environment = meta.get("environment") or {}
    if environment:
        section.blocks.append(Table("Environment", ["item", "version or value"],
                                    [[key, str(value)] for key, value in environment.items()]))
    else:
        section.blocks.append(no_data("the run recorded no environment."))
    if meta.get("suite"):
        section.blocks.append(Code("Suite file (TOML)", str(meta["suite"]), "toml"))
    return section


SECTION = ReportSection("suite", "Suite and environment", _build)
