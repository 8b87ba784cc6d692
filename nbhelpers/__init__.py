"""nbhelpers: the tested code behind the executable book on convolutional networks.

Submodules (import what you need; importing ``nbhelpers`` itself stays cheap):
``device`` (device, seed, run profile), ``conv`` (convolution and pooling from scratch),
``data`` (data sources), ``plotting`` (figures; the only module importing matplotlib).
"""

__version__ = "0.1.0"
