"""lait: web crawls to a clean image-text corpus (the ImageBERT LAIT recipe), and an ImageBERT trainer.

The subpackages are layers; each imports only the ones below it:

- :mod:`lait.filters` and :mod:`lait.scoring`: pure, Beam-free rules and models;
- :mod:`lait.imagebert`: the ImageBERT model, its data, pre-training and evaluation;
- :mod:`lait.pipeline`: the Beam stages, I/O and the ``lait`` command line.
"""

from lait.extensions import run_current_sources

run_current_sources()  # before any module compiled from its .py is imported
