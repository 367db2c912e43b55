"""The parity check every export ends with: the written file against the model it came from.

Two figures per input sample: the largest absolute difference of the outputs (also relative to the
output scale, ``max(1, max |reference|)``), and the share of equal argmax (class, action, pixel
label). An argmax that differs where the reference's two best scores are closer than the tolerance
is a tie, counted in the share but not a failure: a rounding in the last bit may break it either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mltoolkit.core.errors import DataError

TOLERANCE = 1e-4  # fp32: relative to the output scale


class ParityError(DataError):
    """The written file disagrees with its source model (exit 3); ``checks`` holds the figures."""

    def __init__(self, message: str, checks: dict[str, dict[str, Any]]) -> None:
        super().__init__(message)
        self.checks = checks


def compare(reference: np.ndarray, exported: np.ndarray, class_axis: int | None = 1) -> dict[str, Any]:
    """Differences of two output arrays of the same shape; ``class_axis`` None for outputs without classes."""
    reference, exported = np.asarray(reference, np.float64), np.asarray(exported, np.float64)
    if reference.shape != exported.shape:
        raise DataError(f"the exported model returns shape {exported.shape}, the source model {reference.shape}")
    diff = float(np.abs(reference - exported).max(initial=0.0))
    scale = max(1.0, float(np.abs(reference).max(initial=0.0)))
    result: dict[str, Any] = {"samples": int(reference.shape[0]), "max_abs_diff": diff, "relative_diff": diff / scale}
    if class_axis is not None and reference.shape[class_axis] > 1:
        equal = reference.argmax(class_axis) == exported.argmax(class_axis)
        top2 = np.sort(reference, axis=class_axis)
        margin = np.take(top2, -1, axis=class_axis) - np.take(top2, -2, axis=class_axis)
        result["argmax_equal"] = float(equal.mean())
        result["argmax_flips"] = int((~equal & (margin > TOLERANCE * scale)).sum())
    return result


def compare_labels(reference_scores: np.ndarray, exported_labels: np.ndarray) -> dict[str, Any]:
    """A labels graph (segment ``--labels``) against the argmax of the source model's scores."""
    labels = reference_scores.argmax(1)
    if labels.shape != exported_labels.shape:
        raise DataError(f"the exported model returns shape {exported_labels.shape}, the source model {labels.shape}")
    equal = labels == exported_labels
    top2 = np.sort(reference_scores, axis=1)
    margin = top2[:, -1] - top2[:, -2]
    scale = max(1.0, float(np.abs(reference_scores).max(initial=0.0)))
    return {
        "samples": int(labels.shape[0]),
        "argmax_equal": float(equal.mean()),
        "argmax_flips": int((~equal & (margin > TOLERANCE * scale)).sum()),
    }


def failure(checks: dict[str, dict[str, Any]], half: bool) -> str | None:
    """Why the export fails parity (None when it passes): any decisive argmax flip, or fp32 outputs apart
    by more than the tolerance. ``--half`` reports fp16's error without failing on it."""
    if half:
        return None
    for name, check in checks.items():
        if check.get("argmax_flips"):
            return f"{check['argmax_flips']} argmax differ on the {name} sample ({check['argmax_equal']:.4%} equal)"
        if check.get("relative_diff", 0.0) > TOLERANCE:
            return (
                f"outputs differ by up to {check['max_abs_diff']:.3g} on the {name} sample "
                f"(relative {check['relative_diff']:.3g} > {TOLERANCE:g})"
            )
    return None


def check(checks: dict[str, dict[str, Any]], half: bool, what: str) -> None:
    """Raise exit 3 when ``failure`` finds one, naming ``what`` was exported."""
    reason = failure(checks, half)
    if reason is not None:
        raise ParityError(f"parity check failed for {what}: {reason}; the file was not written", checks)
