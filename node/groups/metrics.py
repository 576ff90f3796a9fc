"""Prometheus metrics of the node's groups, read from the runtimes at scrape time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from node.groups.raft import Role, SqliteStorage
from node.groups.stopped import REASONS
from node.primitives import GroupId

if TYPE_CHECKING:
    from node.groups.runtime import GroupRuntime

_LABELS = ["network", "group"]

_COUNTERS = {
    "mosaik_groups_elections": ("Campaigns this node started", "elections"),
    "mosaik_groups_leader_changes": ("Changes of the known leader", "leader_changes"),
    "mosaik_groups_proposals": ("Commands appended by this node as leader", "proposals"),
    "mosaik_groups_forwarded": ("Commands forwarded to the leader", "forwarded"),
    "mosaik_groups_commits": ("Commands committed and applied here", "commands_applied"),
    "mosaik_groups_conf_changes": ("Configuration changes proposed as leader", "conf_changes"),
    "mosaik_groups_snapshots_taken": ("Log compactions", "snapshots_taken"),
    "mosaik_groups_snapshots_installed": (
        "Snapshots received from a leader",
        "snapshots_installed",
    ),
    "mosaik_groups_rival_clusters_detected": ("Peers seen in a rival cluster", "rivals_detected"),
    "mosaik_groups_lineages_abandoned": ("Empty clusters left for a rival", "lineages_abandoned"),
    "mosaik_groups_malformed_frames": ("Frames dropped as malformed", "malformed_frames"),
    "mosaik_groups_recoveries": ("Stops the group recovered from by itself", "recoveries"),
}


class GroupsCollector(Collector):
    def __init__(self, runtimes: Mapping[GroupId, GroupRuntime], network: str) -> None:
        self._runtimes = runtimes
        self._network = network

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        runtimes = list(self._runtimes.values())
        active = GaugeMetricFamily("mosaik_groups_active", "Groups joined", labels=["network"])
        active.add_metric([self._network], len(runtimes))
        yield active
        gauges = {
            "term": GaugeMetricFamily("mosaik_groups_term", "Current Raft term", labels=_LABELS),
            "leader": GaugeMetricFamily(
                "mosaik_groups_is_leader", "1 if this node leads the group", labels=_LABELS
            ),
            "role": GaugeMetricFamily(
                "mosaik_groups_role",
                "1 for this node's Raft role (or stopped)",
                labels=[*_LABELS, "role"],
            ),
            "stopped": GaugeMetricFamily(
                "mosaik_groups_stopped",
                "1 while the group is stopped on this node, for the reason it stopped",
                labels=[*_LABELS, "reason"],
            ),
            "commit": GaugeMetricFamily(
                "mosaik_groups_commit_index", "Local commit index", labels=_LABELS
            ),
            "applied": GaugeMetricFamily(
                "mosaik_groups_applied_index", "Last index applied here", labels=_LABELS
            ),
            "voters": GaugeMetricFamily(
                "mosaik_groups_voters", "Voters in the configuration", labels=_LABELS
            ),
            "learners": GaugeMetricFamily(
                "mosaik_groups_learners", "Learners in the configuration", labels=_LABELS
            ),
            "rivals": GaugeMetricFamily(
                "mosaik_groups_rival_clusters",
                "Rival clusters seen among peers now",
                labels=_LABELS,
            ),
            "fsync_p50": GaugeMetricFamily(
                "mosaik_groups_fsync_p50_seconds", "Median log commit (fsync) time", labels=_LABELS
            ),
            "fsync_p99": GaugeMetricFamily(
                "mosaik_groups_fsync_p99_seconds", "99th percentile log commit time", labels=_LABELS
            ),
        }
        counters = {
            name: CounterMetricFamily(name, doc, labels=_LABELS)
            for name, (doc, _) in _COUNTERS.items()
        }
        fsyncs = CounterMetricFamily(
            "mosaik_groups_fsyncs", "Durable log transactions", labels=_LABELS
        )
        frames = CounterMetricFamily(
            "mosaik_groups_frames_sent", "Frames sent to fellow members", labels=_LABELS
        )
        stops = CounterMetricFamily(
            "mosaik_groups_stops",
            "Times the group stopped on this node",
            labels=[*_LABELS, "reason"],
        )
        dropped = CounterMetricFamily(
            "mosaik_groups_frames_dropped",
            "Frames dropped because a peer's queue was full",
            labels=_LABELS,
        )
        for rt in runtimes:
            labels = [self._network, rt.gid.short()]
            membership = rt.membership
            gauges["term"].add_metric(labels, rt.term)
            gauges["leader"].add_metric(labels, 1 if rt.role is Role.LEADER else 0)
            stopped = rt.stopped
            for role in Role:
                value = 1 if rt.role is role and stopped is None else 0
                gauges["role"].add_metric([*labels, role.value], value)
            gauges["role"].add_metric([*labels, "stopped"], 0 if stopped is None else 1)
            for reason in REASONS:
                why = stopped is not None and stopped.reason == reason
                gauges["stopped"].add_metric([*labels, reason], 1 if why else 0)
                stops.add_metric([*labels, reason], rt.stats.stops.get(reason, 0))
            gauges["commit"].add_metric(labels, rt.commit_index)
            gauges["applied"].add_metric(labels, rt.applied)
            gauges["voters"].add_metric(labels, len(membership.voters))
            gauges["learners"].add_metric(labels, len(membership.learners))
            gauges["rivals"].add_metric(labels, len(set(rt.lineage.rivals.values())))
            for name, (_, attr) in _COUNTERS.items():
                counters[name].add_metric(labels, getattr(rt.stats, attr))
            frames.add_metric(labels, rt.frames_sent)
            dropped.add_metric(labels, rt.frames_dropped)
            if isinstance(rt.storage, SqliteStorage):
                statistics = rt.storage.statistics()
                gauges["fsync_p50"].add_metric(labels, statistics.commit_p50)
                gauges["fsync_p99"].add_metric(labels, statistics.commit_p99)
                fsyncs.add_metric(labels, statistics.commits)
        yield from gauges.values()
        yield from counters.values()
        yield from (fsyncs, frames, dropped, stops)
