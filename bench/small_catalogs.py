"""Clustering small catalogs: a few people with a few photos each, the case HDBSCAN gets wrong.

With few faces, HDBSCAN's excess-of-mass selection often keeps two or three people as one
cluster. This draws many small catalogs from a scanned labelled catalog (``--db``/``--root``:
../shared/faces, or ../shared/lfw-dev): ``k`` random people x ``n`` random labelled photos each,
from the people with at least ``max(n, --min-photos)`` labelled photos, ``--trials`` times per
(k, n). Each labelled photo counts with its face most like its label's one-face photos
(``evaluate.nearest_to_label``, as `eval` scores), each its own photo (no cannot-link).
``--strangers N`` adds N one-photo strangers to every catalog, as real small libraries have:
one labelled face each of N other people of the set, all different (on lfw-dev mostly its
one-photo people). Each catalog is clustered with the defaults, with one step off
(``--param``, default ``split_share``, set to 0) and with every ``--values`` value of it (e.g.
``--param merge_share --values 0.4 0.6``).

Prints, per (k, n) and over all catalogs, mean pairwise precision and F (each stranger its own
identity), in how many catalogs a cluster mixed people (holds faces of two identities) and in
how many badly (pairwise precision < 0.9); over all, also the share of strangers left alone
(unassigned, or alone in a cluster). Asserts nothing.

    uv run python bench/small_catalogs.py --db /tmp/faces.sqlite3 --root ../shared/faces
    uv run python bench/small_catalogs.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev
    uv run python bench/small_catalogs.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev \\
        --strangers 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import DEFAULT_DB, DEFAULT_ROOT, labelled_set

from photocluster.evaluation.evaluate import pairwise_prf, people_and_strangers
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.params import ClusterParams


def mixes(truth: np.ndarray, labels: np.ndarray) -> bool:
    """Whether a cluster holds faces of two identities."""
    held = labels >= 0
    pairs = np.unique(np.stack([labels[held], truth[held]], axis=1), axis=0)
    return len(pairs) > len(np.unique(labels[held]))


Score = tuple[float, float, bool, int, int]  # F, P, mixed at all, strangers, left alone


def settings_to_try(param: str, values: list[float]) -> dict[str, ClusterParams]:
    """The defaults, ``param`` off (0) where 0 turns its step off, and ``param`` at ``values``.
    ``param`` may name several steps joined by ``+`` (``verify_share+separation``): one row
    with all of them off, and no values."""
    base = ClusterParams()
    settings: dict[str, ClusterParams] = {}
    names = param.split("+")
    unknown = [n for n in names if n not in {f.name for f in dataclasses.fields(base)}]
    if unknown:
        raise SystemExit(f"no clustering parameter {', '.join(unknown)}")
    try:
        off = {name: type(getattr(base, name))(0) for name in names}
        settings[f"{param} off"] = dataclasses.replace(base, **off)
    except ValueError:
        pass  # not a step that 0 turns off (e.g. min_samples)
    if len(names) > 1:
        if values:
            raise SystemExit(f"--values is for one parameter, not {param}")
        settings["default"] = base
        return settings
    settings[f"default ({getattr(base, param):g})"] = base
    kind = type(getattr(base, param))
    for value in values:
        settings[f"{param} {value:g}"] = dataclasses.replace(base, **{param: kind(value)})
    return settings


def score_cell(
    xl: np.ndarray,
    truth: np.ndarray,
    people: np.ndarray,
    k: int,
    n: int,
    args: argparse.Namespace,
    settings: dict[str, ClusterParams],
) -> dict[str, list[Score]]:
    """``args.trials`` catalogs of ``k`` of ``people`` x ``n`` photos (plus ``args.strangers``
    one-photo strangers), each clustered with every setting: the scores per setting."""
    rng = np.random.default_rng(1000 * k + n)
    per = np.bincount(truth)
    cell: dict[str, list[Score]] = {name: [] for name in settings}
    for _ in range(args.trials):
        chosen = rng.choice(people, k, replace=False)
        pick = [rng.choice(np.flatnonzero(truth == p), n, replace=False) for p in chosen]
        if args.strangers:
            others = np.setdiff1d(np.arange(len(per)), chosen)
            for s in rng.choice(others, args.strangers, replace=False).tolist():
                pick.append(rng.choice(np.flatnonzero(truth == s), 1))
        faces = np.concatenate(pick)
        t = truth[faces]
        for name, params in settings.items():
            labels = cluster_embeddings(xl[faces], params, np.arange(len(faces)))
            q = pairwise_prf(t, labels)
            _, strangers = people_and_strangers(t, labels)
            cell[name].append(
                (q.f, q.precision, mixes(t, labels), strangers.count, strangers.left_alone)
            )
    return cell


def print_summary(scores: dict[str, list[Score]]) -> None:
    print("all (mixed: catalogs with a cluster holding two identities; badly: pairwise P < 0.9):")
    for name, got in scores.items():
        a = np.array(got, dtype=float)
        alone = (
            f"  strangers left alone {a[:, 4].sum() / a[:, 3].sum():.1%}" if a[:, 3].sum() else ""
        )
        print(
            f"  {name:<20} mean F {a[:, 0].mean():.3f}  mean P {a[:, 1].mean():.3f}"
            f"  mixed in {int(a[:, 2].sum())} of {len(a)} (badly {int((a[:, 1] < 0.9).sum())})"
            + alone
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument("--people", type=int, nargs="+", default=[2, 3, 5, 10])
    ap.add_argument("--photos", type=int, nargs="+", default=[4, 5, 8])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--min-photos", type=int, default=6)
    ap.add_argument("--strangers", type=int, default=0, help="one-photo strangers per catalog")
    ap.add_argument(
        "--param",
        default="split_share",
        help="the ClusterParams field to vary (0 = off, for a step's share)",
    )
    ap.add_argument("--values", type=float, nargs="*", default=[0.2, 0.3])
    args = ap.parse_args()
    lab = labelled_set(args.db, os.path.abspath(args.root))
    xl, truth = lab.x[lab.idx], lab.truth
    per = np.bincount(truth)
    settings = settings_to_try(args.param, args.values)
    scores: dict[str, list[Score]] = {name: [] for name in settings}
    eligible = np.flatnonzero(per >= args.min_photos)
    print(
        f"{os.path.basename(os.path.normpath(args.root))}: {len(eligible)} people with >="
        f" {args.min_photos} labelled photos, {int((per == 1).sum())} with one;"
        f" {args.trials} trials; {args.strangers} strangers per catalog"
    )
    print(f"{'people x photos':<16}" + "".join(f"{name:>32}" for name in settings))
    for k in args.people:
        for n in args.photos:
            people = np.flatnonzero(per >= max(n, args.min_photos))
            if len(people) < k:
                print(f"{k:>3} x {n:<10}   (only {len(people)} people with {n} photos)")
                continue
            line = f"{k:>3} x {n:<10}"
            for name, got in score_cell(xl, truth, people, k, n, args, settings).items():
                a = np.array(got, dtype=float)
                line += (
                    f"   F {a[:, 0].mean():.3f} P {a[:, 1].mean():.3f}"
                    f" mixed {int(a[:, 2].sum()):2d} ({int((a[:, 1] < 0.9).sum()):2d})"
                )
                scores[name].extend(got)
            print(line, flush=True)
    print_summary(scores)


if __name__ == "__main__":
    main()
