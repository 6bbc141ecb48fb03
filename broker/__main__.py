"""`python -m broker`: the broker's command line."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("comlog: the broker is not built yet; the log engine (log/) and protocol codec (protocol/) are.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
