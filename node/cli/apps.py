"""Apps: coroutines a node runs beside the runtime (``node run --app MODULE:CALLABLE``).

An app is ``async def app(net: Network) -> None``. It starts once the node is ready and runs
until the node stops, which cancels it; one that returns early leaves the node running. The
first app that raises stops the node with its error.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from node.errors import ConfigError
from node.network import Network

App = Callable[[Network], Coroutine[Any, Any, None]]

log = logging.getLogger("mosaik.apps")


def load_app(spec: str) -> App:
    """The callable ``spec`` names as ``package.module:callable``; imports the module."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigError(f"app {spec!r} is not MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"app {spec!r}: cannot import {module_name}: {exc}") from None
    app = getattr(module, name, None)
    if not callable(app):
        raise ConfigError(f"app {spec!r}: {module_name} has no callable {name}")
    return cast(App, app)


async def run_apps(net: Network, apps: Sequence[tuple[str, App]], stop: asyncio.Event) -> None:
    """Run ``apps`` (named by their spec) beside ``net`` until ``stop`` is set, then cancel
    them and wait until they have ended. Raises the error of the first app that failed.
    """
    try:
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(app(net), name=f"app {spec}") for spec, app in apps]
            await stop.wait()
            for task in running:
                task.cancel()
    except ExceptionGroup as failed:
        for exc in failed.exceptions[1:]:
            log.error("another app failed too", exc_info=exc)
        raise failed.exceptions[0] from None
