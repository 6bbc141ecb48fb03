"""`python -m broker` / `comlog-broker`: run the broker until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import sys

import trio

from broker.config import configure_logging, parse_config
from broker.data_dir_lock import DataDirInUse
from broker.metadata import MetadataError
from log import LogError

logger = logging.getLogger("broker")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    configure_logging(config)
    from broker.server import Broker, ShutdownIncomplete  # after logging is set up, so start-up messages are formatted

    try:
        broker = Broker(config)
        trio.run(broker.serve)
    except ShutdownIncomplete:
        return 1  # stopped; the log says what may not be on disk
    except DataDirInUse as exc:
        logger.error("cannot start: %s", exc)
        return 1
    except (MetadataError, LogError) as exc:
        logger.error("cannot open the data directory: %s", exc)
        return 1
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
