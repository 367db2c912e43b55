#!/usr/bin/env bash
# `make demo` step for mltk segment: drawn shapes (3 classes + background, 64x64), a short LRASPP
# training run (10 epochs, under a minute on 2 cores), its per-class IoU on the validation split,
# and masks + overlays for three images.
set -euo pipefail
DEMO_DIR="${DEMO_DIR:-.demo}"
RUNS="${RUNS:-$DEMO_DIR/runs}"
DATA="$DEMO_DIR/shapes"

python -m mltoolkit.segment.synthetic "$DATA" --train 96 --val 24 >/dev/null
echo "data: $DATA/{train,val}/{images,masks} + classes.json (background, circle, square, triangle)" >&2

mltk segment train "$DATA" --size 112x112 --loss ce+dice --epochs 10 \
    --runs-dir "$RUNS" --name shapes
mltk segment evaluate segment/shapes --runs-dir "$RUNS" --format table
mltk segment predict segment/shapes "$DATA"/val/images/val_000{0,1,2}.png --runs-dir "$RUNS" \
    --output "$DEMO_DIR/segment-masks" --overlay --quiet
echo "masks and overlays: $DEMO_DIR/segment-masks/; curves and examples: $RUNS/segment/shapes/plots/" >&2
