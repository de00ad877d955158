"""Errors a user can cause. The CLI prints their message (no traceback) and exits non-zero.

Every message says what is wrong and how to fix it.
"""


class RnnkitError(Exception):
    """Base class: something the user can fix (bad path, bad file, bad text, bad option)."""

    exit_code = 2


class ConfigError(RnnkitError, ValueError):
    """A model or training option is out of range or inconsistent."""


class DataError(RnnkitError):
    """A data set is missing, incomplete or malformed."""


class BundleError(RnnkitError):
    """A model bundle is missing a file, is damaged, or does not match its config."""


class InputError(RnnkitError, ValueError):
    """Text or arguments given to predict/generate/translate cannot be used."""


class TrainingError(RnnkitError):
    """Training cannot go on (for example a non-finite loss)."""

    exit_code = 3
