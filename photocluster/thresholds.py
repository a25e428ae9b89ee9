"""Face-distance thresholds on dlib ResNet embeddings (Euclidean distance between 128-d vectors).

Measured on the scan of ``../shared/faces`` at the default detect size (1 559 faces; the labelled,
largest face of 1 364 photos of 54 people; 27 415 same-person and 902 151 different-person
pairs), with ``uv run python bench/tune_cluster.py --db <catalog> --root ../shared/faces``:

* dlib documents 0.6 (99.38 % on LFW). On these photos 0.6 accepts 0.23 % of different-person
  pairs. The distance that accepts 0.1 % (false-match rate 1e-3) is 0.58, accepting 78 % of
  same-person pairs; 1e-4 is at 0.52 (60 %). ``SAME_PERSON`` is the 1e-3 point: one stranger pair
  in a thousand looks the same, which suits a yes/no verdict (`compare`) and suggestions.
* ``ATTACH_DISTANCE`` is a face-to-*centroid* distance (a person's mean embedding averages out
  pose and light, so a face is closer to its own centroid than to a single other photo of the
  same person). A face joins a cluster or person only within it and when the runner-up is at
  least ``ATTACH_MARGIN`` further. Sensitivity (pairwise F / precision): off -> 0.894/0.992,
  0.45 -> 0.899/0.992, 0.50 -> 0.913/0.991, 0.55 -> 0.919/0.990, 0.60 -> 0.918/0.983; margin 0
  -> 0.928/0.982 (below the 0.99 precision goal), 0.02 -> 0.926/0.987, 0.05 -> 0.919/0.990.
  (On the scan at detect size 1600, before 1440 became the default, 0.55 gave 0.918/0.989.)
* ``EJECT_DISTANCE``: an HDBSCAN member further than this from its cluster's centroid is noise.
  No member of the measured clusters is that far (0.55-0.8 change nothing), but with few faces
  HDBSCAN can keep a lone stranger ~1.0 away inside a cluster; this undoes that.
* ``SPLIT_SHARE``: a cluster is cut in two (average linkage) when fewer than this share of the
  face pairs across the cut are within ``SAME_PERSON``. One person's pairs are 78 % of the time,
  strangers' 0.1 %, so a share far below the first is two people. On the whole set 0.1-0.3
  change nothing (0.4 -> F 0.909); on 360 small catalogs drawn from it (2-10 people x 4-8
  photos, ``bench/small_catalogs.py``), where HDBSCAN often keeps two small people as one
  cluster, mean pairwise F / precision: off 0.889/0.873, 0.1 0.944/0.993, 0.2 0.943/0.995,
  0.3 0.939/0.997.
* ``MERGE_DISTANCE`` (centroid to centroid) is off by default: merging at 0.40 gains 0.002 F, and
  at 0.45 precision collapses to 0.27 (centroids of near look-alike groups chain together),
  a cliff too close to be safe on other photos. Merging on evidence between faces instead
  (``MERGE_SHARE``) is safe.
* ``MERGE_SHARE``: two clusters are joined when at least this share of the face pairs across
  them are within ``SAME_PERSON``: the split test turned round (one person's pairs are that
  close 78 % of the time, strangers' 0.1 %, so a majority means one person). On the whole set
  it joins Madonna's three clusters (7 + 3 + 12 faces): pairwise F / precision off
  0.914/0.989, 0.3-0.7 all 0.919/0.990. On the 360 small catalogs it changes nothing (mean F
  0.943 either way). On synthetic libraries of 20 photos per person, where HDBSCAN often
  splits a person in two, it matters most (``bench/bench_cluster_scale.py --set
  merge_share=0``): see the README's "Large libraries".
"""

from __future__ import annotations

# Below this distance two faces are judged the same person (compare, suggestions, matching).
SAME_PERSON = 0.58
# A face joins a cluster/person whose centroid is within this distance (clustering, incremental).
ATTACH_DISTANCE = 0.55
# ... and only when the second-nearest centroid is at least this much further.
ATTACH_MARGIN = 0.05
# Clusters whose centroids are closer than this are merged (0 = never).
MERGE_DISTANCE = 0.0
# HDBSCAN members further than this from their cluster's centroid become noise (0 = never).
EJECT_DISTANCE = 0.6
# Leftover faces (noise) closer than this to each other, and not from one photo, form a small
# person of their own (two or three photos of someone are a person too). 0.45 is well inside the
# distance where 1 in 10 000 different-person pairs match (0.52); on ../shared/faces it turns
# 6.0 % unassigned into 4.0 % with pairwise precision unchanged (0.989). 0.40 → 4.5 %, 0.50 → 3.7 %.
PAIR_DISTANCE = 0.45
# A cluster is cut in two (average linkage) when fewer than this share of the pairs across the
# cut are within SAME_PERSON (one person's pairs: 78 %; strangers': 0.1 %). See SPLIT_SHARE in
# the module docstring for the measurement.
SPLIT_SHARE = 0.2
# Two clusters are joined when at least this share of the pairs across them are within
# SAME_PERSON: a majority, as for one person's own pairs (78 %), never strangers' (0.1 %). Kept
# well above SPLIT_SHARE, so a cut cluster is not joined again. See MERGE_SHARE above.
MERGE_SHARE = 0.5
# `find`: the verdict on a face that may belong to nobody in the catalog. Measured with
# `uv run python bench/bench_find.py verdicts` (../shared/faces split by photo; 8 people left out
# as strangers; people named after the majority label of their faces): "known" at
# FIND_KNOWN_DISTANCE to the person's centroid (and ATTACH_MARGIN before the runner-up) was right
# for 89.9 % of in-catalog faces and wrong for 0.5 %, and took 0.7 % of strangers; with 0.55 (the
# clustering attach distance) strangers got 3.5 %. "probably" adds faces within ATTACH_DISTANCE
# of the centroid or FIND_PROBABLY_FACE of one of the person's faces (1 in 10 000 stranger pairs
# is that close): known or probably then covers 94.2 % right, 0.9 % wrong, strangers 11.8 %
# (with centroid 0.60 instead: 94.7 % / 2.1 % / 45.8 %).
FIND_KNOWN_DISTANCE = 0.50
FIND_PROBABLY_FACE = 0.53
