"""Demos of mosaik built on its public API: ``mosaik demo`` and ``node run --counter-group``.

- ``cluster``: ``mosaik demo``, a local cluster of node processes on loopback;
- ``roles``: the app each of those nodes runs (sensor stream, monitors, attestation);
- ``counter``: a replicated counter on a Raft group (``node run --counter-group``).

The runtime never imports this package: the CLI reaches it lazily, ``mosaik demo`` inside the
command and the counter as a ``MODULE:CALLABLE`` app.
"""
