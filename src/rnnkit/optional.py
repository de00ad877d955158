"""Optional dependencies, imported where needed, with an error that names the install command.

The numpy engine (predict, serve, numpy training) needs none of them; torch is
imported only by the commands and engines that use it.
"""

from __future__ import annotations

from rnnkit.errors import RnnkitError


def import_torch():
    """torch, or an error naming the install command (and the engine that needs none)."""
    try:
        import torch
    except ImportError:
        raise RnnkitError("the torch engine needs PyTorch: pip install torch==2.13.0 "
                          "(or use --engine numpy)") from None
    return torch
