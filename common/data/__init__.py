"""Hugging Face downloads, tokenizers, token datasets and loaders, the embedded default corpus."""

from common._lazy import lazy_exports

_EXPORTS = {
    # Hugging Face assets
    "get_assets_dir": ".hf_utils",
    "get_datasets_dir": ".hf_utils",
    "get_models_dir": ".hf_utils",
    "download_dataset": ".hf_utils",
    "download_model": ".hf_utils",
    "link_dataset": ".hf_utils",
    "resolve_dataset_name": ".hf_utils",
    "DATASET_ALIASES": ".hf_utils",
    "HFAssetError": ".hf_utils",
    "dataset_path": ".hf_utils",
    "model_path": ".hf_utils",
    "RepoNotFoundError": ".hf_utils",
    "RevisionNotFoundError": ".hf_utils",
    "EntryNotFoundError": ".hf_utils",
    "ConfigNotFoundError": ".hf_utils",
    "SplitNotFoundError": ".hf_utils",
    "AuthenticationError": ".hf_utils",
    "GatedRepoError": ".hf_utils",
    "OfflineError": ".hf_utils",
    "LoadingScriptUnsupportedError": ".hf_utils",
    "DiskFullError": ".hf_utils",
    "DownloadFailedError": ".hf_utils",
    "AssetConflictError": ".hf_utils",
    "HubUnreachableError": ".hf_utils",
    "verify_download": ".hf_utils",
    # tokenizers
    "Tokenizer": ".tokenizers",
    "load_tokenizer": ".tokenizers",
    "train_bpe_tokenizer": ".tokenizers",
    # embedded default corpus
    "generate_story": ".synthetic",
    "generate_stories": ".synthetic",
    "generate_corpus": ".synthetic",
    "write_story": ".synthetic",
    "replay_story": ".synthetic",
    "WrittenStory": ".synthetic",
    "corpus_floor_bits_per_byte": ".synthetic",
    # token files and loaders
    "TokenFile": ".token_dataset",
    "build_token_file": ".token_dataset",
    "RandomWindowLoader": ".token_dataset",
    "SequentialLoader": ".token_dataset",
    "unigram_baseline": ".unigram",
    "prepare_data": ".pipeline",
    "PreparedData": ".pipeline",
    "DataError": ".pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
