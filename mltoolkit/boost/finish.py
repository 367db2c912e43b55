"""Writing a finished boost run: the model, its schema, the importance plot and the summary.

One place for both ways of training (one process, ``--dask``), so a run looks the same whichever wrote it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltoolkit.boost.booster import MODEL_FILE, SCHEMA_FILE, save_model
from mltoolkit.boost.metrics import HEADLINE
from mltoolkit.boost.report import write_importance
from mltoolkit.boost.schema import Schema
from mltoolkit.core.contract import TrainResult
from mltoolkit.core.io import write_json
from mltoolkit.core.runs import Run, run_name

CHECKPOINT = "interrupted.txt"
RESUME_STATE = "resume.json"


def finish_run(
    run: Run, booster: Any, schema: Schema, params: dict[str, Any], best_round: int, valid: dict[str, float],
    wall_time_s: float, extra: dict[str, Any],
) -> TrainResult:  # fmt: skip
    """Write model.txt, schema.json, importance and the summary; keep what ``--resume`` needs to add rounds.

    Nothing of it is written before training has succeeded, so a failed run holds no half model (``--dask``
    calls it too, once the cluster has trained).
    """
    save_model(booster, run.path / MODEL_FILE, best_round, schema.to_dict())
    (run.checkpoints / CHECKPOINT).unlink(missing_ok=True)
    write_json(run.checkpoints / RESUME_STATE,
               {"phase": "more", "rounds_done": best_round, "rounds_total": best_round, "params": params})  # fmt: skip
    write_json(run.path / SCHEMA_FILE, schema.to_dict())
    importance = write_importance(booster, schema, run)
    metric = HEADLINE[schema.task]
    headline = next((v for k, v in valid.items() if k.startswith(_lgb_name(metric))), None)
    return run.finish(
        "completed",
        {"metric": f"valid_{metric}", "value": headline},
        best={"round": best_round, **{f"valid_{k}": v for k, v in valid.items()}},
        final={"rounds": booster.current_iteration()},
        wall_time_s=wall_time_s,
        best_checkpoint=MODEL_FILE,
        top_features=importance[:5],
        **extra,
        best_round=best_round,
        valid=valid,
    )


def _lgb_name(metric: str) -> str:
    return {"log_loss": "binary_logloss"}.get(metric, metric)


def default_name(source: str | None) -> str:
    return "stdin" if source in (None, "-") else run_name(Path(source).name.split(".")[0])
