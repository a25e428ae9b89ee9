"""Face-distance thresholds on the embeddings (Euclidean distance between 128-d vectors).

The embedding is dlib's ResNet descriptor averaged over the aligned face and its mirror image
(``encoder.MODEL_ID``). Measured on the scan of ``../shared/faces`` at the default detect size
(1 559 faces; the labelled, largest face of 1 364 photos of 54 people; 27 415 same-person and
902 151 different-person pairs), with ``uv run python bench/tune_cluster.py --db <catalog>
--root ../shared/faces``:

* dlib documents 0.6 (99.38 % on LFW). On these photos 0.6 accepts 0.42 % of different-person
  pairs. The distance that accepts 0.1 % (false-match rate 1e-3) is 0.566 (80.2 % of
  same-person pairs); 1e-4 is at 0.505 (63.3 %). ``SAME_PERSON`` is 0.56, just inside the 1e-3
  point: 0.076 % of stranger pairs and 78.8 % of one person's pairs are that close, which suits
  a yes/no verdict (`compare`) and suggestions. (Plain dlib embeddings, without the mirror
  image: the 1e-3 point was 0.58 with 78.4 %, the 1e-4 point 0.52 with 59.8 %.)
* ``ATTACH_DISTANCE`` is a face-to-*centroid* distance (a person's mean embedding averages out
  pose and light, so a face is closer to its own centroid than to a single other photo of the
  same person). A face joins a cluster or person only within it and when the runner-up is at
  least ``ATTACH_MARGIN`` further. Sensitivity (pairwise F / precision): off -> 0.899/0.996,
  0.45 -> 0.907/0.996, 0.50 -> 0.927/0.996, 0.52 -> 0.928/0.996, 0.53-0.55 -> 0.929/0.996,
  0.56 -> 0.928/0.992, 0.60 -> 0.927/0.990: 0.54 sits inside the flat top, before precision
  starts to fall. Margin 0 -> 0.935/0.988 (below the 0.99 precision goal), 0.02 ->
  0.934/0.991, 0.05 -> 0.929/0.996: 0.05 keeps a buffer for photos unlike these.
* ``EJECT_DISTANCE``: an HDBSCAN member further than this from its cluster's centroid is noise.
  No member of the measured clusters is that far (0.55-0.8 change nothing), but with few faces
  HDBSCAN can keep a lone stranger ~1.0 away inside a cluster; this undoes that.
* ``PAIR_DISTANCE``: leftover faces this close form a small person. 0.43 accepts 0.0012 % of
  stranger pairs (the point 0.45 was on plain dlib embeddings); on the whole set it turns 4.8 %
  unassigned labelled faces into 3.2 % at unchanged precision (0.40 -> 3.6 %, 0.50 -> 2.7 %).
* ``SPLIT_SHARE``: a cluster is cut in two (average linkage) when fewer than this share of the
  face pairs across the cut are within ``SAME_PERSON``. One person's pairs are 79 % of the time,
  strangers' 0.08 %, so a share far below the first is two people. On the whole set 0-0.3
  change F by at most 0.001 (0.4 -> 0.917); on 360 small catalogs drawn from it (2-10 people x
  4-8 photos, ``bench/small_catalogs.py``), where HDBSCAN often keeps two small people as one
  cluster, mean pairwise F / precision: off 0.896/0.876, 0.1 0.950/0.995, 0.2 0.948/0.997,
  0.3 0.942/0.997.
* ``MERGE_DISTANCE`` (centroid to centroid) is off by default: at 0.40 it changes nothing and
  at 0.45 precision collapses to 0.52 (centroids of near look-alike groups chain together), a
  cliff too close to be safe on other photos. Merging on evidence between faces instead
  (``MERGE_SHARE``) is safe.
* ``MERGE_SHARE``: two clusters are joined when at least this share of the face pairs across
  them are within ``SAME_PERSON``: the split test turned round (a majority means one person).
  On the whole set it joins Madonna's two clusters (9 + 13 faces): pairwise F / precision off
  0.925/0.996, 0.4-0.7 0.929/0.996 (0.3: 0.928/0.993). On the 360 small catalogs it changes
  nothing (mean F 0.948). On synthetic libraries of 20 photos per person, where HDBSCAN often
  splits a person in two, it matters most (``bench/bench_cluster_scale.py --set
  merge_share=0``): see the README's "Large libraries".
"""

from __future__ import annotations

# Below this distance two faces are judged the same person (compare, suggestions, matching).
SAME_PERSON = 0.56
# A face joins a cluster/person whose centroid is within this distance (clustering, incremental).
ATTACH_DISTANCE = 0.54
# ... and only when the second-nearest centroid is at least this much further.
ATTACH_MARGIN = 0.05
# Clusters whose centroids are closer than this are merged (0 = never).
MERGE_DISTANCE = 0.0
# HDBSCAN members further than this from their cluster's centroid become noise (0 = never).
EJECT_DISTANCE = 0.6
# Leftover faces (noise) closer than this to each other, and not from one photo, form a small
# person of their own (two or three photos of someone are a person too). Well inside the
# distance where 1 in 10 000 different-person pairs match (0.505); see PAIR_DISTANCE above.
PAIR_DISTANCE = 0.43
# A cluster is cut in two (average linkage) when fewer than this share of the pairs across the
# cut are within SAME_PERSON (one person's pairs: 79 %; strangers': 0.08 %). See SPLIT_SHARE in
# the module docstring for the measurement.
SPLIT_SHARE = 0.2
# Relative to each person's own spread (the median distance of its faces to its centroid): a
# member further than SPREAD_RATIO times that (the others' median) is not that person's, and a
# leftover or new face joins a person only within it. Dense populations have tight people, so the
# limit tightens with them where a global distance chains strangers. See SPREAD_RATIO above.
SPREAD_RATIO = 1.5
# A leftover or new face joins a person only when at least this share of its ATTACH_NEIGHBOURS
# nearest faces are that person's: its own neighbourhood says so (rank-order evidence), not only
# the distance to a centroid. A stranger between people has a mixed neighbourhood.
ATTACH_SHARE = 0.6
ATTACH_NEIGHBOURS = 5
# The merge step compares the pairs across two clusters with each cluster's own pairs: this
# percentile of its within-cluster pair distances (capped at SAME_PERSON) is "as alike as its
# own photos". See MERGE_SHARE above.
OWN_PAIRS_PERCENTILE = 90
# Two clusters are joined when at least this share of the pairs across them are within
# SAME_PERSON: a majority, as for one person's own pairs (79 %), never strangers' (0.08 %). Kept
# well above SPLIT_SHARE, so a cut cluster is not joined again. See MERGE_SHARE above.
MERGE_SHARE = 0.5
# `find`: the verdict on a face that may belong to nobody in the catalog. Measured with
# `uv run python bench/bench_find.py verdicts` (../shared/faces split by photo; 8 people left out
# as strangers; people named after the majority label of their faces): "known" at
# FIND_KNOWN_DISTANCE to the person's centroid (and ATTACH_MARGIN before the runner-up) came out
# for 91.7 % of in-catalog faces, right for 99.4 % of them, and took 0.7 % of strangers; with
# 0.55 strangers got 4.9 %. "probably" adds faces within ATTACH_DISTANCE of the centroid or
# FIND_PROBABLY_FACE of one of the person's faces (the 1e-4 false-match point): known or
# probably then covers 93.8 % right, 1.4 % wrong, strangers 11.1 % (with centroid 0.60
# instead: 94.2 % / 2.6 % / 66 %).
FIND_KNOWN_DISTANCE = 0.50
FIND_PROBABLY_FACE = 0.51
