"""Training recipes: the top layer, combining data, models and the training engine for the chapters."""
