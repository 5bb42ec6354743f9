"""Fresh topics on the test broker, named apart per test (several tests share one broker)."""

from __future__ import annotations

import uuid

from kafka.admin import KafkaAdminClient, NewTopic


def topic_pair(bootstrap: str) -> tuple[str, str]:
    """A new predictions and outcomes topic, one partition each: ``(predictions, outcomes)``."""
    suffix = uuid.uuid4().hex[:8]
    topics = (f"predictions-{suffix}", f"outcomes-{suffix}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        admin.close()
    return topics
