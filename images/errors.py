"""The image builder's exception tree.

    ImageError               base: every error of the ``images`` package
    ├── RecipeError          a recipe (TOML, templates, kernel command line) that is invalid
    ├── LockError            a lock file that is missing, malformed or disagrees with the recipe
    ├── CacheError           a cached .deb or wheel that is missing and cannot be fetched, or
    │                        whose sha256 differs from the lock
    ├── ToolMissing          a host tool the build needs is not installed
    ├── CommandFailed        a host tool ran and failed (carries its output's tail)
    ├── CpioError            an archive entry that cannot be written, or bytes that are not newc
    └── ArtifactError        an output directory without the artifacts a command needs

Every message names the file, key or tool and what is wrong. OS, TOML, jinja2 and subprocess
errors are translated where they arise; nothing foreign escapes the public API.
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of every error the image builder raises."""


class RecipeError(ImageError):
    """An invalid recipe; ``source`` names the file (and key) at fault."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class LockError(ImageError):
    """A lock file that is missing, malformed or out of date with its recipe."""


class CacheError(ImageError):
    """A pinned input that is not in the cache and cannot be fetched, or does not match."""


class ToolMissing(ImageError):
    """A host tool the build needs is absent; the message names the tool and its package."""

    def __init__(self, tool: str, package: str, purpose: str) -> None:
        super().__init__(
            f"missing host tool {tool!r} (Debian package {package}, needed to {purpose}); "
            "install the image build tools with `make image-deps`"
        )
        self.tool = tool
        self.package = package


class CommandFailed(ImageError):
    """A host command exited non-zero; the message carries the tail of its output."""

    def __init__(self, what: str, returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-25:])
        super().__init__(f"{what} failed (exit {returncode})" + (f":\n{tail}" if tail else ""))
        self.returncode = returncode
        self.output = output


class CpioError(ImageError):
    """An entry the newc writer refuses, or bytes the reader cannot parse."""


class ArtifactError(ImageError):
    """An image directory that lacks an artifact, or whose manifest does not parse."""
