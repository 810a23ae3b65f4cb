"""The Hub tools' exceptions: one class per way a download or link can fail.

Every class derives from :class:`HFAssetError`, whose message says what went wrong and what to do.
``user_error`` tells a command line which exit status it means: the user's to fix (2), or the
network, the disk or the server (1).
"""

from __future__ import annotations


class HFAssetError(Exception):
    """A download or link could not be done; the message says why and what to do."""

    user_error = True
    """True when the request itself must change (exit 2); False for network and disk (exit 1)."""


class RepoNotFoundError(HFAssetError):
    """The repository does not exist on the Hub, or is private and the token has no access."""


class RevisionNotFoundError(HFAssetError):
    """The repository has no such branch, tag or commit."""


class EntryNotFoundError(HFAssetError):
    """The repository has no such file (or no file matches the patterns)."""


class ConfigNotFoundError(HFAssetError):
    """The data set has no such configuration, or needs one to be chosen."""


class SplitNotFoundError(HFAssetError):
    """The data set configuration has no such split."""


class AuthenticationError(HFAssetError):
    """The Hub refused the token, or the repository needs one."""


class GatedRepoError(AuthenticationError):
    """The repository is gated: its conditions must be accepted and a token sent."""


class OfflineError(HFAssetError):
    """Offline mode is on, or the Hub endpoint cannot be reached, and the asset is not local."""


class HubUnreachableError(OfflineError):
    """The Hub endpoint cannot be reached (connection refused, DNS, proxy) and the asset is not
    local."""

    user_error = False


class LoadingScriptUnsupportedError(HFAssetError):
    """The data set is defined by a Python loading script, which ``datasets`` no longer runs."""


class DiskFullError(HFAssetError):
    """The disk (or a file size limit) ran out while writing the asset."""

    user_error = False


class DownloadFailedError(HFAssetError):
    """The transfer broke off (connection dropped, server error); nothing was kept."""

    user_error = False


class AssetConflictError(HFAssetError):
    """The target folder holds something else (another revision, or not a finished download)."""
