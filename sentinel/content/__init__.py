"""Where the bundled rule pack, baselines and playbooks live, installed or in a checkout.

The repository keeps them at its top level (`detections/`, `baselines/`, `playbooks/`: the
docs and `sigma check detections/` point there). pyproject.toml maps those folders into this
package (`sentinel.content.detections`, `…baselines`, `…playbooks`), so a built wheel carries
them next to this file and `importlib.resources` finds them from any working directory.
An editable checkout has no copy here; the repository's folders are used instead.

Invariant: every caller that needs the bundled pack (scan, `sentinel rules`, playbooks)
asks `rules_dir()` / `baselines_dir()` / `playbooks_dir()`; nothing else derives the
location from `__file__`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The checkout's top level, two folders above this package (sentinel/content/).
_CHECKOUT = Path(__file__).resolve().parents[2]


def _bundled(name: str) -> Path:
    installed = files(__name__) / name
    # A regular package on disk yields a real Path; rules are loaded from files by path.
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return _CHECKOUT / name


def rules_dir() -> Path:
    """The bundled Sigma rule pack (`detections/`)."""
    return _bundled("detections")


def playbooks_dir() -> Path:
    """The bundled incident playbooks (`playbooks/`)."""
    return _bundled("playbooks")


def baselines_dir() -> Path:
    """The bundled baselines for unusual access (`baselines/`)."""
    return _bundled("baselines")
