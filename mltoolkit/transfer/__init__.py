"""Transfer learning on an image folder: fine-tune or feature-extract a pretrained network."""
