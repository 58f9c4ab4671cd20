"""TLS, mutual TLS, bearer tokens, roles and tenants, end to end over real loopback sockets.

Certificates are made here, for this run only (the ``cryptography`` package): a CA for the
server, a second CA for client certificates, and a stranger CA that neither side trusts.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from attribid.api.auth import (INVALID, MISSING, StartupError, TokenFileError, TokenTable,
                               check_binding, parse_tokens)
from attribid.api.reflection import v1_messages
from attribid.client import AsyncClient, Client, score_request
from attribid.runtime.settings import Settings
from attribid.v1 import attribution_pb2 as pb
from attribid.v1 import attribution_pb2_grpc as pb_grpc
from tests.serverproc import InProcessServer

HOUR = 3600.0
A_ADMIN = "a-admin-0123456789abcdef"
A_BIDDER = "a-bidder-0123456789abcdef"
B_ADMIN = "b-admin-0123456789abcdef"
B_BIDDER = "b-bidder-0123456789abcdef"
OPS = "ops-0123456789abcdef"
TOKENS = f"""\
# tenant a
{A_ADMIN}  shop-a admin
{A_BIDDER} shop-a bidder   # the bidding service

# tenant b
{B_ADMIN}  shop-b admin
{B_BIDDER} shop-b bidder
{OPS}      ops    ops
"""


# -- throwaway certificates ---------------------------------------------------------------
@dataclass
class Pair:
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    pair = Pair(folder / f"{stem}.pem", folder / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pair


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)))


class Authority:
    """A CA that signs leaf certificates for 127.0.0.1 (server) or a named client."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (_builder(name, name, self.key)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pair = _write(folder, name, self.cert, self.key)

    def issue(self, stem: str, server: bool) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else \
            x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (_builder(stem, self.name, key)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
        return _write(self.folder, stem, builder.sign(self.key, hashes.SHA256()), key)


@dataclass
class Certs:
    server_ca: Authority
    client_ca: Authority
    stranger: Authority
    server: Pair
    client: Pair
    stranger_client: Pair


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    server_ca, client_ca, stranger = (Authority(folder, n) for n in ("server-ca", "client-ca",
                                                                      "stranger-ca"))
    return Certs(server_ca, client_ca, stranger, server_ca.issue("server", server=True),
                 client_ca.issue("client", server=False), stranger.issue("intruder", server=False))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens"
    path.write_text(TOKENS)
    return path


@pytest.fixture(scope="module")
def secure(certs, token_file):
    """TLS + tokens: the set-up a server on a non-loopback address must have."""
    with InProcessServer(tls_cert=str(certs.server.cert), tls_key=str(certs.server.key),
                         auth_tokens=str(token_file), resolve_period_s=0.2) as srv:
        yield srv


def client(server, token: str | None, certs: Certs, **options) -> Client:
    return Client(server.address, timeout=10, root_certificates=certs.server_ca.pair.cert,
                  token=token, **options)


def configure(c: Client, campaign_id: str, budget: float, **fields) -> pb.Allocation:
    now = time.time()
    return c.configure_campaign(pb.ConfigureCampaignRequest(
        campaign_id=campaign_id, budget=budget, flight_start_ms=int((now - HOUR) * 1000),
        flight_end_ms=int((now + 23 * HOUR) * 1000), objective=pb.ObjectiveWeights(revenue=1.0),
        **fields), timeout=10)


def journey(now: float) -> list[dict]:
    return [{"channel": ch, "timestamp": now - 3000 + 600 * i, "interaction": "click"}
            for i, ch in enumerate(("display", "email", "search"))]


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


# -- tenants -------------------------------------------------------------------------------
def test_tenant_b_cannot_read_or_change_tenant_a_campaign(secure, certs):
    with client(secure, A_ADMIN, certs) as a, client(secure, B_ADMIN, certs) as b, \
            client(secure, B_BIDDER, certs) as b_bidder:
        mine = configure(a, "c1", 5000.0)
        assert abs(sum(mine.spend.values()) - 5000.0) < 1e-6
        # B asking for A's c1 learns nothing: the same NOT_FOUND as for any unknown id.
        with pytest.raises(grpc.RpcError) as info:
            b.get_allocation("c1", timeout=10)
        assert info.value.code() is grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "campaign_id: unknown campaign 'c1'"
        assert code_of(lambda: b.get_allocation("no-such-campaign", timeout=10)) \
            is grpc.StatusCode.NOT_FOUND
        # Nor can B report outcomes into it or score against it.
        assert code_of(lambda: b_bidder.report_outcomes(
            "c1", "forged", {"search": {"spend": 1e6, "revenue": 0.0}}, timeout=10)) \
            is grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: b_bidder.score(journey(time.time()), campaign_id="c1")) \
            is grpc.StatusCode.NOT_FOUND
        # B's own c1 is another campaign: configuring it leaves A's as it was.
        theirs = configure(b, "c1", 9000.0)
        assert abs(sum(theirs.spend.values()) - 9000.0) < 1e-6
        again = a.get_allocation("c1", timeout=10)
        assert again.version == mine.version and dict(again.spend) == dict(mine.spend)
        assert abs(sum(b.get_allocation("c1", timeout=10).spend.values()) - 9000.0) < 1e-6


def test_a_tenant_rewriting_its_default_campaign_moves_only_its_own_bids(secure, certs):
    now = time.time()
    with client(secure, A_BIDDER, certs) as a, client(secure, B_ADMIN, certs) as b, \
            client(secure, B_BIDDER, certs) as b_bidder:
        before = a.score(journey(now))
        assert max(before.bid.values()) > 0.001
        configure(b, "", 100.0, bid_cap=0.0001)
        assert max(b_bidder.score(journey(now)).bid.values()) <= 0.0001
        after = a.score(journey(now))
        assert max(after.bid.values()) > 0.001


# -- roles ---------------------------------------------------------------------------------
def test_a_bidder_token_cannot_configure_a_campaign(secure, certs):
    with client(secure, A_BIDDER, certs) as bidder:
        with pytest.raises(grpc.RpcError) as info:
            configure(bidder, "c2", 1000.0)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == "role 'bidder' may not call ConfigureCampaign"
        assert code_of(lambda: bidder.get_allocation("", timeout=10)) \
            is grpc.StatusCode.PERMISSION_DENIED
        # What a bidder is for works.
        assert bidder.score(journey(time.time())).credit
        reply = bidder.report_outcomes("", "bidder-batch", {"search": {"spend": 1.0}}, timeout=10)
        assert reply.accepted == 1


def test_an_ops_token_checks_health_and_nothing_else(secure, certs):
    with client(secure, OPS, certs) as ops:
        ops.wait_ready(timeout=10)
        assert code_of(lambda: ops.score(journey(time.time()))) is grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: ops.get_allocation("", timeout=10)) \
            is grpc.StatusCode.PERMISSION_DENIED


def test_the_score_stream_needs_a_token_and_scores_for_its_tenant(secure, certs):
    async def stream(token: str | None) -> list[pb.ScoreResponse]:
        async with AsyncClient(secure.address, timeout=10, tls=True, token=token,
                               root_certificates=certs.server_ca.pair.cert.read_bytes()) as c:
            requests = [score_request(journey(time.time()), request_id=f"s{i}") for i in range(3)]
            return [reply async for reply in c.score_stream(iter(requests), timeout=10)]

    replies = asyncio.run(stream(A_BIDDER))
    assert [r.request_id for r in replies] == ["s0", "s1", "s2"]
    assert all(not r.HasField("error") and r.credit for r in replies)
    with pytest.raises(grpc.RpcError) as info:
        asyncio.run(stream(None))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


# -- authentication ------------------------------------------------------------------------
@pytest.mark.parametrize("metadata, message", [
    (None, MISSING),
    ((("authorization", "Bearer not-a-token-of-anyone-at-all"),), INVALID),
    ((("authorization", f"Bearer {A_ADMIN}x"),), INVALID),
    ((("authorization", f"Basic {A_ADMIN}"),), "authorization: expected 'Bearer TOKEN'"),
    ((("authorization", "Bearer"),), "authorization: expected 'Bearer TOKEN'"),
])
def test_no_token_or_a_bad_token_is_unauthenticated(secure, certs, metadata, message):
    channel = grpc.secure_channel(secure.address, grpc.ssl_channel_credentials(
        certs.server_ca.pair.cert.read_bytes()))
    with channel:
        stub = pb_grpc.AttributionStub(channel)
        calls = [lambda: stub.Score(score_request(journey(time.time())), timeout=10, metadata=metadata),
                 lambda: stub.GetAllocation(pb.GetAllocationRequest(campaign_id="c1"), timeout=10,
                                            metadata=metadata),
                 lambda: stub.ConfigureCampaign(pb.ConfigureCampaignRequest(campaign_id="c1"),
                                                timeout=10, metadata=metadata)]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            # The same words for every bad token: nothing says whether one exists elsewhere.
            assert info.value.details() == message


def test_health_and_reflection_need_a_token(secure, certs):
    channel = grpc.secure_channel(secure.address, grpc.ssl_channel_credentials(
        certs.server_ca.pair.cert.read_bytes()))
    with channel:
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        for token in (OPS, A_BIDDER, B_ADMIN):
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10,
                                 metadata=(("authorization", f"Bearer {token}"),))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        request_type, _ = v1_messages()
        info_call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(), response_deserializer=bytes)
        with pytest.raises(grpc.RpcError) as refused:
            list(info_call(iter([request_type(list_services="")]), timeout=10))
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        (listing,) = list(info_call(iter([request_type(list_services="")]), timeout=10,
                                    metadata=(("authorization", f"Bearer {A_BIDDER}"),)))
        assert b"attribid.v1.Attribution" in listing


def test_refusals_are_counted_and_logged_without_the_token(secure, certs):
    bad = "Bearer wrong-token-0123456789-secret"
    channel = grpc.secure_channel(secure.address, grpc.ssl_channel_credentials(
        certs.server_ca.pair.cert.read_bytes()))
    with channel:
        stub = pb_grpc.AttributionStub(channel)
        for _ in range(20):
            with pytest.raises(grpc.RpcError):
                stub.GetAllocation(pb.GetAllocationRequest(), timeout=10,
                                   metadata=(("authorization", bad),))
    counted = secure.server.metrics.calls.labels("GetAllocation", "UNAUTHENTICATED").value
    assert counted >= 20
    lines = [line for line in secure.events("refused") if line.get("code") == "UNAUTHENTICATED"]
    # At most one line a second for each kind of refusal: 20 refusals in a burst log few.
    assert 1 <= len(lines) < 20
    assert all("wrong-token" not in str(line) for line in secure.lines)


# -- TLS -----------------------------------------------------------------------------------
def test_the_client_tls_and_token_options(secure, certs):
    # root_certificates as a path or as bytes; tls=True alone would trust the system's CAs.
    with Client(secure.address, timeout=10, tls=True, token=A_BIDDER,
                root_certificates=str(certs.server_ca.pair.cert)) as c:
        c.wait_ready(timeout=10)
        assert 0 < c.score(journey(time.time())).conversion_probability < 1

    async def run() -> float:
        async with AsyncClient(secure.address, timeout=10, token=A_BIDDER,
                               root_certificates=certs.server_ca.pair.cert.read_bytes()) as c:
            await c.wait_ready(timeout=10)
            return (await c.score(journey(time.time()))).conversion_probability

    assert 0 < asyncio.run(run()) < 1


def test_plaintext_or_an_untrusting_client_cannot_talk_to_a_tls_server(secure, certs):
    with Client(secure.address, timeout=3, retries=0, token=A_BIDDER) as plain:
        assert code_of(lambda: plain.score(journey(time.time()))) is grpc.StatusCode.UNAVAILABLE
    with Client(secure.address, timeout=3, retries=0, token=A_BIDDER,
                root_certificates=certs.stranger.pair.cert) as untrusting:
        assert code_of(lambda: untrusting.score(journey(time.time()))) is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_trusted_certificate(certs, token_file):
    with InProcessServer(tls_cert=str(certs.server.cert), tls_key=str(certs.server.key),
                         tls_client_ca=str(certs.client_ca.pair.cert), auth_tokens=str(token_file),
                         metrics_port=-1) as srv:
        assert srv.events("listening")[0]["mutual_tls"] is True
        ca = certs.server_ca.pair.cert
        with Client(srv.address, timeout=3, retries=0, root_certificates=ca, token=A_BIDDER) as bare:
            assert code_of(lambda: bare.score(journey(time.time()))) is grpc.StatusCode.UNAVAILABLE
        with Client(srv.address, timeout=3, retries=0, root_certificates=ca, token=A_BIDDER,
                    client_cert=certs.stranger_client.cert,
                    client_key=certs.stranger_client.key) as stranger:
            assert code_of(lambda: stranger.score(journey(time.time()))) \
                is grpc.StatusCode.UNAVAILABLE
        with Client(srv.address, timeout=10, root_certificates=ca, token=A_BIDDER,
                    client_cert=certs.client.cert, client_key=certs.client.key) as trusted:
            assert trusted.score(journey(time.time())).credit
        # A certificate is not a token: mutual TLS still needs one.
        with Client(srv.address, timeout=10, root_certificates=ca, client_cert=certs.client.cert,
                    client_key=certs.client.key) as tokenless:
            assert code_of(lambda: tokenless.score(journey(time.time()))) \
                is grpc.StatusCode.UNAUTHENTICATED


# -- the token file ------------------------------------------------------------------------
def test_tokens_work_over_plaintext_on_loopback_and_the_file_is_reread_on_change(tmp_path):
    path = tmp_path / "tokens"
    first, second = "first-token-0123456789", "second-token-0123456789"
    path.write_text(f"{first} shop-a admin\n")
    with InProcessServer(auth_tokens=str(path), metrics_port=-1) as srv:
        assert srv.events("listening")[0]["tls"] is False
        with Client(srv.address, timeout=10, token=first) as c1, \
                Client(srv.address, timeout=10, retries=0, token=second) as c2:
            assert c1.get_allocation("", timeout=10).campaign_id == ""
            assert code_of(lambda: c2.get_allocation("", timeout=10)) \
                is grpc.StatusCode.UNAUTHENTICATED
            # Rotate: the second token in, the first out. Seen within about a second.
            path.write_text(f"# rotated\n{second} shop-a admin\n")

            def until(check, timeout: float = 10.0) -> None:
                deadline = time.monotonic() + timeout
                while not check():
                    assert time.monotonic() < deadline, srv.lines[-5:]
                    time.sleep(0.05)

            def works(c: Client) -> bool:
                try:
                    c.get_allocation("", timeout=10)
                    return True
                except grpc.RpcError as exc:
                    assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
                    return False

            until(lambda: works(c2))
            assert not works(c1)
            assert srv.events("tokens reloaded")
            # A broken edit keeps the tokens in force, and says why, naming the line.
            path.write_text(f"{second} shop-a admin\n{first} shop-a\n")
            until(lambda: bool(srv.events("tokens not reloaded")))
            assert f"{path}:2: expected TOKEN TENANT ROLE" in srv.events("tokens not reloaded")[0]["detail"]
            assert works(c2) and not works(c1)
            # reload_tokens() reads the file at once.
            path.write_text(f"{first} shop-a admin\n")
            assert srv.call(srv.server.tokens.reload_tokens) is True
            assert works(c1) and not works(c2)
            # The server's reload (what SIGHUP runs) re-reads the tokens too: here an edit that
            # keeps the size and the modification time, which only a reload can notice.
            stamp = path.stat()
            third = "third-token-0123456789"
            assert len(third) == len(first)
            path.write_text(f"{third} shop-a admin\n")
            os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
            assert not srv.server.tokens.changed()
            srv.call(srv.server.reload)
            with Client(srv.address, timeout=10, token=third) as c3:
                assert works(c3) and not works(c1)


def test_a_malformed_token_file_stops_the_start_naming_the_file_and_line(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# ok so far\nfine-token-0123456789 shop-a admin\nanother-token-0123456 shop-b root\n")
    with pytest.raises(RuntimeError) as info:
        InProcessServer(auth_tokens=str(path), metrics_port=-1).start()
    assert f"{path}:3: role: one of admin, bidder, ops, got 'root'" in str(info.value)


@pytest.mark.parametrize("text, error", [
    ("tok-0123456789abcdef shop admin extra", "f:1: expected TOKEN TENANT ROLE, got 4 fields"),
    ("\n\ntok-0123456789abcdef shop", "f:3: expected TOKEN TENANT ROLE, got 2 fields"),
    ("short shop admin", "f:1: token: at least 16 characters"),
    ("tok-0123456789abcdef sh/op admin", "f:1: tenant: 1 to 64 of letters, digits, '.', '_', '-'"),
    ("tok-0123456789abcdef a admin\ntok-0123456789abcdef b bidder",
     "f:2: token: the same token is on line 1"),
    ("# nothing but comments\n\n", "f: names no token"),
])
def test_token_file_errors_name_the_line(text, error):
    with pytest.raises(TokenFileError) as info:
        parse_tokens(text, "f")
    assert str(info.value) == error
    assert "0123456789abcdef" not in str(info.value)  # a message never quotes a token


def test_token_file_comments_and_blank_lines():
    table = parse_tokens("# head\n\n  tok-0123456789abcdef  shop-a  admin  # note\n"
                         "tok-abcdef0123456789 shop-b ops\n", "f")
    assert sorted((g.tenant, g.role) for g in table.values()) == [("shop-a", "admin"), ("shop-b", "ops")]


def test_an_unreadable_token_file_names_the_setting(tmp_path):
    with pytest.raises(TokenFileError) as info:
        TokenTable(tmp_path / "missing")
    assert str(info.value).startswith(f"auth_tokens: cannot read {tmp_path / 'missing'}")


# -- binding rules -------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, named", [
    ({}, "needs TLS (--tls-cert, --tls-key) and tokens (--auth-tokens), or --insecure"),
    ({"auth_tokens": "t"}, "needs TLS (--tls-cert, --tls-key), or --insecure"),
    ({"tls_cert": "c", "tls_key": "k"}, "needs tokens (--auth-tokens), or --insecure"),
])
def test_a_non_loopback_address_without_tls_and_tokens_is_refused(overrides, named):
    for host in ("0.0.0.0", "10.0.0.1", "[::]", "example.com"):
        with pytest.raises(StartupError) as info:
            check_binding(Settings(address=f"{host}:50051", **overrides))
        assert str(info.value).startswith(f"address: {host}:50051 is not a loopback address")
        assert named in str(info.value)


def test_what_binds_without_complaint():
    check_binding(Settings(address="127.0.0.1:0"))  # today's open loopback server
    check_binding(Settings(address="[::1]:0", auth_tokens="t"))  # tokens over loopback plaintext
    check_binding(Settings(address="0.0.0.0:0", tls_cert="c", tls_key="k", auth_tokens="t"))
    check_binding(Settings(address="0.0.0.0:0", insecure=True))


@pytest.mark.parametrize("overrides, error", [
    ({"tls_cert": "c"}, "tls_key: TLS needs both tls_cert and tls_key"),
    ({"tls_key": "k"}, "tls_cert: TLS needs both tls_cert and tls_key"),
    ({"tls_client_ca": "ca"}, "tls_client_ca: mutual TLS needs tls_cert and tls_key as well"),
])
def test_tls_settings_that_do_not_go_together(overrides, error):
    with pytest.raises(StartupError) as info:
        check_binding(Settings(**overrides))
    assert str(info.value) == error


def test_a_non_loopback_server_is_refused_before_it_binds():
    srv = InProcessServer(address="0.0.0.0:0", metrics_port=-1)
    with pytest.raises(RuntimeError) as info:
        srv.start()
    assert "address: 0.0.0.0:0 is not a loopback address" in str(info.value)
    assert srv.port is None and not srv.events("listening")


def test_a_certificate_file_that_is_not_pem_names_the_setting(tmp_path, certs):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(RuntimeError) as info:
        InProcessServer(tls_cert=str(junk), tls_key=str(certs.server.key), metrics_port=-1).start()
    assert f"tls_cert: {junk} is not a PEM file" in str(info.value)
