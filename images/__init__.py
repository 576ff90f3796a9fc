"""TDX guest images of the node: recipes, a reproducible builder, launch and measurement.

load_recipe(name_or_dir) -> Recipe;  plan(BuildOptions(...)) -> (steps, cleanup)
write_newc(entries, out, mtime=...) / read_newc(data) / entries_from_tree(root): deterministic cpio
vm_command(image_dir, VmOptions(...)) -> (argv, env) of the plain-VM launch script
"""

from __future__ import annotations

from images.artifacts import (
    ARTIFACTS,
    MANIFEST,
    measure_artifacts,
    read_manifest,
    verify_artifacts,
)
from images.build import DEFAULT_CACHE, BuildOptions, Step, plan
from images.cpio import CpioEntry, CpioMember, entries_from_tree, read_newc, write_newc
from images.errors import (
    ArtifactError,
    CacheError,
    CommandFailed,
    CpioError,
    ImageError,
    LockError,
    RecipeError,
    ToolMissing,
)
from images.lock import DebPin, Lock, WheelPin, read_lock, write_lock
from images.recipe import FileSpec, NodeSettings, Recipe, check_cmdline, load_recipe
from images.render import RenderedFile, render_recipe_files
from images.vm import VmOptions, vm_command

__all__ = [
    "ARTIFACTS",
    "DEFAULT_CACHE",
    "MANIFEST",
    "ArtifactError",
    "BuildOptions",
    "CacheError",
    "CommandFailed",
    "CpioEntry",
    "CpioError",
    "CpioMember",
    "DebPin",
    "FileSpec",
    "ImageError",
    "Lock",
    "LockError",
    "NodeSettings",
    "Recipe",
    "RecipeError",
    "RenderedFile",
    "Step",
    "ToolMissing",
    "VmOptions",
    "WheelPin",
    "check_cmdline",
    "entries_from_tree",
    "load_recipe",
    "measure_artifacts",
    "plan",
    "read_lock",
    "read_manifest",
    "read_newc",
    "render_recipe_files",
    "verify_artifacts",
    "vm_command",
    "write_lock",
    "write_newc",
]
