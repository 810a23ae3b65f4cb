"""Hugging Face Hub downloads: data sets, models and raw repo files in ``assets/``, fetched once
and used from every project.

Design
======

Layout (``names``). ``get_datasets_dir()`` is ``assets/datasets``, ``get_models_dir()`` is
``assets/models``::

    assets/datasets/<name>/                 ensure_dataset(name, config, split): saved with
                                            save_to_disk (a DatasetDict, or a Dataset with split)
    assets/models/<org>/<model>/            ensure_model("org/model"): the files a model needs
    assets/repos/{datasets,spaces}/<org>/<name>/   ensure_model(..., repo_type=...): raw files

``<name>`` is the name as passed: an alias from :data:`DATASET_ALIASES` (``wmt14``) or a repo id,
which becomes nested folders (``roneneldan/TinyStories``). Config and split do not change the
folder: ``load_from_disk(get_datasets_dir() / "wmt14")`` loads what ``download_dataset("wmt14",
"de-en", "train")`` saved. A second config or split of the same data set goes to another folder
(``output_dir``); asking for it in the occupied folder is refused.

One call per operation (``datasets``, ``models``, ``links``, ``integrity``). ``ensure_dataset``
and ``ensure_model`` are the downloads: they return an :class:`AssetDownload` (what was done, for
summaries). ``download_dataset`` (the data, loaded) and ``download_model`` (the path) are the
seed's names for the same two calls. ``link_dataset`` links a project's ``data`` to a data set;
``verify_download`` checks a folder against its manifest and the Hub's checksums.

Manifests (``manifest``). Every finished asset folder holds ``.download.json``: repo type and id,
requested revision, resolved commit, config, split or file selection, each file's size and
SHA-256, time. A request is compared with it: the same asset is returned without network
access; another repo, revision, config or split is refused (:class:`AssetConflictError`) unless
``force``, which replaces it. A folder without a manifest, or one holding files the manifest does
not list, is never replaced or emptied, ``force`` or not.

Damage (``integrity``). A repeat request checks every file the manifest lists (a regular file
inside the folder, of the recorded size) and fetches again what does not match, saying so;
``verify_download`` also compares each file's SHA-256 with the manifest's (recorded at download
time) or the Hub's (LFS files carry one).

Staging (``staging``). Downloads go to a hidden ``.<folder>.partial-<pid>@<host>-<id>`` folder
next to the target and are moved into place only when complete (``common.utils.atomic``), so an
interrupted or failed download never leaves a folder that looks finished. Partial folders of dead
processes of this host are removed by the next download; other hosts' are never touched.

Model files (``selection``). Without ``filename``/``include``, a model download fetches what
``transformers`` and PyTorch load (:func:`select_model_files`): configs, tokenizer and generation
files, and the weights in one format (safetensors when there are any, else PyTorch
``.bin``/``.pt``); ``all_files`` fetches everything.

Errors (``errors``, ``translate``). Every failure is a specific subclass of
:class:`HFAssetError` with a message that says what to do; ``translate`` maps library exceptions
onto them through one table. ``user_error`` tells the commands' runner (``runner``) the exit
status: 2 for the user's mistakes, 1 for network and disk failures.

Environment. ``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, ``HF_HOME`` and
``HF_HUB_OFFLINE`` when they are first imported; this package imports them only inside the
functions that need them, and reads the variables itself through :mod:`common.settings`. The
token comes from ``token=``, else ``HF_TOKEN``, else the stored ``hf auth login`` token; it is
never printed or logged.

``common.data.hf_utils`` is the seed's entry point to the same names.
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "DATASET_ALIASES": ".names",
    "dataset_path": ".names",
    "model_path": ".names",
    "repo_files_path": ".names",
    "resolve_dataset_name": ".names",
    "AssetDownload": ".summary",
    "ensure_dataset": ".datasets",
    "download_dataset": ".datasets",
    "ensure_model": ".models",
    "download_model": ".models",
    "select_model_files": ".selection",
    "link_dataset": ".links",
    "verify_download": ".integrity",
    "Verification": ".integrity",
    "cleanup_partial_downloads": ".staging",
    "HFAssetError": ".errors",
    "RepoNotFoundError": ".errors",
    "RevisionNotFoundError": ".errors",
    "EntryNotFoundError": ".errors",
    "ConfigNotFoundError": ".errors",
    "SplitNotFoundError": ".errors",
    "AuthenticationError": ".errors",
    "GatedRepoError": ".errors",
    "OfflineError": ".errors",
    "HubUnreachableError": ".errors",
    "LoadingScriptUnsupportedError": ".errors",
    "DiskFullError": ".errors",
    "DownloadFailedError": ".errors",
    "AssetConflictError": ".errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
