"""A ratings table with planted taste groups, for tests and the demo: ``python -m mltoolkit.recommend.synthetic``.

Users of group g rate items of group g highly (4-5) and, rarely, other groups' items low (1-2),
so a working recommender must suggest in-group items. Ids are strings (``u12``, ``g0-item3``) to
exercise the id mapping.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mltoolkit.core.contract import Example


def ratings_table(
    users: int = 120, items_per_group: int = 15, groups: int = 2, per_user: int = 8, noise: float = 0.05, seed: int = 0
) -> list[tuple[str, str, int, int]]:
    """Rows ``(user, item, rating, timestamp)``; user ``u{i}`` belongs to group ``i % groups``."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        group = user % groups
        chosen = rng.choice(items_per_group, size=min(per_user, items_per_group), replace=False)
        for t, item in enumerate(chosen):
            rows.append((f"u{user}", f"g{group}-item{item}", int(rng.integers(4, 6)), 1_000_000 + 100 * user + t))
        if rng.random() < noise * per_user:
            other = (group + 1 + int(rng.integers(groups - 1))) % groups
            item = int(rng.integers(items_per_group))
            rows.append((f"u{user}", f"g{other}-item{item}", int(rng.integers(1, 3)), 1_000_000 + 100 * user + 99))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    path.write_text("user,item,rating,timestamp\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def tiny_example(folder: Path) -> Example:
    """40 users of two taste groups; EASE with a 2-trial --tune, so that --resume has one more trial to run."""
    data = write_csv(Path(folder) / "ratings.csv", ratings_table(users=40, items_per_group=8, per_user=5))
    users = ["u0", "u1", "nobody"]  # an unknown user gets the popular items
    return Example(
        train_args=[str(data), "--model", "ease", "--tune", "--tune-trials", "2", "--threads", "1"],
        predict_args=["--users", ",".join(users)],
        records=users,
        more_args=["--tune-trials", "3"],
        evaluate_args=[],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--items-per-group", type=int, default=15)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--per-user", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sys.stdout.write("user,item,rating,timestamp\n")
    for row in ratings_table(args.users, args.items_per_group, args.groups, args.per_user, seed=args.seed):
        sys.stdout.write(",".join(map(str, row)) + "\n")


if __name__ == "__main__":
    main()
