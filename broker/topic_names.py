"""Kafka's rules for topic names."""

import re

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
MAX_TOPIC_NAME_LENGTH = 249


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would reject this topic name, or None if it is legal."""
    if not name:
        return "topic name is empty"
    if name in (".", ".."):
        return f"topic name cannot be '{name}'"
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"
    if not _LEGAL_TOPIC.fullmatch(name):
        return f"topic name '{name}' has characters other than ASCII alphanumerics, '.', '_' and '-'"
    return None
