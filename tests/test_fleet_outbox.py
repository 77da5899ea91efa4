"""The on-disk outbox: order, acknowledged removal, recovery after a crash, torn records,
the size bound and its counted drops, one stream per outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from pace_edge.fleet.errors import FleetError
from pace_edge.fleet.outbox import Outbox


def payload(i: int) -> bytes:
    return b'{"n":%d,"class":"a","pad":"%s"}' % (i, b"x" * 40)


def test_records_come_back_in_order_until_acknowledged(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1 << 20, segment_bytes=600) as box:
        seqs = [box.append(payload(i)) for i in range(30)]
        box.sync()
        assert seqs == list(range(30)) and box.stats.fsyncs >= 1
        for seq in seqs[:12] + seqs[20:25]:  # acknowledgements may come out of order
            box.ack(seq)
        assert box.stats.pending == 13
    with Outbox(tmp_path, 1 << 20, segment_bytes=600) as box:
        recovered = box.recovered()
        assert [s for s, _ in recovered] == list(range(12, 20)) + list(range(25, 30))
        assert [p for _, p in recovered] == [payload(i) for i in range(12, 20)] + [
            payload(i) for i in range(25, 30)]
        assert box.stats.recovered == 13
        assert box.append(payload(30)) == 30  # numbering goes on after the old records
        for seq, _ in recovered:
            box.ack(seq)
        box.ack(30)
    assert not list(tmp_path.glob("*.log")) and not list(tmp_path.glob("*.ack"))
    with Outbox(tmp_path, 1 << 20) as box:
        assert box.recovered() == [] and box.stats.bytes == 0


def test_fully_acknowledged_segments_are_deleted_while_streaming(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1 << 20, segment_bytes=500) as box:
        for i in range(100):
            box.ack(box.append(payload(i)))
        box.sync()
        assert len(list(tmp_path.glob("*.log"))) == 1  # only the one being written
        assert box.stats.bytes < 500 + len(payload(0)) + 20


def test_a_record_torn_by_a_crash_is_counted_not_delivered(tmp_path: Path) -> None:
    box = Outbox(tmp_path, 1 << 20)
    for i in range(5):
        box.append(payload(i))
    box.sync()
    box._writer.write(b"5 deadbeef {\"n\":5")  # a crash mid-write: no newline, bad checksum
    box._writer.flush()
    box._lock.close()  # the process is gone: its lock goes with it
    again = Outbox(tmp_path, 1 << 20)
    try:
        assert [s for s, _ in again.recovered()] == [0, 1, 2, 3, 4]
        assert again.stats.torn == 1
    finally:
        again.close()


def test_a_full_outbox_drops_new_records_and_counts_them(tmp_path: Path) -> None:
    limit = 2000
    with Outbox(tmp_path, limit, segment_bytes=700) as box:
        accepted = [s for s in (box.append(payload(i)) for i in range(100)) if s is not None]
        assert box.stats.dropped == 100 - len(accepted) > 0
        assert accepted == list(range(len(accepted)))  # the oldest are kept
        assert box.stats.bytes <= limit
        box.sync()
        assert sum(p.stat().st_size for p in tmp_path.glob("*.log")) <= limit
        for seq in accepted[:10]:  # acknowledged space is reused once its segment is done
            box.ack(seq)
        freed = box.stats.bytes
        assert freed < limit
        assert box.append(payload(100)) is not None


def test_one_stream_per_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path, 1 << 20):
        with pytest.raises(FleetError, match="in use by another pace-edge stream"):
            Outbox(tmp_path, 1 << 20)
