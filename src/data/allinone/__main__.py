"""``python -m src.data.allinone FOLDER SIZE [DRAWS]``: mean input PSNR per category (the severity
table of :mod:`src.data.allinone`'s docstring) over every image of FOLDER fitted to SIZE x SIZE."""

from __future__ import annotations

import sys

from src.data.allinone.pairs import input_psnr_table


def _main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        print("usage: python -m src.data.allinone FOLDER SIZE [DRAWS]", file=sys.stderr)
        raise SystemExit(2)
    folder, size = argv[0], int(argv[1])
    draws = int(argv[2]) if len(argv) == 3 else 3
    for category, value in input_psnr_table(folder, size, draws).items():
        print(f"{category:<14s}  {value:6.2f}")


if __name__ == "__main__":
    _main(sys.argv[1:])
