"""Face-distance thresholds on the embeddings (Euclidean distance between 128-d vectors).

The embedding is dlib's ResNet descriptor averaged over the aligned face and its mirror image
(``encoder.MODEL_ID``). Pair figures: the scan of ``../shared/faces`` at the default detect
size (1 559 faces; the labelled face of 1 364 photos of 54 people; 27 415 same-person and
902 151 different-person pairs), with ``uv run python bench/tune_cluster.py``:

* dlib documents 0.6 (99.38 % on LFW). On these photos 0.6 accepts 0.42 % of different-person
  pairs. The distance that accepts 0.1 % (false-match rate 1e-3) is 0.566 (80.2 % of
  same-person pairs); 1e-4 is at 0.505 (63.3 %). ``SAME_PERSON`` is 0.56, just inside the 1e-3
  point: 0.076 % of stranger pairs and 78.8 % of one person's pairs are that close, which suits
  a yes/no verdict (`compare`) and suggestions. (Plain dlib embeddings, without the mirror
  image: the 1e-3 point was 0.58 with 78.4 %, the 1e-4 point 0.52 with 59.8 %.)
* The clustering steps decide relative to each person and each face's neighbourhood; the
  global distances below are only caps. Chosen on two sets that differ the way libraries do:
  ``../shared/faces`` (no strangers) and ``../shared/lfw-dev`` (100 people among 500 one-photo
  strangers, several populations; dense: its 1e-3 false-match point is 0.517, not 0.566), with
  ``uv run python bench/tune_cluster.py --set faces=...:../shared/faces --set
  lfw=...:../shared/lfw-dev``, scoring the face most like each label. Defaults: pairwise
  precision/F 1.000/0.943 (faces) and 0.980/0.943 (lfw-dev); with the round-1 global rules
  0.998/0.961 and 0.848/0.903 (faces clustered in one order: clustering.cluster_embeddings).
  The per-parameter figures below are that scan's; a second scan of the same photos measured
  lfw-dev 0.988/0.947 at the same defaults (differences of that size are noise), and the
  README's "How thresholds were chosen" has the whole sensitivity table on that second scan.
* ``SPREAD_RATIO`` 1.5: a member further from its centroid than 1.5x the median of the others
  is ejected, and a leftover face joins only within 1.5x the person's median (or by mutual
  neighbours, ATTACH_MUTUAL). lfw-dev P/F: off 0.885/0.918, 1.4 0.995/0.931, 1.5 0.980/0.943,
  1.6 0.955/0.944, 1.8 0.902/0.922; faces F: off 0.960, 1.4 0.923, 1.5 0.943, 1.6 0.951. The
  one parameter that matters; relative, so one value holds for tight (lfw-dev) and loose
  (decades of one celebrity) people.
* ``ATTACH_SHARE`` 0.6 of ``ATTACH_NEIGHBOURS`` 5: at least 3 of a leftover face's 5 nearest
  faces must be the person's. lfw-dev P/F: off 0.970/0.932, 0.4 0.976/0.943, 0.8 0.988/0.944,
  1.0 0.993/0.942; faces F 0.944 / 0.943 / 0.942 / 0.935. A majority of its neighbourhood.
* ``ATTACH_MUTUAL`` 2: beyond the spread, a leftover face still joins when two of those nearest
  faces count it among their own five nearest (mutual nearest neighbours). lfw-dev P/F: off
  0.980/0.935, 1 0.976/0.944, 2 0.980/0.943, 3 0.980/0.939; faces F 0.943 / 0.945 / 0.943 /
  0.943. ``MUTUAL_MIN_FACES`` (500): below it, in small catalogs, five nearest faces are a large
  part of the catalog and a stranger is in everyone's list (bench/small_catalogs.py with three
  strangers: precision 0.993 -> 0.989 when counted there).
* ``ATTACH_DISTANCE`` 0.54 (face to *centroid*) is now a cap behind the spread limit: 0.50-0.60
  change F by at most 0.001 on either set; off (no attach) 0.934 / 0.926. ``ATTACH_MARGIN``
  0.05 (runner-up at least that much further): 0 gives F 0.945 / 0.946 at precision 0.978 on
  lfw-dev, 0.1 costs 0.013 F on faces; kept as a guard for a face between two people.
* ``EJECT_DISTANCE`` 0.6: an HDBSCAN member further than this from its centroid is noise
  whatever the spread (0.55-0.7 change nothing on either set).
* ``PAIR_DISTANCE`` 0.43: last, faces still left over this close, each among the other's two
  nearest faces, form a small person. Off changes neither F (faces unassigned 2.2 % -> 3.5 %;
  lfw-dev strangers alone 98.0 % -> 98.8 %); 0.5 leaves 94 % of lfw-dev's strangers alone.
* ``SPLIT_SHARE`` 0.1: a cluster is cut when fewer than this share of the pairs across the cut
  are within SAME_PERSON, or (two halves of four or more faces) within the halves' own
  ``OWN_PAIRS_PERCENTILE`` pair distance. Off: lfw-dev precision 0.965; 0.3 0.985/0.936. It
  was 0.2 until families among strangers were measured with thirty draws instead of five:
  at 0.1, 5 and 10 of lfw-dev's people among all its strangers (``bench/crowd.py``, three
  seeds of 30 draws) P 0.808-0.864 -> 0.888-0.914 and 0.847-0.897 -> 0.886-0.919, 30 and 60
  within 0.004 (five draws had said 10 / 30 / 60 people 0.938 / 0.943 / 0.975 -> 0.933 /
  0.939 / 0.973); whole lfw-dev P/F 0.986/0.946 -> 0.986/0.951 (Lance Armstrong's two halves,
  whose cross pairs are as close as their own at 0.167, stay one person); ../shared/faces
  unchanged; small catalogs of lfw-dev's people P 0.998 -> 0.995, with three strangers 0.991
  -> 0.990; synthetic 100 000 lfw-dev-based F 0.861 -> 0.866, faces-based 0.950 both. Where
  a tight person and a clump of one population's strangers around them form one cluster, the
  cut at 0.2 left the clump as a "person" of 16-19 strangers that passes the verification
  test; uncut, the whole fails it (the person's photos are left over too: precision first).
  The relative half of the test keeps lfw-dev at 0.994 precision with min samples 4, where
  HDBSCAN chains twelve people (0.741 without it).
* ``MERGE_SHARE`` 0.5: two clusters join when at least half their cross pairs are within the
  smaller of their own ``OWN_PAIRS_PERCENTILE`` pair distances (capped at SAME_PERSON). On the
  two real sets it changes nothing at the defaults (0-0.7); it mends the synthetic 20-photo
  people HDBSCAN halves (bench/bench_cluster_scale.py). With SAME_PERSON alone as the limit
  (round 1) it chained lfw-dev's East-Asian men into one person (precision 0.853 overall;
  different people's nearby clusters had up to 100 % of cross pairs within 0.56, but at most
  17 % within their own 90th percentile); with the larger of the two limits, a cluster that
  kept a stranger joined another person at min samples 5 (precision 0.930; now 0.979).
* ``MERGE_DISTANCE`` (centroid to centroid) is off: at 0.40 lfw-dev precision falls to 0.65.
* ``VERIFY_SHARE`` 0.5: a cluster is a person only when at least half of its face pairs are
  within SAME_PERSON (the pairs verification would call one person); otherwise its faces are
  left unassigned. It changes nothing on the two whole sets (143 of their 144 people with 3+
  photos have 54 % of their pairs within it or more). It is for the library of a few people
  among many strangers: with 10 of lfw-dev's people among its 496 one-photo strangers, HDBSCAN
  makes "people" of 27 different East-Asian men (median pair distance 0.58) and of 14 other
  strangers, and precision is 0.554; with the step, 0.914 (30 people: 0.924 -> 0.937; 60:
  0.968 -> 0.974; ``bench/crowd.py`` with five draws each). Thirty draws, with the separation
  test on and today's split share: 5 / 10 / 30 / 60 people P 0.285 / 0.519 / 0.892 / 0.961
  without it, 0.914 / 0.913 / 0.942 / 0.965 with it (README, "A family's library").
* ``SEPARATION`` 0.9: after the attach step, a cluster is a person only when its faces are
  nearer one another than to the faces around them: per face, the distance to its nearest face
  of the cluster over the distance to its nearest other face (among its ATTACH_NEIGHBOURS
  nearest), the median over the cluster at most 0.9. A silhouette-like test relative to each
  face's surroundings: one person's photos are each other's nearest (591 clusters of one real
  person on both sets and 15 lfw-dev families: medians at most 0.88, most 0), a clump of
  one-photo strangers of a dense population is a patch of a crowd (31 of 38 clumps above 0.9;
  ``bench/crowd.py --separation-report``), and it passes the verification test when most of
  its pairs are within SAME_PERSON. Whole lfw-dev P/F
  0.980/0.943 -> 0.986/0.946 (strangers left alone 96.6 % -> 98.0 %; at today's split share
  0.986/0.951 with or without it: it matters in families), faces unchanged; 10
  people among all lfw-dev strangers 0.914 -> 0.938 (30: 0.937 -> 0.943, 60: 0.973 -> 0.975;
  five draws each; thirty draws at today's split share, with 5 / 10 / 30 / 60 people: 0.893 ->
  0.914, 0.909 -> 0.913, 0.939 -> 0.942, 0.963 -> 0.965);
  0.85 the same, 0.95 most of the gain lost, 1.0 none of it (README's sensitivity table).
* ``ATTACH_POSTERIOR`` 0.5: after the rule steps, a face still in no person joins the person
  among its nearest faces when the library's own people say it is more likely theirs than not
  (``people.posterior``: a likelihood ratio learnt from looking up their faces, and the share of
  the faces left over near a person that are people's, estimated from those faces). 0.5
  because a face's two errors cost the same: a wrong face is one correction, a face left out
  one assignment. Where strangers are many the share is near zero and nothing joins: whole
  lfw-dev (0.016 of 527), and 10, 30 or 60 of its people among all its strangers
  (``bench/crowd.py``), unchanged at 0.3-0.9. Where they are few, people's odd photos come in:
  lfw-dev's 100 people alone (``bench/crowd.py --people 100 --strangers 0``) P/F 1.000/0.954
  -> 1.000/0.980 (0.3 0.986, 0.7 0.972, 0.9 0.955); with 100 strangers 0.996/0.951 ->
  0.994/0.960 (0.3 0.990/0.967), with 250 0.991/0.947 -> 0.989/0.947; faces 1.000/0.943 ->
  0.997/0.966 (0.3 0.994/0.971, 0.7 0.998/0.960, 0.9 1.000/0.947). Small catalogs (under
  ``MUTUAL_MIN_FACES``) are left as the rules leave them.
"""

from __future__ import annotations

# Below this distance two faces are judged the same person (compare, suggestions, matching).
SAME_PERSON = 0.56
# A face joins a cluster/person only when its centroid is within this distance (a cap: the
# person's own spread, SPREAD_RATIO, usually binds first; clustering, incremental matching).
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
# cut are within SAME_PERSON, or, for two halves of four faces or more, within the halves' own
# OWN_PAIRS_PERCENTILE pair distance. See SPLIT_SHARE in the module docstring.
SPLIT_SHARE = 0.1
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
# ... or, beyond the spread, when at least this many of those nearest faces count the face among
# their own ATTACH_NEIGHBOURS nearest (mutual nearest neighbours). See ATTACH_MUTUAL above.
ATTACH_MUTUAL = 2
# ... counted only in a catalog of at least this many faces, where ATTACH_NEIGHBOURS faces are
# at most 1 % of it (in a small catalog every nearby face is in everyone's few nearest).
MUTUAL_MIN_FACES = 100 * ATTACH_NEIGHBOURS
# The split and merge steps compare the pairs across two groups with each group's own pairs:
# this percentile of its own pair distances (capped at SAME_PERSON) is "as alike as its own
# photos". See MERGE_SHARE above.
OWN_PAIRS_PERCENTILE = 90
# Two clusters are joined when at least this share of the pairs across them are as close as
# their own photos (OWN_PAIRS_PERCENTILE, capped at SAME_PERSON): a majority. Kept well above
# SPLIT_SHARE, so a cut cluster is not joined again. See MERGE_SHARE above.
MERGE_SHARE = 0.5
# A cluster is kept as one person only when at least this share of its face pairs are within
# SAME_PERSON: most of a person's photos verify as that person. See VERIFY_SHARE above.
VERIFY_SHARE = 0.5
# ... and only when its faces are nearer one another than to the faces around them: the median
# over its faces of (distance to its nearest face of the cluster / to its nearest other face) at
# most this. See SEPARATION above.
SEPARATION = 0.9
# After the rule steps: a face still in no person joins the person among its nearest faces when
# the library's own people say it is more likely theirs than not (posterior at least this;
# people.posterior).
# See ATTACH_POSTERIOR above.
ATTACH_POSTERIOR = 0.5
# `find`: the verdict on a face that may belong to nobody in the catalog, asked as `cluster`
# asks before a face joins a person (photocluster/people/find.py has the rule). Measured with
# `uv run python bench/bench_find.py verdicts --catalog DB ../shared/faces --catalog DB
# ../shared/lfw-dev` (each set split by photo; people whose photos all fall out are strangers):
# "known" needs the centroid within FIND_KNOWN_DISTANCE and SPREAD_RATIO x the person's spread,
# ATTACH_MARGIN before the runner-up, and FIND_KNOWN_SHARE of the face's ATTACH_NEIGHBOURS
# nearest catalog faces theirs: lfw-dev strangers called known 2.4 % (10.6 % with the round-1
# global rule), in-catalog faces right 91.1 %; ../shared/faces right 99.6 %. FIND_KNOWN_SHARE is
# 4 of 5 ("probably": ATTACH_SHARE, 3 of 5): 3 of 5 called 15 of lfw-dev's 329 strangers known,
# 4 of 5 called 8.
FIND_KNOWN_DISTANCE = 0.50
FIND_KNOWN_SHARE = 0.8
