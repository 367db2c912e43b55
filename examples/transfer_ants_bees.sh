#!/usr/bin/env bash
# The PyTorch transfer-learning tutorial with mltk: ants vs bees (hymenoptera), resnet18.
# Usage: examples/transfer_ants_bees.sh [DATA] [WEIGHTS]
#   DATA     default ../shared/data/hymenoptera_data (relative to the repo root)
#   WEIGHTS  DEFAULT (download ImageNet weights), a local resnet18-f37072fd.pth, or none (no download,
#            from scratch: expect ~0.6-0.7 accuracy instead of the tutorial's ~0.94)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/hymenoptera_data}"
WEIGHTS="${2:-DEFAULT}"
RUNS="${RUNS:-runs}"

# 1. fine-tune every layer: the tutorial's recipe (SGD 0.001, momentum 0.9, StepLR 7 / 0.1)
mltk transfer finetune --data "$DATA" --weights "$WEIGHTS" --model resnet18 --epochs 25 --batch-size 4 \
    --runs-dir "$RUNS" --name ants-bees-finetune

# 2. fixed feature extractor: frozen backbone, features cached in epoch 1, only the new head trains
mltk transfer finetune --data "$DATA" --weights "$WEIGHTS" --model resnet18 --mode feature-extract \
    --epochs 25 --batch-size 4 --runs-dir "$RUNS" --name ants-bees-features

# 3. evaluate both on the validation set, list the mistakes of the first
mltk transfer evaluate ants-bees-finetune --runs-dir "$RUNS" --errors
mltk transfer evaluate ants-bees-features --runs-dir "$RUNS"

# 4. predict the validation bees, paths from stdin, top-2 as JSON lines
find "$DATA/val/bees" -name '*.jpg' | head -n 5 | mltk transfer predict ants-bees-finetune - --top-k 2 --runs-dir "$RUNS"
