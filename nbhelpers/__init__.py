"""nbhelpers: the tested code behind the executable book on convolutional networks.

Submodules, bottom to top (import what you need; importing ``nbhelpers`` itself stays cheap):
``device`` (device, seed, run profile and its sizes), ``conv`` (convolution and pooling from
scratch), ``data`` (data sources and input pipelines), ``models`` (the chapters' networks and
pretrained weights), ``train`` (the training engine), ``interpret`` (guided backpropagation),
``recipes`` (what each chapter trains, shared by chapters, examples and benchmarks),
``examples`` (command-line programs) and ``plotting`` (figures; the only module importing matplotlib).
"""

__version__ = "0.1.0"
