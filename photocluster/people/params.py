"""The parameters of the clustering rule (ClusterParams): the measured defaults, remembered per
catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from photocluster.people.thresholds import (
    ATTACH_DISTANCE,
    ATTACH_MARGIN,
    ATTACH_MUTUAL,
    ATTACH_NEIGHBOURS,
    ATTACH_POSTERIOR,
    ATTACH_SHARE,
    EJECT_DISTANCE,
    MERGE_DISTANCE,
    MERGE_SHARE,
    PAIR_DISTANCE,
    SEPARATION,
    SPLIT_SHARE,
    SPREAD_RATIO,
    VERIFY_SHARE,
)

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class ClusterParams:
    """Parameters of :func:`cluster_embeddings`; the defaults are the measured choice.

    See ``bench/tune_cluster.py`` for the measurement and the sensitivity table.
    """

    min_cluster_size: int = 4
    min_samples: int = 3
    epsilon: float = 0.0  # HDBSCAN cluster_selection_epsilon
    method: Literal["eom", "leaf"] = "eom"
    attach_distance: float = ATTACH_DISTANCE  # 0 disables the attach step
    merge_distance: float = MERGE_DISTANCE  # 0 disables the merge step (the default)
    attach_margin: float = ATTACH_MARGIN  # runner-up must be at least this much further
    eject_distance: float = EJECT_DISTANCE  # members further from their centroid: noise (0 = off)
    pair_distance: float = PAIR_DISTANCE  # leftover faces this close form a small person (0 = off)
    split_share: float = SPLIT_SHARE  # cut a cluster whose halves rarely look alike (0 = off)
    merge_share: float = MERGE_SHARE  # join clusters that look alike as one person's (0 = off)
    # a member further from its centroid than this many times the cluster's median: noise, and
    # a leftover face joins a cluster only within it (0 = off)
    spread_ratio: float = SPREAD_RATIO
    # a leftover face joins a cluster only when this share of its nearest faces are in it
    attach_share: float = ATTACH_SHARE
    # ... or, beyond the spread, when this many of those count it among their nearest (0 = off)
    attach_mutual: int = ATTACH_MUTUAL
    # a cluster is a person only when this share of its face pairs are within SAME_PERSON;
    # otherwise its faces are left unassigned (0 = off)
    verify_share: float = VERIFY_SHARE
    # ... and only when its faces are nearer one another than to the faces around them: the
    # median over its faces of (nearest member / nearest other face) at most this (0 = off)
    separation: float = SEPARATION
    # a face left in no cluster joins the one it more likely than this belongs to, as the
    # library's own clusters measure it (people.posterior; 0 = off)
    attach_posterior: float = ATTACH_POSTERIOR

    def __post_init__(self) -> None:
        if self.min_cluster_size < 2:
            raise ValueError("min cluster size must be at least 2")
        if self.min_samples < 1:
            raise ValueError("min samples must be at least 1")
        if self.method not in ("eom", "leaf"):
            raise ValueError("selection method must be 'eom' or 'leaf'")
        for name in (
            "epsilon",
            "attach_distance",
            "merge_distance",
            "attach_margin",
            "eject_distance",
            "pair_distance",
            "split_share",
            "merge_share",
            "spread_ratio",
            "attach_share",
            "verify_share",
            "separation",
            "attach_posterior",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', ' ')} must not be negative")
        if self.split_share > 1:
            raise ValueError("split share must be between 0 and 1")
        if self.merge_share > 1:
            raise ValueError("merge share must be between 0 and 1")
        if self.attach_share > 1:
            raise ValueError("attach share must be between 0 and 1")
        if self.verify_share > 1:
            raise ValueError("verify share must be between 0 and 1")
        if self.separation > 1:
            raise ValueError("separation must be between 0 and 1")
        if self.attach_posterior >= 1:
            raise ValueError("attach posterior must be at least 0 and below 1")
        if not 0 <= self.attach_mutual <= ATTACH_NEIGHBOURS:
            raise ValueError(f"attach mutual must be between 0 and {ATTACH_NEIGHBOURS}")
