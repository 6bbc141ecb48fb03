"""The one exception for malformed input, and Kafka's error code table."""


class ProtocolError(Exception):
    """Anything malformed: raised by every decoder in this package, never IndexError & co."""
