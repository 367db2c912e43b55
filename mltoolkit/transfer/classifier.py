"""A trained classifier loaded back from a run directory or a checkpoint file, for evaluate and predict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.checkpoint import load_checkpoint, restore_model, run_checkpoint
from mltoolkit.core.errors import DataError
from mltoolkit.techniques import TRANSFER
from mltoolkit.transfer.data import Preprocessing

if TYPE_CHECKING:
    import torch


@dataclass
class Classifier:
    model: torch.nn.Module
    classes: list[str]
    pre: Preprocessing
    checkpoint: Path
    run_dir: Path | None
    config: dict[str, Any]
    device: torch.device

    @property
    def transform(self) -> Any:
        """Image -> the model's input: resized, centre-cropped, scaled and normalised (float CHW)."""
        from mltoolkit.transfer.data import eval_transform

        return eval_transform(self.pre)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (float32, on the CPU) of a stacked batch of ``transform``'s outputs (fp16 autocast on CUDA)."""
        import torch

        from mltoolkit.core.training import autocast

        with torch.inference_mode(), autocast(self.device, self.device.type == "cuda"):
            return self.model(images.to(self.device)).float().cpu()


def load_classifier(ref: str, runs_dir: str | Path, device: str = "auto") -> Classifier:
    """``ref``: a run (its ``best.pt``) or a checkpoint file; the model is rebuilt without downloading."""
    from mltoolkit.core.device import resolve_device
    from mltoolkit.transfer.model import build_model

    checkpoint, run_dir = run_checkpoint(ref, runs_dir, TRANSFER.name)
    payload = load_checkpoint(checkpoint, TRANSFER.name)
    state = payload["state"]
    if "model" not in state or "classes" not in state:
        raise DataError(f"{checkpoint}: holds training state only; use the run's checkpoints/best.pt")
    torch_device = resolve_device(device)
    model = build_model(state["model_name"], len(state["classes"]))
    restore_model(model, state["model"], checkpoint, torch_device, state["model_name"])
    pre = Preprocessing(**state["preprocessing"])
    return Classifier(model, list(state["classes"]), pre, checkpoint, run_dir, payload.get("config", {}), torch_device)
