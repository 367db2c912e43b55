"""Gradient boosting on tables with LightGBM: classification, regression, ranking."""
