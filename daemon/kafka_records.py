"""kafka-python's records read by aiokafka's compiled reader, where it can be used.

kafka-python parses each record of a fetch in Python: ~4 us a record here, most of the
kafka-python path's time (its consumer alone read ~245k records/s, the daemon's loop ~250k;
bench/kafka_run.py). aiokafka ships a compiled (Cython) reader of the same record batches
(format v2, Kafka 0.11+). :func:`install` has kafka-python's fetcher read v2 batches with it
(``Fetcher.PartitionRecords._unpack_records``) and hand on the same ``ConsumerRecord``s.

Only the record loop changes. Everything else is kafka-python's: its batch object reads the
batch header (CRC check, leader epoch, control batches, the next offset), legacy (v0/v1)
batches, deserializers and ``isolation_level: read_committed`` go through kafka-python's own
loop, and so does a batch aiokafka cannot read (its error is kafka-python's then). A
compressed batch is decompressed by aiokafka (cramjam, which python-snappy brings).

Private code of two libraries, so it is guarded: kafka-python 3.0 only (the version this loop
is written against), and a batch of every codec built by kafka-python must read the same
both ways (:func:`_reads_alike`), else kafka-python's loop stays. ``bytes_read`` (kafka-python's
fetch metrics) counts a batch's bytes rather than each record's. tests/daemon/test_kafka_records.py
compares the two loops on generated batches (codecs, headers, null keys and values, log-append
time, control and legacy batches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

_installed: Callable[..., Iterator[Any]] | None = None  # kafka-python's own loop, while ours is in its place
_refused = False  # the reader is missing or reads differently: decided once (a consumer is built at every reconnect)


def available() -> bool:
    """aiokafka's compiled reader can be used with this kafka-python."""
    return _reader() is not None and _fetcher_class() is not None


def install() -> bool:
    """Read v2 record batches with aiokafka's reader from now on (this process); True if it is in place."""
    global _installed, _refused
    if _installed is not None:
        return True
    if _refused:
        return False
    reader, fetcher = _reader(), _fetcher_class()
    if reader is None or fetcher is None:
        _refused = True
        return False
    original = fetcher.PartitionRecords._unpack_records
    if not _reads_alike(reader):
        log.warning("aiokafka's record reader gives other records than kafka-python's here: kafka-python's is kept")
        _refused = True
        return False
    fetcher.PartitionRecords._unpack_records = _unpacker(reader, original)
    _installed = original
    log.info("kafka-python reads record batches with aiokafka's compiled reader")
    return True


def uninstall() -> None:
    """kafka-python's own record loop again (the bench's baseline, tests)."""
    global _installed
    fetcher = _fetcher_class()
    if _installed is not None and fetcher is not None:
        fetcher.PartitionRecords._unpack_records = _installed
    _installed = None


def _reader() -> type | None:
    try:
        from aiokafka.record._crecords.default_records import DefaultRecordBatch
    except ImportError:
        return None
    return DefaultRecordBatch


def _fetcher_class() -> Any:
    import kafka
    from kafka.consumer import fetcher

    if not kafka.__version__.startswith("3.0."):
        return None
    records = getattr(fetcher.Fetcher, "PartitionRecords", None)
    return fetcher.Fetcher if records is not None and hasattr(records, "_unpack_records") else None


def _unpacker(reader: type, original: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    from kafka.consumer.fetcher import ConsumerRecord, IsolationLevel
    from kafka.errors import CorruptRecordError

    def unpack_records(self: Any, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any,
                       ) -> Iterator[Any]:
        """kafka-python 3.0's ``PartitionRecords._unpack_records`` (read_uncommitted, no deserializers),
        each v2 batch's records read by ``reader``."""
        if (key_deserializer is not None or value_deserializer is not None
                or self.isolation_level != IsolationLevel.READ_UNCOMMITTED):
            yield from original(self, tp, records, key_deserializer, value_deserializer)
            return
        topic, partition = tp.topic, tp.partition
        try:
            batch = records.next_batch()
            last_batch = None
            while batch is not None:
                last_batch = batch
                if self.check_crcs and not batch.validate_crc():
                    raise CorruptRecordError(f"Record batch for partition {self.topic_partition} at offset "
                                             f"{batch.base_offset} failed crc check")
                read = None
                if batch.magic == 2:
                    self.leader_epoch = batch.leader_epoch
                    if batch.is_control_batch:  # a transaction marker: not handed on
                        self.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue
                    try:
                        read = list(reader(batch._buffer))
                    except Exception as exc:  # kafka-python's loop reads it, or says what is wrong with it
                        log.debug("aiokafka's reader refused a batch of %s (%s): kafka-python reads it", tp, exc)
                if read is not None:
                    epoch = self.leader_epoch
                    for r in read:
                        key, value, headers, offset = r.key, r.value, r.headers, r.offset
                        self.records_read += 1
                        self.next_fetch_offset = offset + 1
                        yield ConsumerRecord(
                            topic, partition, epoch, offset, r.timestamp, r.timestamp_type, key, value, headers,
                            None, -1 if key is None else len(key), -1 if value is None else len(value),
                            _header_size(headers) if headers else -1)
                    self.bytes_read += len(batch._buffer)
                else:
                    for record in batch:  # kafka-python's own loop, as in its _unpack_records
                        if self.check_crcs and not record.validate_crc():
                            raise CorruptRecordError(f"Record for partition {self.topic_partition} at offset "
                                                     f"{record.offset} failed crc check")
                        key, value, headers = record.key, record.value, record.headers
                        self.records_read += 1
                        self.bytes_read += record.size_in_bytes
                        self.next_fetch_offset = record.offset + 1
                        yield ConsumerRecord(
                            topic, partition, self.leader_epoch, record.offset, record.timestamp,
                            record.timestamp_type, key, value, headers, record.checksum,
                            -1 if key is None else len(key), -1 if value is None else len(value),
                            _header_size(headers) if headers else -1)
                batch = records.next_batch()
            # format v2 keeps a batch's last offset even when compaction removed its last record
            if last_batch is not None and last_batch.magic == 2:
                self.next_fetch_offset = last_batch.next_offset
            self.drain()
        except StopIteration as exc:  # as kafka-python: a StopIteration would end the generator silently
            log.exception("StopIteration raised unpacking messageset")
            raise RuntimeError("StopIteration raised unpacking messageset") from exc

    return unpack_records


def _header_size(headers: list[tuple[str, bytes | None]]) -> int:
    return sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)


def _reads_alike(reader: type) -> bool:
    """A batch of each codec built by kafka-python reads the same with ``reader`` as with kafka-python."""
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

    for codec in range(5):  # none, gzip, snappy, lz4, zstd
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        builder.append(0, timestamp=1_700_000_000_000, key=b"m", value=b'{"a": 1}', headers=[("h", b"v")])
        builder.append(1, timestamp=1_700_000_000_001, key=None, value=None, headers=[])
        buffer = bytes(builder.build())
        try:
            ours = [_fields(r) for r in reader(buffer)]
            theirs = [_fields(r) for r in DefaultRecordBatch(buffer)]
        except Exception as exc:  # a codec this host lacks (either library): not a difference between them
            log.debug("record reader self-check, codec %d: %s", codec, exc)
            continue
        if ours != theirs:
            return False
    return True


def _fields(record: Any) -> tuple[Any, ...]:
    return (record.offset, record.timestamp, record.timestamp_type, record.key, record.value, list(record.headers))
