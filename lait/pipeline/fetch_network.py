"""The network guards of :class:`lait.pipeline.fetch.ImageFetcher`: which addresses it may
connect to, one deadline per request, and per-host politeness.

- :class:`AddressPolicy` refuses loopback, private, link-local and other non-global addresses,
  checked before a request and again inside the connection (no DNS rebinding);
- :class:`Deadlines` cuts a request's socket at its deadline (socket timeouts bound each read
  only, not a request);
- :class:`GuardedAdapter` is the requests adapter whose connections do both;
- :class:`HostGate` limits concurrency and spaces request starts per host.
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

__all__ = ["AddressPolicy", "Deadlines", "GuardedAdapter", "HostGate", "PrivateAddressError"]


# ---------------------------------------------------------------- addresses

class PrivateAddressError(Exception):
    """A host resolves to an address the fetcher must not connect to.

    Not an OSError on purpose: urllib3 and requests let it through unwrapped and unretried.
    """


def _address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None and not _address_is_public(embedded):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_loopback
                                      or address.is_link_local or address.is_private or address.is_unspecified)


class AddressPolicy:
    """Which addresses a fetcher may connect to, and a small DNS cache that both checks share.

    The check before a request and the connection itself read the same cached answer, so
    they agree on the address; a name that does not resolve is remembered for a shorter
    while, so the URLs of a dead host do not each wait for the resolver.

    `getaddrinfo` takes no timeout, and a resolver that does not answer holds its caller for
    as long as the system's retries last. A lookup with a `timeout` therefore runs on one of
    `lookup_threads` threads: the caller stops waiting at the timeout (TimeoutError), the
    lookup goes on, and its answer is cached when it comes. Callers asking for a name already
    being looked up wait for that lookup rather than start another.

    Parameters
    ----------
    allow_private_networks : bool or iterable of str, default=False
        False: only global unicast addresses. True: any address. An iterable of networks
        (`"127.0.0.1/32"`): global ones plus those.
    ttl, negative_ttl : float, default=300, 60
        Seconds an answer / a resolution failure is kept.
    max_names : int, default=10000
        Names kept; the least recently used goes first.
    resolver : callable, default=socket.getaddrinfo
        `getaddrinfo(host, port, family, type)`-like lookup: another resolver, or fixed
        answers for tests.
    lookup_threads : int, default=8
        Threads for lookups with a timeout.
    """

    def __init__(self, allow_private_networks: bool | Iterable[str] = False, ttl: float = 300.0,
                 negative_ttl: float = 60.0, max_names: int = 10_000, resolver: Callable | None = None,
                 lookup_threads: int = 8):
        self.resolver = resolver or socket.getaddrinfo
        self._lookups = ThreadPoolExecutor(lookup_threads, thread_name_prefix="lait-dns")
        self._pending: dict[tuple[str, int], Future] = {}
        self.allow_all = allow_private_networks is True
        networks = () if isinstance(allow_private_networks, bool) else allow_private_networks
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self.ttl, self.negative_ttl, self.max_names = ttl, negative_ttl, max_names
        self._cache: OrderedDict[tuple[str, int], tuple[float, list | socket.gaierror]] = OrderedDict()
        self._lock = threading.Lock()

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return self.allow_all or _address_is_public(ip) or any(ip in n for n in self.networks)

    def close(self) -> None:
        """Stop the lookup threads (a lookup under way finishes on its own)."""
        self._lookups.shutdown(wait=False, cancel_futures=True)

    def _lookup(self, host: str, port: int, timeout: float | None) -> list[tuple]:
        key = (host.lower(), port)
        answer = pending = None
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > time.monotonic():
                self._cache.move_to_end(key)
                answer = cached[1]
            elif timeout is not None:
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = self._lookups.submit(self._ask, key, host, port)
        if answer is None:
            answer = self._ask(key, host, port) if timeout is None else pending.result(max(0.0, timeout))
        if isinstance(answer, socket.gaierror):
            raise answer
        return answer

    def _ask(self, key: tuple[str, int], host: str, port: int) -> list[tuple] | socket.gaierror:
        """The resolver's answer (or its failure), cached."""
        try:
            answer = self.resolver(host, port, urllib3_connection.allowed_gai_family(), socket.SOCK_STREAM)
            expires = time.monotonic() + self.ttl
        except socket.gaierror as e:
            answer, expires = e, time.monotonic() + self.negative_ttl
        except BaseException:  # not an answer (a name IDNA cannot encode): nothing to keep
            with self._lock:
                self._pending.pop(key, None)
            raise
        with self._lock:
            self._cache[key] = (expires, answer)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_names:
                self._cache.popitem(last=False)
            self._pending.pop(key, None)
        return answer

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[tuple]:
        """`getaddrinfo` entries of `host`, all of them allowed, else PrivateAddressError.

        Raises socket.gaierror when the name does not resolve, TimeoutError when no answer
        came within `timeout` seconds (None: wait for the resolver).
        """
        host = host.strip("[]")
        try:  # an IP literal is checked as it is, whatever getaddrinfo makes of it (an unsupported family...)
            literal = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None and not self.allows(host):
            raise PrivateAddressError(f"{host} is not a public address")
        infos = self._lookup(host, port, timeout)
        refused = sorted({info[4][0] for info in infos if not self.allows(info[4][0])})
        if refused:
            raise PrivateAddressError(f"{host} resolves to {', '.join(refused)}")
        return infos


class _GuardedConnectionMixin:
    """Connects only to addresses that `policy` allows, resolved once, here."""

    policy: AddressPolicy

    def _new_conn(self) -> socket.socket:
        try:
            infos = self.policy.resolve(self._dns_host, self.port)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        error: OSError | None = None
        for _family, _type, _proto, _name, sockaddr in infos:
            try:
                # An IP literal: create_connection does no second lookup.
                return urllib3_connection.create_connection(
                    (sockaddr[0], self.port), self.timeout,
                    source_address=self.source_address, socket_options=self.socket_options)
            except TimeoutError as e:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                                f"(connect timeout={self.timeout})") from e
            except OSError as e:
                error = e
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


# ---------------------------------------------------------------- the whole-request deadline

def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown (an SSLSocket's own would drop its TLS state under a reader):
    # a recv blocked on it in another thread returns at once.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watch:
    """One request's deadline and the socket it is using; `expire` cuts that socket."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired and not self._done and sock is not None:
                _cut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                _cut(self._sock)

    def finish(self) -> None:
        with self._lock:
            self._done, self._sock = True, None


class Deadlines:
    """Cuts the connection of any request still running at its deadline: one thread for all of them.

    Socket timeouts bound each read, not a request: a server that sends its headers (or its
    body) a byte at a time, each byte within the read timeout, would hold a fetch thread for
    hours. Here the connect, the headers and the body of one request share one deadline: at
    that moment its socket is shut down, so whatever read is blocked on it returns at once.
    Connections find their request's watch through a thread-local: requests runs a request
    in the thread that called it.
    """

    def __init__(self):
        self._heap: list[tuple[float, int, _Watch]] = []
        self._count = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    def current(self) -> _Watch | None:
        return getattr(self._local, "watch", None)

    @contextmanager
    def watch(self, deadline: float):
        watch = _Watch(deadline)
        self._local.watch = watch
        with self._cond:
            self._count += 1
            heapq.heappush(self._heap, (deadline, self._count, watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lait-fetch-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield watch
        finally:
            self._local.watch = None
            watch.finish()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, watch = heapq.heappop(self._heap)
            watch.expire()


class _DeadlineConnectionMixin:
    """Hands its socket to the running request's watch (see :class:`Deadlines`), new or reused."""

    deadlines: Deadlines

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch = self.deadlines.current()
        if watch is not None:
            watch.attach(sock)  # the TLS handshake and the CONNECT tunnel come under the deadline too
        return sock

    def getresponse(self, *args: Any, **kwargs: Any):
        watch = self.deadlines.current()
        if watch is not None:
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)


def _pool_class(pool_class: type, connection_class: type, deadlines: Deadlines,
                policy: AddressPolicy | None) -> type:
    """A connection pool class whose connections keep the deadline, and go through `policy` when given."""
    bases = (_DeadlineConnectionMixin, _GuardedConnectionMixin) if policy else (_DeadlineConnectionMixin,)
    name = ("Guarded" if policy else "Deadline") + connection_class.__name__
    connection = type(name, (*bases, connection_class), {"policy": policy, "deadlines": deadlines})
    return type(("Guarded" if policy else "Deadline") + pool_class.__name__, (pool_class,), {"ConnectionCls": connection})


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go through an :class:`AddressPolicy` and keep the deadlines.

    Connections to a proxy keep the deadlines but are not guarded (see the module docstring).
    """

    def __init__(self, policy: AddressPolicy, deadlines: Deadlines, **kwargs: Any):
        self.policy = policy
        self.deadlines = deadlines
        self._proxy_pools = {
            "http": _pool_class(HTTPConnectionPool, HTTPConnection, deadlines, None),
            "https": _pool_class(HTTPSConnectionPool, HTTPSConnection, deadlines, None),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _pool_class(HTTPConnectionPool, HTTPConnection, self.deadlines, self.policy),
            "https": _pool_class(HTTPSConnectionPool, HTTPSConnection, self.deadlines, self.policy),
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._proxy_pools
        return manager


# ---------------------------------------------------------------- politeness

class HostGate:
    """Per-host concurrency limit, delay between request starts, and cool-down."""

    def __init__(self, concurrency: int, delay: float):
        self.concurrency = concurrency
        self.delay = delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}
        self._delays: dict[str, float] = {}
        self._cool_until: dict[str, float] = {}

    def set_delay(self, host: str, delay: float) -> None:
        with self._lock:
            self._delays[host] = max(self.delay, delay)

    def hold_off(self, host: str, seconds: float) -> None:
        """No request to `host` starts in the next `seconds`."""
        with self._lock:
            self._next_start[host] = max(self._next_start.get(host, 0.0), time.monotonic() + seconds)

    def cool_down(self, host: str, seconds: float) -> None:
        """Requests to `host` fail at once for `seconds` (it asked for a longer pause than we wait)."""
        with self._lock:
            self._cool_until[host] = max(self._cool_until.get(host, 0.0), time.monotonic() + seconds)

    def cooling(self, host: str) -> float:
        """Seconds left of `host`'s cool-down, 0 when none."""
        with self._lock:
            return max(0.0, self._cool_until.get(host, 0.0) - time.monotonic())

    @contextmanager
    def turn(self, host: str):
        """Wait for a free slot and the host's delay; hold the slot while the body holds."""
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self.concurrency))
        with slot:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start.get(host, 0.0))
                self._next_start[host] = start + self._delays.get(host, self.delay)
            if start > now:
                time.sleep(start - now)
            yield
