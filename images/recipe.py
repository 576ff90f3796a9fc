"""Recipes: a directory holding ``recipe.toml``, its jinja2 ``templates/`` and ``packages.lock``.

``load_recipe`` validates everything a build depends on before anything runs: unknown tables
or keys, wrong types, packages the image cannot boot without, template files that do not
exist, and a kernel command line the guest would misread. Each error names the file and key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from images.errors import RecipeError
from images.guestconfig import GuestConfigError, node_environment, split_cmdline

RECIPE_FILE: Final = "recipe.toml"
LOCK_FILE: Final = "packages.lock"
TEMPLATES_DIR: Final = "templates"
# The kernel's x86 COMMAND_LINE_SIZE, including the terminating NUL.
CMDLINE_MAX: Final = 2047
# What the guest needs to boot to the node at all; a recipe without them cannot work.
REQUIRED_PACKAGES: Final = {
    "systemd": "PID 1 and the node's service",
    "udev": "loading the virtio and TDX drivers",
    "kmod": "modprobe and depmod for the carried modules",
    "python3": "the node runtime's interpreter",
}
# Parameters that would take the boot away from the initramfs's /init.
_FORBIDDEN_PARAMS: Final = {
    "root": "the image has no root disk: the initramfs is the root filesystem",
    "init": "the kernel must run the initramfs's /init (systemd)",
    "rdinit": "the kernel must run the initramfs's /init (systemd)",
    "noinitrd": "the initramfs is the root filesystem",
}
_PACKAGE: Final = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_MODULE: Final = re.compile(r"[A-Za-z0-9_-]+")
_UNIT: Final = re.compile(
    r"[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|mount|automount|path|swap|slice)"
)
_MEMORY: Final = re.compile(r"(\d+)([MG])")

_SCHEMA: Final[dict[str, dict[str, type | tuple[type, ...]]]] = {
    "image": {
        "name": str,
        "suite": str,
        "mirror": str,
        "components": list,
        "source_date_epoch": int,
        "compression_level": int,
        "runtime": bool,
    },
    "packages": {"include": list, "path_exclude": list, "path_include": list, "remove": list},
    "kernel": {"package": str, "modules": list, "load": list, "cmdline": str},
    "node": {
        "user": str,
        "venv": str,
        "data_dir": str,
        "network": str,
        "bind": str,
        "metrics_addr": str,
        "tags": list,
        "bootstrap": list,
    },
    "units": {"enable": list, "mask": list},
    "vm": {"memory": str, "cpus": int},
    "tdx": {"qemu_version": str, "quote_port": int},
    "files": {"template": str, "path": str, "mode": int},
}
_OPTIONAL: Final = {
    ("tdx", "qemu_version"),
    ("packages", "remove"),
    ("units", "mask"),
    ("image", "runtime"),
}


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A template rendered into the root filesystem at ``path`` with ``mode``."""

    template: str
    path: str
    mode: int


@dataclass(frozen=True, slots=True)
class NodeSettings:
    user: str
    venv: str
    data_dir: str
    network: str
    bind: str
    metrics_addr: str
    tags: tuple[str, ...]
    bootstrap: tuple[str, ...]

    @property
    def state_directory(self) -> str:
        """``data_dir`` relative to /var/lib (systemd's StateDirectory=)."""
        return self.data_dir.removeprefix("/var/lib/")

    @property
    def udp_port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def http_port(self) -> int:
        return int(self.metrics_addr.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    directory: Path
    image_name: str
    suite: str
    mirror: str
    components: tuple[str, ...]
    source_date_epoch: int
    compression_level: int
    packages: tuple[str, ...]
    path_exclude: tuple[str, ...]
    path_include: tuple[str, ...]
    remove: tuple[str, ...]
    kernel_package: str
    modules: tuple[str, ...]
    load_modules: tuple[str, ...]
    cmdline: str
    node: NodeSettings
    enable: tuple[str, ...]
    mask: tuple[str, ...]
    memory: str
    cpus: int
    qemu_version: str | None
    quote_port: int
    files: tuple[FileSpec, ...]
    # Install the node runtime (a venv at node.venv); off for a plain VM that gets it later.
    runtime: bool = True

    @property
    def lock_path(self) -> Path:
        return self.directory / LOCK_FILE

    @property
    def templates(self) -> Path:
        return self.directory / TEMPLATES_DIR

    @property
    def mirror_line(self) -> str:
        return f"deb {self.mirror} {self.suite} {' '.join(self.components)}"


def resolve_recipe_dir(name_or_path: str | Path, search: Path | None = None) -> Path:
    """A recipe directory from a path, or from a name under ``search`` (default: here)."""
    candidate = Path(name_or_path)
    if (candidate / RECIPE_FILE).is_file():
        return candidate
    if candidate.name == RECIPE_FILE and candidate.is_file():
        return candidate.parent
    base = search if search is not None else Path(__file__).resolve().parent
    named = base / str(name_or_path)
    if (named / RECIPE_FILE).is_file():
        return named
    raise RecipeError(
        str(name_or_path), f"no {RECIPE_FILE} here nor a recipe of that name in {base}"
    )


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read and validate a recipe (see the module doc)."""
    directory = resolve_recipe_dir(name_or_path)
    source = directory / RECIPE_FILE
    try:
        document = tomllib.loads(source.read_text())
    except OSError as exc:
        raise RecipeError(str(source), f"cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(str(source), f"not valid TOML: {exc}") from None
    return _validate(document, directory, str(source))


def _validate(document: dict[str, Any], directory: Path, source: str) -> Recipe:
    unknown = sorted(set(document) - set(_SCHEMA))
    if unknown:
        raise RecipeError(source, f"unknown table [{unknown[0]}] (known: {', '.join(_SCHEMA)})")
    tables = {name: _table(document, name, source) for name in _SCHEMA if name != "files"}
    image, packages, kernel, node, units = (
        tables["image"],
        tables["packages"],
        tables["kernel"],
        tables["node"],
        tables["units"],
    )
    include = _strings(packages, "packages", "include", source)
    for package in include:
        if not _PACKAGE.fullmatch(package):
            raise RecipeError(source, f"[packages] include: {package!r} is not a package name")
    for package, purpose in sorted(REQUIRED_PACKAGES.items()):
        if package not in include:
            raise RecipeError(
                source, f"[packages] include: missing package {package!r} (needed for {purpose})"
            )
    modules = _strings(kernel, "kernel", "modules", source)
    load = _strings(kernel, "kernel", "load", source)
    for module in modules + load:
        if not _MODULE.fullmatch(module):
            raise RecipeError(source, f"[kernel] {module!r} is not a module name")
    for module in load:
        if module not in modules:
            raise RecipeError(source, f"[kernel] load: {module!r} is not in modules (not carried)")
    settings = _node(node, source)
    cmdline = kernel["cmdline"]
    check_cmdline(cmdline, f"{source}: [kernel] cmdline")
    enable = _strings(units, "units", "enable", source)
    mask = _strings(units, "units", "mask", source) if "mask" in units else []
    for unit in enable + mask:
        if not _UNIT.fullmatch(unit):
            raise RecipeError(source, f"[units] {unit!r} is not a unit name")
    memory = tables["vm"]["memory"]
    if not _MEMORY.fullmatch(memory):
        raise RecipeError(source, f"[vm] memory: {memory!r} is not a size like 1G or 1536M")
    cpus = tables["vm"]["cpus"]
    if not 1 <= cpus <= 64:
        raise RecipeError(source, f"[vm] cpus: {cpus} is not between 1 and 64")
    epoch = image["source_date_epoch"]
    if not 0 <= epoch < 2**32:
        raise RecipeError(source, "[image] source_date_epoch must fit 32 bits (cpio mtime)")
    level = image["compression_level"]
    if not 1 <= level <= 19:
        raise RecipeError(source, f"[image] compression_level {level} is not a zstd level 1-19")
    tdx = tables["tdx"]
    return Recipe(
        name=directory.resolve().name,
        directory=directory,
        image_name=image["name"],
        suite=image["suite"],
        mirror=image["mirror"],
        components=tuple(_strings(image, "image", "components", source)),
        source_date_epoch=epoch,
        compression_level=level,
        packages=tuple(include),
        path_exclude=tuple(_paths(packages, "path_exclude", source)),
        path_include=tuple(_paths(packages, "path_include", source)),
        remove=tuple(_paths(packages, "remove", source)) if "remove" in packages else (),
        kernel_package=kernel["package"],
        modules=tuple(modules),
        load_modules=tuple(load),
        cmdline=cmdline,
        node=settings,
        enable=tuple(enable),
        mask=tuple(mask),
        memory=memory,
        cpus=cpus,
        qemu_version=tdx.get("qemu_version"),
        quote_port=tdx["quote_port"],
        files=_files(document.get("files"), directory, source),
        runtime=image.get("runtime", True),
    )


def check_cmdline(cmdline: str, where: str) -> None:
    """Refuse a kernel command line the kernel or the guest config would misread."""
    if not cmdline.isascii() or not cmdline.isprintable():
        raise RecipeError(where, "the command line must be printable ASCII on one line")
    if len(cmdline) > CMDLINE_MAX:
        raise RecipeError(where, f"{len(cmdline)} characters exceed the kernel's {CMDLINE_MAX}")
    if cmdline.count('"') % 2:
        raise RecipeError(where, "unbalanced double quote")
    params = split_cmdline(cmdline)
    for key, _value in params:
        if key in _FORBIDDEN_PARAMS:
            raise RecipeError(where, f"{key}= is not allowed: {_FORBIDDEN_PARAMS[key]}")
    try:
        node_environment(params, where)
    except GuestConfigError as exc:
        raise RecipeError(where, str(exc).removeprefix(f"{where}: ")) from None


def _table(document: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    table = document.get(name)
    if not isinstance(table, dict):
        raise RecipeError(source, f"missing table [{name}]")
    _check_keys(table, name, source)
    return table


def _check_keys(table: dict[str, Any], name: str, source: str) -> None:
    schema = _SCHEMA[name]
    for key, value in table.items():
        if key not in schema:
            raise RecipeError(
                source, f"[{name}] unknown key {key!r} (known: {', '.join(sorted(schema))})"
            )
        if not isinstance(value, schema[key]) or (
            isinstance(value, bool) and schema[key] is not bool
        ):
            expected = getattr(schema[key], "__name__", "value")
            raise RecipeError(source, f"[{name}] {key}: expected {expected}, got {value!r}")
    for key in schema:
        if key not in table and (name, key) not in _OPTIONAL:
            raise RecipeError(source, f"[{name}] missing key {key!r}")


def _strings(table: dict[str, Any], name: str, key: str, source: str) -> list[str]:
    values = table[key]
    if not all(isinstance(v, str) for v in values):
        raise RecipeError(source, f"[{name}] {key}: expected a list of strings")
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise RecipeError(source, f"[{name}] {key}: {duplicates[0]!r} is listed twice")
    return list(values)


def _paths(table: dict[str, Any], key: str, source: str) -> list[str]:
    values = _strings(table, "packages", key, source)
    for value in values:
        if not value.startswith("/") or ".." in PurePosixPath(value).parts:
            raise RecipeError(source, f"[packages] {key}: {value!r} is not an absolute path")
    return values


def _node(node: dict[str, Any], source: str) -> NodeSettings:
    if not node["venv"].startswith("/"):
        raise RecipeError(source, f"[node] venv: {node['venv']!r} is not an absolute path")
    if not re.fullmatch(r"/var/lib/[a-z0-9][a-z0-9._-]*", node["data_dir"]):
        raise RecipeError(
            source, f"[node] data_dir: {node['data_dir']!r} is not a directory under /var/lib/"
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", node["user"]):
        raise RecipeError(source, f"[node] user: {node['user']!r} is not a user name")
    params = [("mosaik.network", node["network"]), ("mosaik.bind", node["bind"])]
    params.append(("mosaik.metrics", node["metrics_addr"]))
    tags = _strings(node, "node", "tags", source)
    bootstrap = _strings(node, "node", "bootstrap", source)
    if tags:
        params.append(("mosaik.tags", ",".join(tags)))
    if bootstrap:
        params.append(("mosaik.bootstrap", ",".join(bootstrap)))
    try:
        node_environment(params, "[node]")
    except GuestConfigError as exc:
        raise RecipeError(source, str(exc)) from None
    return NodeSettings(
        user=node["user"],
        venv=node["venv"],
        data_dir=node["data_dir"],
        network=node["network"],
        bind=node["bind"],
        metrics_addr=node["metrics_addr"],
        tags=tuple(tags),
        bootstrap=tuple(bootstrap),
    )


def _files(value: Any, directory: Path, source: str) -> tuple[FileSpec, ...]:
    if not isinstance(value, list) or not value:
        raise RecipeError(source, "missing [[files]]: the templates to render into the image")
    specs: list[FileSpec] = []
    for index, item in enumerate(value):
        where = f"[[files]] #{index + 1}"
        if not isinstance(item, dict):
            raise RecipeError(source, f"{where}: expected a table")
        try:
            _check_keys(item, "files", source)
        except RecipeError as exc:
            raise RecipeError(source, f"{where}: {exc.message}") from None
        path = item["path"]
        if not path.startswith("/") or ".." in PurePosixPath(path).parts:
            raise RecipeError(source, f"{where}: path {path!r} is not absolute")
        if not 0 <= item["mode"] <= 0o7777:
            raise RecipeError(source, f"{where}: mode {item['mode']:#o} is not a permission mode")
        if not (directory / TEMPLATES_DIR / item["template"]).is_file():
            raise RecipeError(
                source, f"{where}: template {item['template']!r} not found in {TEMPLATES_DIR}/"
            )
        specs.append(FileSpec(item["template"], path, item["mode"]))
    paths = [spec.path for spec in specs]
    for path in paths:
        if paths.count(path) > 1:
            raise RecipeError(source, f"[[files]]: {path} is rendered twice")
    return tuple(specs)
