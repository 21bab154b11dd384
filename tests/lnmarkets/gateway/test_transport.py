"""RestClient's urllib3 transport: what reaches the wire, how each urllib3 failure maps to the retry policy, proxies
from the environment, TLS verification. Scripted pool where the exception is the point; loopback sockets (raw, so
that a server can misbehave on purpose) where urllib3's own behaviour is."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

import certifi
import pytest
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from lnmarkets import client as client_module
from lnmarkets.client import RestClient, _environ_proxy, _is_connect_phase, _new_pool
from lnmarkets.credentials import static_provider
from lnmarkets.exceptions import (
    AmbiguousOutcomeError,
    InvalidOrderError,
    NetworkUnreachableError,
    PermanentError,
    TemporaryError,
)
from lnmarkets.ratelimit import NullRateLimiter
from lnmarkets.signing import encode_query
from tests.lnmarkets.gateway.fakes import CREDS, Reply, load, scripted_client

TRADE = load("trade_running.json")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def create(client: RestClient) -> object:
    return client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=10, client_id="c-1")


# --- the arguments every call hands to urllib3 ------------------------------------------------------------------


def test_urllib3_never_retries_or_redirects_and_every_call_has_both_timeouts() -> None:
    client, pool, _ = scripted_client([Reply(200, load("account.json")), Reply(200, TRADE)], timeout=7.0)
    client.account_get()
    client.isolated_trade_close("t")
    assert pool.options == [{"retries": False, "redirect": False, "preload_content": True}] * 2
    assert pool.timeouts == [(5.0, 7.0), (5.0, 7.0)]  # connect min(timeout, 5 s), read timeout
    client, pool, _ = scripted_client([Reply(200, TRADE)], timeout=3.0, connect_timeout=0.5)
    client.isolated_trade_close("t")
    assert pool.timeouts == [(0.5, 3.0)]


def test_requests_default_headers_are_kept_and_bodiless_mutations_say_content_length_0() -> None:
    client, pool, _ = scripted_client([Reply(200, load("account.json")), Reply(200, TRADE)])
    client.account_get()
    client.isolated_trade_stoploss_remove("t")
    client.isolated_trade_close("t")
    get, delete, post = pool.requests
    for sent in (get, delete, post):
        assert sent.headers["Accept-Encoding"] == "gzip, deflate"
        assert sent.headers["Accept"] == "application/json"
        assert sent.headers["User-Agent"] == "axisor-lnmarkets/1"
    assert "Content-Length" not in get.headers
    assert (delete.headers["Content-Length"], delete.body) == ("0", None)
    assert "Content-Length" not in post.headers  # urllib3 counts the body
    assert post.headers["Content-Type"] == "application/json"
    assert post.body == b'{"id":"t"}'


def test_close_clears_the_pool_and_the_client_stays_usable() -> None:
    client, pool, _ = scripted_client([Reply(200, '"pong"')])
    client.close()
    assert pool.cleared == 1
    assert client.ping() == "pong"


# --- responses ----------------------------------------------------------------------------------------------------


def test_retry_after_is_read_whatever_its_case() -> None:
    client, _, sleeps = scripted_client([Reply(429, "{}", {"retry-after": "3"}), Reply(200, load("account.json"))])
    assert client.account_get().balance == 1_000_000
    assert sleeps[0] >= 3


def test_bodies_are_decoded_as_utf8_with_replacement() -> None:
    client, _, _ = scripted_client([Reply(400, '{"code":"BAD","message":"prix \u00e9lev\u00e9"}'.encode())])
    with pytest.raises(InvalidOrderError, match="prix \u00e9lev\u00e9"):
        create(client)
    client, _, _ = scripted_client([Reply(400, b'{"code":"BAD","message":"bad \xff byte"}')])
    with pytest.raises(InvalidOrderError, match="bad \ufffd byte"):
        create(client)


def test_gzip_answers_are_decoded() -> None:
    client, _, _ = scripted_client([Reply(200, gzip.compress(b'"pong"'), {"Content-Encoding": "gzip"})])
    assert client.ping() == "pong"


# --- urllib3 failures and the retry policy ----------------------------------------------------------------------


def _new_connection_error() -> NewConnectionError:
    return NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]


CONNECT_PHASE: list[Callable[[], Exception]] = [
    lambda: ConnectTimeoutError(None, "Connection to 127.0.0.1 timed out. (connect timeout=5)"),
    _new_connection_error,
    lambda: NameResolutionError("exchange.invalid", None, socket.gaierror(-2, "Name or service not known")),  # type: ignore[arg-type]
    lambda: MaxRetryError(None, "/v3/account", _new_connection_error()),  # type: ignore[arg-type]
    lambda: MaxRetryError(None, "/v3/account", ConnectTimeoutError("timed out")),  # type: ignore[arg-type]
]
SENT_MAYBE: list[tuple[Callable[[], Exception], str, str]] = [
    # (error, code for a GET, code for a POST)
    (lambda: ReadTimeoutError(None, "/", "Read timed out. (read timeout=10)"), "read_timeout", "read_timeout"),  # type: ignore[arg-type]
    (
        lambda: MaxRetryError(None, "/", ReadTimeoutError(None, "/", "Read timed out.")),  # type: ignore[arg-type]
        "read_timeout",
        "read_timeout",
    ),
    (
        lambda: ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection")),
        "transport_error",
        "connection_lost",
    ),
    (
        lambda: ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
        "transport_error",
        "connection_lost",
    ),
    (lambda: SSLError(ssl.SSLError("handshake failed")), "transport_error", "connection_lost"),
    (
        lambda: ProxyError("Unable to connect to proxy", _new_connection_error()),
        "transport_error",
        "connection_lost",
    ),
    (lambda: DecodeError("bad gzip"), "transport_error", "connection_lost"),
    (lambda: ConnectionResetError(104, "Connection reset by peer"), "transport_error", "connection_lost"),
]


@pytest.mark.parametrize("make", CONNECT_PHASE)
def test_connect_phase_errors_are_retried_on_get_and_unreachable_on_post(make: Callable[[], Exception]) -> None:
    assert _is_connect_phase(make())
    client, pool, sleeps = scripted_client([make()], max_retries=2)
    with pytest.raises(NetworkUnreachableError) as info:
        client.account_get()
    assert info.value.code == "unreachable"
    assert (len(pool.requests), len(sleeps)) == (3, 2)
    client, pool, sleeps = scripted_client([make()], max_retries=2)
    with pytest.raises(NetworkUnreachableError):
        create(client)
    assert (len(pool.requests), sleeps) == (1, [])


@pytest.mark.parametrize(("make", "get_code", "post_code"), SENT_MAYBE)
def test_errors_after_the_connection_are_not_retried_and_ambiguous_on_post(
    make: Callable[[], Exception], get_code: str, post_code: str
) -> None:
    assert not _is_connect_phase(make())
    client, pool, sleeps = scripted_client([make()], max_retries=2)
    with pytest.raises(TemporaryError) as get_info:
        client.account_get()
    assert type(get_info.value) is TemporaryError
    assert get_info.value.code == get_code
    assert (len(pool.requests), sleeps) == (1, [])
    client, pool, _ = scripted_client([make()], max_retries=2)
    with pytest.raises(AmbiguousOutcomeError) as post_info:
        create(client)
    assert (post_info.value.code, post_info.value.client_id) == (post_code, "c-1")
    assert len(pool.requests) == 1


# --- loopback sockets: urllib3's own behaviour ------------------------------------------------------------------


class Loopback:
    """A TCP server on 127.0.0.1: each accepted connection goes to ``handle(server, conn)`` in its own thread.
    ``read_request`` keeps every raw request (head and body) in ``requests``."""

    def __init__(self, handle: Callable[[Loopback, socket.socket], None], tls: ssl.SSLContext | None = None) -> None:
        self.handle = handle
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.stopped = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/v3"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            self.handle(self, conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        with self._lock:
            self.requests.append(head + b"\r\n\r\n" + body)
        return head

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header(raw: bytes, name: str) -> str | None:
    """The value of header ``name`` (any case) in a raw request, or None."""
    for line in raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    return None


def answering(
    status: int = 200, body: bytes = b'"pong"', headers: dict[str, str] | None = None
) -> Callable[[Loopback, socket.socket], None]:
    def handle(server: Loopback, conn: socket.socket) -> None:
        while server.read_request(conn) is not None:
            conn.sendall(response(status, body, headers))

    return handle


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    servers: list[Loopback] = []

    def start(handle: Callable[[Loopback, socket.socket], None], tls: ssl.SSLContext | None = None) -> Loopback:
        servers.append(Loopback(handle, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def real_client(url: str, **kwargs: Any) -> tuple[RestClient, list[float]]:
    sleeps: list[float] = []
    options: dict[str, Any] = {"rate_limiter": NullRateLimiter(), "sleep": sleeps.append, "timeout": 5.0}
    options.update(kwargs)
    return RestClient(url, static_provider(CREDS), **options), sleeps


def test_the_wire_carries_the_signed_query_and_body_verbatim(loopback: Callable[..., Loopback]) -> None:
    server = loopback(answering(body=b'{"data":[],"nextCursor":null}'))
    client, _ = real_client(server.url)
    query: dict[str, str | int] = {"limit": 10, "from": "2025-01-01T00:00:00.000Z", "cursor": "a/b+c=d&e f%~\u00e9"}
    client._request("GET", "/futures/isolated/trades/closed", query=query)  # noqa: SLF001
    server.handle = answering(body=TRADE.encode())
    client.close()  # the next calls on a new connection, served by the new handler
    client.isolated_trade_close("t-1")
    client.isolated_trade_stoploss_remove("t-1")
    get, post, delete = server.requests
    assert get.startswith(f"GET /v3/futures/isolated/trades/closed{encode_query(query)} HTTP/1.1\r\n".encode())
    assert encode_query(query) == "?limit=10&from=2025-01-01T00%3A00%3A00.000Z&cursor=a%2Fb%2Bc%3Dd%26e%20f%25~%C3%A9"
    assert post.startswith(b"POST /v3/futures/isolated/trade/close HTTP/1.1\r\n")
    assert post.endswith(b'\r\n\r\n{"id":"t-1"}')
    assert header(post, "Content-Length") == "12"
    assert header(post, "Content-Type") == "application/json"
    assert header(post, "Accept-Encoding") == "gzip, deflate"
    assert header(post, "Host") == f"127.0.0.1:{server.port}"
    assert header(post, "lnm-access-key") == CREDS.key
    assert delete.startswith(b"DELETE /v3/futures/isolated/trade/stoploss?id=t-1 HTTP/1.1\r\n")
    assert (header(delete, "Content-Length"), header(delete, "Content-Type")) == ("0", None)
    assert (header(get, "Content-Length"), header(get, "Content-Type")) == (None, None)


def test_keepalive_connections_are_reused_and_empty_bodies_read(loopback: Callable[..., Loopback]) -> None:
    server = loopback(answering())
    client, _ = real_client(server.url, max_retries=0)
    assert [client.ping() for _ in range(5)] == ["pong"] * 5
    assert server.connections == 1
    server.handle = answering(502, b"")
    client.close()
    with pytest.raises(TemporaryError) as get_info:
        client.account_get()
    assert get_info.value.status == 502
    with pytest.raises(AmbiguousOutcomeError) as post_info:
        client.isolated_trade_close("t")
    assert post_info.value.status == 502


def test_gzip_on_the_wire(loopback: Callable[..., Loopback]) -> None:
    server = loopback(answering(body=gzip.compress(b'"pong"'), headers={"Content-Encoding": "gzip"}))
    client, _ = real_client(server.url)
    assert client.ping() == "pong"


def test_redirects_are_not_followed(loopback: Callable[..., Loopback]) -> None:
    server = loopback(answering(302, b"", {"Location": "/v3/elsewhere"}))
    client, _ = real_client(server.url)
    with pytest.raises(PermanentError) as info:
        client.account_get()
    assert info.value.status == 302
    assert len(server.requests) == 1


def test_read_timeout_is_one_attempt_temporary_on_get_ambiguous_on_post(loopback: Callable[..., Loopback]) -> None:
    def hang(server: Loopback, conn: socket.socket) -> None:
        server.read_request(conn)
        server.stopped.wait(10)

    server = loopback(hang)
    client, sleeps = real_client(server.url, timeout=0.3, max_retries=3)
    with pytest.raises(TemporaryError) as get_info:
        client.account_get()
    assert get_info.value.code == "read_timeout"
    with pytest.raises(AmbiguousOutcomeError) as post_info:
        create(client)
    assert (post_info.value.code, post_info.value.client_id) == ("read_timeout", "c-1")
    assert (len(server.requests), sleeps) == (2, [])


def test_a_body_that_stalls_after_the_headers_is_ambiguous(loopback: Callable[..., Loopback]) -> None:
    def stall(server: Loopback, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        server.stopped.wait(10)

    server = loopback(stall)
    client, _ = real_client(server.url, timeout=0.3)
    with pytest.raises(AmbiguousOutcomeError) as info:
        create(client)
    assert info.value.code == "read_timeout"
    assert len(server.requests) == 1


def test_connection_closed_without_an_answer_is_lost_not_retried(loopback: Callable[..., Loopback]) -> None:
    """Also on a kept-alive connection that was fine for the previous call: urllib3 raises ProtocolError, which,
    as with requests, is not a connect-phase error (the request may have been processed)."""

    def answer_once_then_drop(server: Loopback, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(response(200, b'"pong"'))
        server.read_request(conn)

    server = loopback(answer_once_then_drop)
    client, sleeps = real_client(server.url, max_retries=3)
    assert client.ping() == "pong"
    with pytest.raises(AmbiguousOutcomeError) as post_info:
        client.isolated_trade_close("t")  # the pooled connection: sent, then closed
    assert post_info.value.code == "connection_lost"
    assert client.ping() == "pong"
    with pytest.raises(TemporaryError) as get_info:
        client.account_get()
    assert (type(get_info.value), get_info.value.code) == (TemporaryError, "transport_error")
    assert (len(server.requests), server.connections, sleeps) == (4, 2, [])


def test_a_pooled_connection_the_server_already_closed_is_replaced(loopback: Callable[..., Loopback]) -> None:
    served = threading.Event()

    def answer_once_and_close(server: Loopback, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(response(200, TRADE.encode()))
        conn.close()
        served.set()

    server = loopback(answer_once_and_close)
    client, _ = real_client(server.url)
    client.isolated_trade_close("t")
    assert served.wait(5)
    served.clear()
    client.isolated_trade_close("t")  # urllib3 sees the closed socket before sending and opens a new one
    assert (len(server.requests), server.connections) == (2, 2)


def test_refused_is_unreachable_and_retried_on_get_only() -> None:
    with socket.socket() as unused:  # bound, not listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        client, sleeps = real_client(f"http://127.0.0.1:{unused.getsockname()[1]}/v3", max_retries=2)
        with pytest.raises(NetworkUnreachableError) as get_info:
            client.account_get()
        assert get_info.value.code == "unreachable"
        assert len(sleeps) == 2
        with pytest.raises(NetworkUnreachableError):
            create(client)
        assert len(sleeps) == 2


def test_concurrent_calls_share_one_client(loopback: Callable[..., Loopback]) -> None:
    server = loopback(answering())
    client, _ = real_client(server.url)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: client.ping(), range(160)))
    assert results == ["pong"] * 160
    assert len(server.requests) == 160


# --- TLS --------------------------------------------------------------------------------------------------------


def test_https_pools_verify_against_certifi() -> None:
    pool = _new_pool("https://api.lnmarkets.com/v3")
    assert type(pool) is urllib3.PoolManager
    options = pool.connection_pool_kw
    assert (options["cert_reqs"], options["ca_certs"]) == ("CERT_REQUIRED", certifi.where())
    assert (options["maxsize"], options["block"], options["retries"].total) == (10, False, False)


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A server context with a self-signed certificate for 127.0.0.1, and the certificate's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    loopback: Callable[..., Loopback], self_signed: tuple[ssl.SSLContext, str]
) -> None:
    context, cert_path = self_signed
    server = loopback(answering(), tls=context)
    client, sleeps = real_client(server.url)
    with pytest.raises(TemporaryError) as info:
        client.account_get()
    assert (type(info.value), info.value.code, sleeps) == (TemporaryError, "transport_error", [])
    assert server.requests == []
    trusting = urllib3.PoolManager(
        maxsize=10, block=False, retries=False, cert_reqs="CERT_REQUIRED", ca_certs=cert_path
    )
    client, _ = real_client(server.url, pool=trusting)
    assert client.ping() == "pong"
    assert len(server.requests) == 1


# --- proxies from the environment -------------------------------------------------------------------------------


def test_no_proxy_in_the_environment_gives_a_plain_pool() -> None:
    assert _environ_proxy("https://api.lnmarkets.com/v3") is None
    assert type(_new_pool("https://api.lnmarkets.com/v3")) is urllib3.PoolManager


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({"http_proxy": "http://proxy:3128"}, "http://api.example.com/v3", "http://proxy:3128"),
        ({"HTTP_PROXY": "proxy:3128"}, "http://api.example.com/v3", "http://proxy:3128"),
        ({"http_proxy": "http://proxy:3128"}, "https://api.example.com/v3", None),
        ({"https_proxy": "http://tls-proxy:3128"}, "https://api.example.com/v3", "http://tls-proxy:3128"),
        ({"all_proxy": "socks5://proxy:1080"}, "https://api.example.com/v3", "socks5://proxy:1080"),
        ({"https_proxy": "http://p:1", "no_proxy": "example.com"}, "https://api.example.com/v3", None),
        ({"https_proxy": "http://p:1", "NO_PROXY": ".example.com"}, "https://api.example.com/v3", None),
        ({"https_proxy": "http://p:1", "no_proxy": "other.com"}, "https://api.example.com/v3", "http://p:1"),
        ({"https_proxy": "http://p:1", "no_proxy": "*"}, "https://api.example.com/v3", None),
        ({"http_proxy": "http://p:1", "no_proxy": "127.0.0.1"}, "http://127.0.0.1:8765/v3", None),
        ({"http_proxy": "http://p:1", "no_proxy": "10.0.0.0/8, 127.0.0.0/8"}, "http://127.0.0.1:8765/v3", None),
        ({"http_proxy": "http://p:1", "no_proxy": "10.0.0.0/8"}, "http://127.0.0.1:8765/v3", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "api.example.com:8443"}, "http://api.example.com:8443/v3", None),
        ({"http_proxy": "http://p:1", "no_proxy": "api.example.com:8443"}, "http://api.example.com/v3", "http://p:1"),
    ],
)
def test_the_environment_names_the_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _environ_proxy(url) == expected


def test_calls_go_through_the_proxy_with_its_credentials(
    monkeypatch: pytest.MonkeyPatch, loopback: Callable[..., Loopback]
) -> None:
    proxy = loopback(answering())
    monkeypatch.setenv("http_proxy", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
    pool = _new_pool("http://exchange.invalid/v3")
    assert isinstance(pool, urllib3.ProxyManager)
    client, _ = real_client("http://exchange.invalid/v3")
    assert client.ping() == "pong"
    (sent,) = proxy.requests
    assert sent.startswith(b"GET http://exchange.invalid/v3/ping HTTP/1.1\r\n")
    assert header(sent, "Proxy-Authorization") == f"Basic {base64.b64encode(b'user:p@ss').decode()}"
    assert header(sent, "Host") == "exchange.invalid"


def test_the_proxy_is_resolved_once_per_client(
    monkeypatch: pytest.MonkeyPatch, loopback: Callable[..., Loopback]
) -> None:
    calls: list[str] = []
    resolve = client_module._environ_proxy  # noqa: SLF001

    def counting(url: str) -> str | None:
        calls.append(url)
        return resolve(url)

    monkeypatch.setattr(client_module, "_environ_proxy", counting)
    scripted_client([Reply(200, '"pong"')])
    assert calls == []  # an injected pool: nothing to resolve
    server = loopback(answering())
    client, _ = real_client(server.url)
    assert [client.ping() for _ in range(3)] == ["pong"] * 3
    assert calls == [server.url]


def test_a_socks_proxy_is_refused_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("all_proxy", "socks5://proxy:1080")
    with pytest.raises(ValueError, match="socks5"):
        _new_pool("https://api.lnmarkets.com/v3")
