"""Kafka wire protocol codec: bytes in, Python values out, and back. Sans-IO."""
