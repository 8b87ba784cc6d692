"""The sizes every histopathology patch has: the Kaggle folder's, PCam's and the synthetic set's."""

# Pixels per side of an RGB patch; the label describes its centre 32 x 32 square.
PATCH_SIZE = 96
# Pixels per side of the centre crop the chapters' classifier sees: the labelled square plus
# a ring of context.
CROP = 49
