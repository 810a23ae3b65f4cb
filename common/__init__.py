"""Shared code for every project and notebook in the research monorepo.

Import from the subpackages (``from common.data import download_dataset``). Importing ``common``
itself is light: it pulls in no torch, transformers, datasets or pandas.
"""

__version__ = "0.1.0"
