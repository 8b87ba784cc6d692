"""Training recipes: the top layer of nbhelpers, where data, models and the Trainer meet.

A recipe is what one chapter trains, written once so that the chapter, the example scripts in
``nbhelpers.examples`` and the benchmarks run the same code. One module per chapter (``mnist``,
``names``, ``histopathology``); import the one you need (this package imports none of them itself).
"""
