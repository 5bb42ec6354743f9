"""aiokafka's compiled record reader in kafka-python's fetcher (daemon/kafka_records.py) hands on the
records kafka-python's own loop does: generated fetches of several batches (every codec, headers,
null keys and values, log-append time, control and legacy batches), compared record for record."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import Fetcher
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from driftwarden.daemon import kafka_records

TIMESTAMP_TYPE, CONTROL = 0x08, 0x20  # attribute bits of a v2 batch (log-append time, control batch)

record = st.tuples(
    st.none() | st.binary(max_size=20),  # key
    st.none() | st.binary(max_size=300),  # value
    st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=10)), max_size=2),  # headers
    st.integers(0, 10**6),  # ms after the batch's first
)
batch = st.tuples(
    st.sampled_from(["v2", "v2", "v2", "legacy"]),
    st.integers(0, 4),  # codec: none, gzip, snappy, lz4, zstd
    st.lists(record, min_size=1, max_size=12),
    st.booleans(),  # log-append time (v2)
    st.booleans(),  # a control batch (v2): a transaction marker, not handed on
)


@pytest.fixture
def installed() -> Iterator[None]:
    assert kafka_records.install(), "aiokafka's reader is installed with the fast extra and reads alike here"
    try:
        yield
    finally:
        kafka_records.uninstall()


def _v2(base: int, codec: int, records: list[tuple[bytes | None, bytes | None, list, int]],
        log_append: bool, control: bool) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=control, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, (key, value, headers, delta) in enumerate(records):
        builder.append(i, timestamp=1_700_000_000_000 + delta, key=key, value=value, headers=headers)
    buffer = bytearray(builder.build())
    struct.pack_into(">q", buffer, 0, base)  # the base offset (outside the CRC)
    attributes = struct.unpack_from(">h", buffer, 21)[0] | (TIMESTAMP_TYPE if log_append else 0)
    struct.pack_into(">h", buffer, 21, attributes | (CONTROL if control else 0))
    struct.pack_into(">I", buffer, 17, calc_crc32c(memoryview(buffer)[21:]))
    return bytes(buffer)


def _legacy(base: int, codec: int, records: list[tuple[bytes | None, bytes | None, list, int]]) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=min(codec, 3), batch_size=1 << 20)
    for i, (key, value, _, delta) in enumerate(records):
        builder.append(base + i if not min(codec, 3) else i, timestamp=1_700_000_000_000 + delta, key=key, value=value)
    buffer = bytearray(builder.build())
    if min(codec, 3):  # a compressed legacy batch: its wrapper's offset is the last inner record's
        struct.pack_into(">q", buffer, 0, base + len(records) - 1)
    return bytes(buffer)


def _fetch(batches: list[tuple[str, int, list, bool, bool]]) -> bytes:
    out, base = [], 0
    for kind, codec, records, log_append, control in batches:
        out.append(_v2(base, codec, records, log_append, control) if kind == "v2" else _legacy(base, codec, records))
        base += len(records)
    return b"".join(out)


def _read(buffer: bytes) -> tuple[list[tuple], int, int]:
    tp = TopicPartition("t", 3)
    part = Fetcher.PartitionRecords(0, tp, MemoryRecords(buffer))
    got = part.take()
    fields = [(r.topic, r.partition, r.leader_epoch, r.offset, r.timestamp, r.timestamp_type, r.key, r.value,
               list(r.headers), r.checksum, r.serialized_key_size, r.serialized_value_size, r.serialized_header_size)
              for r in got]
    return fields, part.next_fetch_offset, part.records_read


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(batch, min_size=1, max_size=5))
def test_the_compiled_reader_hands_on_what_kafka_python_does(batches: list[tuple[str, int, list, bool, bool]]) -> None:
    buffer = _fetch(batches)
    theirs = _read(buffer)
    assert kafka_records.install()
    try:
        ours = _read(buffer)
    finally:
        kafka_records.uninstall()
    assert ours == theirs


def test_it_is_kafka_python_s_loop_again_once_uninstalled() -> None:
    stock = Fetcher.PartitionRecords._unpack_records
    assert kafka_records.install() and Fetcher.PartitionRecords._unpack_records is not stock
    assert kafka_records.install()  # idempotent
    kafka_records.uninstall()
    assert Fetcher.PartitionRecords._unpack_records is stock


def test_a_corrupt_batch_fails_its_crc_check_as_with_kafka_python(installed: None) -> None:
    from kafka.errors import CorruptRecordError

    buffer = bytearray(_fetch([("v2", 0, [(b"k", b"value", [], 0)], False, False)]))
    buffer[-2] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="failed crc check"):
        Fetcher.PartitionRecords(0, TopicPartition("t", 0), MemoryRecords(bytes(buffer))).take()
