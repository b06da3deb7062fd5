from datetime import UTC, datetime, timedelta

from services.alerts.windows import (
    IdleClock,
    PartitionActivity,
    Watermarks,
    WindowPolicy,
    bucket_of,
    event_time,
)


def test_buckets_are_aligned_to_the_epoch():
    assert bucket_of(1_000_299.9, 300) == 1_000_200
    assert bucket_of(1_000_200, 300) == 1_000_200


def test_a_bucket_closes_grace_seconds_after_it_ends():
    policy = WindowPolicy(bucket_seconds=300, grace_seconds=60)
    assert list(policy.to_close(closed_through=0, watermark=659)) == []
    assert list(policy.to_close(closed_through=0, watermark=660)) == [300]
    assert list(policy.to_close(closed_through=300, watermark=1300)) == [600, 900]


def test_a_post_dated_in_the_future_counts_from_its_arrival():
    received = datetime(2026, 11, 25, 4, tzinfo=UTC)
    assert event_time(received + timedelta(days=365), received, 300) == received.timestamp() + 300
    assert event_time(received - timedelta(minutes=5), received, 300) == received.timestamp() - 300


def test_the_watermark_waits_for_the_slowest_partition():
    marks = Watermarks()
    assert marks.watermark() is None
    marks.observe(0, 2, 5_000.0)
    assert marks.watermark() is None  # partition 1 has not been heard from
    marks.observe(1, 2, 1_000.0)
    marks.observe(0, 2, 4_000.0)
    assert marks.watermark() == 1_000.0


def test_an_idle_partition_stops_holding_the_watermark_back_until_it_speaks():
    marks = Watermarks()
    marks.observe(0, 2, 5_000.0)
    marks.mark_idle([1], 2)
    assert marks.watermark() == 5_000.0
    marks.observe(1, 2, 4_000.0)
    assert marks.watermark() == 4_000.0
    marks.mark_idle([0, 1], 2)
    assert marks.watermark() == 5_000.0


def test_a_stream_resuming_after_silence_waits_for_every_partition_again():
    marks = Watermarks()
    marks.observe(0, 3, 1_000.0)
    marks.observe(1, 3, 1_010.0)
    marks.observe(2, 3, 1_020.0)
    marks.mark_idle([0, 1, 2], 3)  # a silence
    marks.observe(0, 3, 1_600.0)  # ten minutes of posts replayed: partition 0 delivers first
    assert marks.watermark() == 1_010.0  # not 1_600: partitions 1 and 2 still hold it back
    marks.observe(1, 3, 1_590.0)
    marks.observe(2, 3, 1_580.0)
    assert marks.watermark() == 1_580.0
    marks.mark_idle([2], 3)  # reported idle again after its silence
    assert marks.watermark() == 1_590.0


def test_a_resumed_partition_gives_the_silent_ones_a_fresh_idle_period():
    activity = PartitionActivity(idle_seconds=30)
    activity.saw(0, wall=100.0)
    activity.saw(1, wall=100.0)
    assert activity.idle([0, 1], wall=200.0) == [0, 1]
    activity.saw(0, wall=200.0)  # the stream resumes on partition 0
    assert activity.idle([0, 1], wall=210.0) == []  # partition 1 is given time to speak
    assert activity.idle([0, 1], wall=231.0) == [0, 1]
    activity.saw(1, wall=215.0)
    activity.saw(1, wall=220.0)  # a partition that spoke recently wakes no one
    assert activity.idle([0, 1], wall=231.0) == [0]


def test_partitions_become_idle_after_a_silence():
    activity = PartitionActivity(idle_seconds=30)
    activity.saw(0, wall=100.0)
    assert activity.idle([0, 1], wall=110.0) == []
    assert activity.idle([0, 1], wall=135.0) == [0]
    assert activity.idle([0, 1], wall=141.0) == [0, 1]


def test_a_silent_live_stream_moves_on_with_the_wall_clock():
    clock = IdleClock(idle_seconds=600, live_lag_seconds=420)
    clock.observe(event_time=10_000.0, wall=10_005.0)
    assert clock.tick(wall=10_500.0) is None
    assert clock.tick(wall=10_605.0) == 10_600.0


def test_a_paused_replay_of_old_posts_does_not_move_on():
    clock = IdleClock(idle_seconds=600, live_lag_seconds=420)
    clock.observe(event_time=10_000.0, wall=900_000.0)
    assert clock.tick(wall=990_000.0) is None
    assert IdleClock(0, 420).tick(wall=1.0) is None
