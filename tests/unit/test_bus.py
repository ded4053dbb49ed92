"""``lookalike.bus``: the one lag arithmetic (``Offsets.lag``) and the one acked publisher, on fakes."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from lookalike.bus import Offsets, publish_acked
from lookalike.errors import Unavailable


def test_lag_is_end_minus_committed() -> None:
    assert Offsets(committed=4, begin=0, end=10).lag == 6


def test_a_partition_never_committed_lags_by_what_it_retains() -> None:
    assert Offsets(committed=None, begin=2, end=7).lag == 5  # from its begin offset, not from 0
    assert Offsets(committed=None, begin=5, end=5).lag == 0


def test_lag_never_goes_negative() -> None:
    # Tansu answers ListOffsets with the last batch's base offset + 1, below a commit inside that batch
    assert Offsets(committed=4, begin=0, end=1).lag == 0


class _Future:
    def __init__(self, log: list[str], key: str, error: Exception | None) -> None:
        self.log, self.key, self.error = log, key, error

    def get(self, timeout: float) -> None:
        self.log.append(f"ack {self.key}")
        if self.error is not None:
            raise self.error


class _Producer:
    """Records sends and waits in order; ``error`` is what every acknowledgement raises."""

    def __init__(self, error: Exception | None = None) -> None:
        self.log: list[str] = []
        self.error = error

    def send(self, topic: str, key: str, value: bytes) -> _Future:
        self.log.append(f"send {key}")
        return _Future(self.log, key, self.error)


def test_publish_acked_sends_everything_before_waiting_for_any_ack() -> None:
    producer = _Producer()
    publish_acked(producer, "t", [("a", b"1"), ("b", b"2")], "test")  # type: ignore[arg-type]
    assert producer.log == ["send a", "send b", "ack a", "ack b"]  # one round trip, not one per record


def test_an_outage_is_unavailable_and_a_bad_record_stays_a_kafka_error() -> None:
    with pytest.raises(Unavailable):
        publish_acked(_Producer(KafkaTimeoutError()), "t", [("a", b"1")], "test")  # type: ignore[arg-type]
    with pytest.raises(MessageSizeTooLargeError):  # about the record: the caller bisects it
        publish_acked(_Producer(MessageSizeTooLargeError()), "t", [("a", b"1")], "test")  # type: ignore[arg-type]


def test_kafka_clients_take_the_deployment_s_tls_and_sasl_settings() -> None:
    from lookalike.bus import security
    from lookalike.settings import Settings

    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert security(plain) == {"security_protocol": "PLAINTEXT"}
    secured = Settings(  # type: ignore[call-arg]
        _env_file=None,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="lookalike",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile="/etc/ca.crt",
    )
    assert security(secured) == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/ca.crt",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "lookalike",
        "sasl_plain_password": "s3cret",
    }
