"""`python -m broker` / `comlog-broker`: run the broker until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import trio

from broker.config import BrokerConfig, configure_logging, parse_config
from broker.data_dir_lock import DataDirInUse
from broker.metadata import MetadataError
from broker.sasl import SaslConfigError
from broker.tls import TlsConfigError
from log import LogError

logger = logging.getLogger("broker")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    configure_logging(config)
    from broker.server import ShutdownIncomplete  # after logging is set up, so start-up messages are formatted

    try:
        trio.run(serve_until_signalled, config)
    except ShutdownIncomplete:
        return 1  # stopped; the log says what may not be on disk
    except DataDirInUse as exc:
        logger.error("cannot start: %s", exc)
        return 1
    except (MetadataError, LogError) as exc:
        logger.error("cannot open the data directory: %s", exc)
        return 1
    except (SaslConfigError, TlsConfigError) as exc:
        logger.error("cannot start: %s", exc)
        return 1
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    return 0


async def serve_until_signalled(config: BrokerConfig) -> None:
    """Open the broker and serve until SIGINT or SIGTERM, which stop it gracefully."""
    from broker.server import Broker

    async with Broker(config) as broker, trio.open_nursery() as nursery:
        # Installed before serve() logs the ready line, so a SIGTERM sent as soon as the broker
        # says it is ready stops it cleanly instead of killing it.
        await nursery.start(_stop_on_signal, broker)
        await broker.serve()
        nursery.cancel_scope.cancel()


async def _stop_on_signal(broker, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    # The first signal stops the broker; the handlers go with this task, so a second one acts as
    # it would without them.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            logger.info("received %s", signal.Signals(signum).name)
            broker.stop()
            return


if __name__ == "__main__":
    sys.exit(main())
