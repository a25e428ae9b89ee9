"""Face-distance thresholds on dlib ResNet embeddings (Euclidean distance between 128-d vectors).

dlib documents 0.6 as its same-person threshold (99.38 % on LFW). Clustering calibration on
labelled photos (``photocluster eval``) refines the values below; see README "How thresholds
were chosen".
"""

from __future__ import annotations

# Below this distance two faces are judged the same person (compare, suggestions, matching).
SAME_PERSON = 0.6
