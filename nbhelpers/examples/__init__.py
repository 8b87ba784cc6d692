"""Command-line programs that run the book's recipes outside a notebook.

``python -m nbhelpers.examples.mnist --help``: chapter 04's network on MNIST, alone or under
``torchrun --nproc_per_node=N`` for data-parallel training.
"""
