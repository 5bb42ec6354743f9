"""``driftwarden simulate``: synthetic traffic (daemon/simulate.py) produced to Kafka."""

from __future__ import annotations

import argparse
import time

from kafka import KafkaProducer

from driftwarden.daemon.simulate import Scenario, messages, write_reference


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    return Scenario(
        model_id=args.model_id,
        events=args.events,
        label_delay=args.label_delay,
        covariate_shift_at=args.covariate_shift_at,
        concept_drift_at=args.concept_drift_at,
        malformed_every=args.malformed_every,
        model_version=args.model_version,
        seed=args.seed,
    )


def produce_scenario(
    bootstrap_servers: str, scenario: Scenario, predictions_topic: str = "predictions", outcomes_topic: str = "outcomes"
) -> int:
    """Produce every message of ``scenario``; returns the count. Keyed by model id."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","), linger_ms=20, batch_size=256 * 1024, acks=1,
        compression_type=None,
    )
    topics = {"predictions": predictions_topic, "outcomes": outcomes_topic}
    count = 0
    try:
        for topic, key, value in messages(scenario):
            producer.send(topics[topic], key=key, value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def produce(args: argparse.Namespace) -> int:
    scenario = scenario_from_args(args)
    if args.write_reference:
        print(f"reference: {write_reference(args.write_reference, scenario)}")
    started = time.perf_counter()
    count = produce_scenario(args.bootstrap_servers, scenario, args.predictions_topic, args.outcomes_topic)
    elapsed = time.perf_counter() - started
    print(f"produced {count} messages for model {scenario.model_id} in {elapsed:.1f}s ({count / elapsed:,.0f}/s)")
    return 0
