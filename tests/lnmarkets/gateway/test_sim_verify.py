"""verify_credentials against the simulator: permissions from the Stream, REST probing fallback, typed failures."""

from __future__ import annotations

import pytest

from lnmarkets.credentials import Credentials
from lnmarkets.exceptions import AuthError, NetworkUnreachableError, TemporaryError
from lnmarkets.ratelimit import NullRateLimiter
from lnmarkets.simulator import RunningSimulator, SimAccount
from lnmarkets.verify import VerificationResult, verify_credentials

DEAD_STREAM = "ws://127.0.0.1:1/v1"


def verify(sim: RunningSimulator, creds: Credentials, stream_url: str | None = None) -> VerificationResult:
    return verify_credentials(
        "simulator",
        creds,
        rest_url=sim.rest_url,
        stream_url=stream_url or sim.stream_url,
        rate_limiter=NullRateLimiter(),
        timeout=3,
    )


def test_trading_key(sim: RunningSimulator, sim_account: SimAccount, creds: Credentials) -> None:
    result = verify(sim, creds)
    assert result.account_id == sim_account.id
    assert result.username == sim_account.username
    assert result.balance == 1_000_000
    assert result.can_trade
    assert not result.can_withdraw
    assert result.permissions_source == "stream"
    assert set(result.permissions) == set(sim_account.scopes)
    assert result.missing == ()


def test_read_only_key_is_reported_not_refused(sim: RunningSimulator) -> None:
    reader = sim.control.create_account(scopes=["account:read", "futures:isolated:read"])
    result = verify(sim, Credentials(reader.key, reader.secret, reader.passphrase))
    assert not result.can_trade
    assert result.missing == ("futures:isolated:write",)


def test_withdraw_scope_is_reported(sim: RunningSimulator) -> None:
    scopes = ["account:read", "futures:isolated:read", "futures:isolated:write", "account:withdrawals:write"]
    acct = sim.control.create_account(scopes=scopes)
    assert verify(sim, Credentials(acct.key, acct.secret, acct.passphrase)).can_withdraw


@pytest.mark.parametrize("field", ["key", "secret", "passphrase"])
def test_wrong_credentials(sim: RunningSimulator, creds: Credentials, field: str) -> None:
    values = {"key": creds.key, "secret": creds.secret, "passphrase": creds.passphrase, field: "wrong-value-1234"}
    with pytest.raises(AuthError):
        verify(sim, Credentials(**values))


def test_unreachable_network(creds: Credentials) -> None:
    with pytest.raises(NetworkUnreachableError) as info:
        verify_credentials(
            "simulator",
            creds,
            rest_url="http://127.0.0.1:1/v3",
            stream_url=DEAD_STREAM,
            rate_limiter=NullRateLimiter(),
            timeout=1,
        )
    assert isinstance(info.value, TemporaryError)


def test_probe_fallback_when_the_stream_is_down(sim: RunningSimulator, creds: Credentials) -> None:
    result = verify(sim, creds, stream_url=DEAD_STREAM)
    assert result.permissions_source == "probe"
    assert result.can_trade
    reader = sim.control.create_account(scopes=["account:read", "futures:isolated:read"])
    probed = verify(sim, Credentials(reader.key, reader.secret, reader.passphrase), stream_url=DEAD_STREAM)
    assert probed.permissions == ("account:read", "futures:isolated:read")
    assert not probed.can_trade


async def test_callable_from_a_running_event_loop(sim: RunningSimulator, creds: Credentials) -> None:
    assert verify(sim, creds).can_trade
