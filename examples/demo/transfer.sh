#!/usr/bin/env bash
# `make demo` step for `mltk transfer`: a synthetic folder of drawn shapes, a short fine-tune from
# random weights (pretrained ones cannot be downloaded everywhere), evaluate, predict from stdin.
set -euo pipefail
DEMO_DIR="${DEMO_DIR:-.demo}"
RUNS="${RUNS:-$DEMO_DIR/runs}"
data="$DEMO_DIR/shapes"

echo "# a synthetic image folder: train/ and val/ of circle, square, triangle (64x64 PNG)" >&2
python -m mltoolkit.transfer.synthetic "$data" --train 1800 --val 90 >/dev/null
ls "$data/train" >&2

echo "# fine-tune resnet18 from random weights at 40 px for 4 epochs (prints one JSON line): 0.94-0.99" >&2
echo "# validation accuracy from scratch across seeds and threads (pretrained weights: sooner)." >&2
mltk transfer finetune --data "$data" --weights none --model resnet18 --image-size 40 --epochs 4 \
    --optimizer adamw --lr 0.002 --schedule onecycle --augment none --workers 0 \
    --runs-dir "$RUNS" --name shapes

echo "# evaluate the best checkpoint on the validation split" >&2
mltk transfer evaluate shapes --runs-dir "$RUNS" --format table --workers 0

echo "# predict: image paths on stdin, CSV path,label,probability on stdout" >&2
find "$data/val" -name '*.png' | sort | head -n 5 | mltk transfer predict shapes - --runs-dir "$RUNS"
