#!/usr/bin/env bash
# CamVid road scenes (11 classes, SegNet layout, 11 = unlabelled) with LRASPP-MobileNetV3 from scratch
# on CPU: 96x128 crops, a 4-minute wall-clock budget, class-weighted cross-entropy; then the per-class
# IoU at full resolution and masks with overlays for a few validation images.
# Run from the repository root; the data lives beside the repo (../shared/data/CamVid) or in $CAMVID.
set -euo pipefail
CAMVID="${CAMVID:-../shared/data/CamVid}"
RUNS="${RUNS:-runs}"

mltk segment train --data "$CAMVID" --size 96x128 --time-budget 4 --runs-dir "$RUNS" --name camvid-lraspp
mltk segment evaluate segment/camvid-lraspp --runs-dir "$RUNS" --format table
ls "$CAMVID"/val/*.jpg | head -n 4 | \
    mltk segment predict segment/camvid-lraspp - --runs-dir "$RUNS" --output camvid-masks --overlay
