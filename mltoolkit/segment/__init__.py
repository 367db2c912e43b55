"""Semantic segmentation with fully convolutional networks."""
