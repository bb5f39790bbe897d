"""Unit tests for fakepm.protocol.auth and fakepm.certs.

The client side is always computed for real: md5 the way libpq does it, SCRAM with
scramp's ScramClient or with a small independent RFC 5802 client that sends libpq's empty
``n=``, channel binding from a real certificate, TLS over in-memory BIOs.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import ssl
import stat
import struct

import pytest
import scramp

from fakepm.certs import TestCertificates, make_test_certificates
from fakepm.protocol.auth import (
    AuthFailed,
    Authenticator,
    AuthRequest,
    ScramSecret,
    UserAuth,
    make_md5_hash,
    make_scram_secret,
    tls_server_end_point,
)
from fakepm.protocol.errors import PgError

CB = "tls-server-end-point"


# ----------------------------------------------------------------------------- helpers


def md5hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def libpq_md5_response(password: str, user: str, salt: bytes) -> bytes:
    """What libpq's pg_password_sendauth sends for AuthenticationMD5Password."""
    stage1 = md5hex(password.encode() + user.encode())
    return ("md5" + md5hex(stage1.encode() + salt)).encode() + b"\0"


def password_packet(password: str | bytes) -> bytes:
    if isinstance(password, str):
        password = password.encode()
    return password + b"\0"


def sasl_initial(mechanism: str, data: bytes | None) -> bytes:
    """Body of a SASLInitialResponse message."""
    if data is None:
        return mechanism.encode() + b"\0" + struct.pack("!i", -1)
    return mechanism.encode() + b"\0" + struct.pack("!i", len(data)) + data


def mechanisms_of(req: AuthRequest) -> list[str]:
    assert req.code == 10
    assert req.data.endswith(b"\0\0")
    return [m.decode() for m in req.data[:-2].split(b"\0")]


def expect_fail(exc_info, code: str, message: str, detail: str | None = None) -> PgError:
    err = exc_info.value.error
    assert isinstance(err, PgError)
    assert err.severity == "FATAL"
    assert err.code == code
    assert err.message == message
    if detail is not None:
        assert err.detail == detail
    return err


class LibpqScramClient:
    """An independent RFC 5802/7677 client that behaves like libpq: ``n=`` is empty."""

    def __init__(self, password: str, *, nonce: str = "libpqclientnonce0123", flag: str = "n",
                 cb_data: bytes | None = None, user_attr: str = "") -> None:
        self.password = password
        self.nonce = nonce
        self.flag = flag  # "n", "y" or "p"
        self.cb_data = cb_data
        self.gs2 = {"n": "n,,", "y": "y,,", "p": f"p={CB},,"}[flag]
        self.bare = f"n={user_attr},r={nonce}"

    def first(self) -> bytes:
        return (self.gs2 + self.bare).encode()

    def final(self, server_first: bytes) -> bytes:
        self.server_first = server_first.decode()
        attrs = dict(p.split("=", 1) for p in self.server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce)
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        cbind = self.gs2.encode() + (self.cb_data if self.flag == "p" else b"")
        without_proof = f"c={base64.b64encode(cbind).decode()},r={attrs['r']}"
        auth_message = f"{self.bare},{self.server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.expected_server_signature = hmac.new(server_key, auth_message, "sha256").digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        assert server_final == b"v=" + base64.b64encode(self.expected_server_signature)


def scram_with_scramp(auth: Authenticator, password: str, *, username: str = "*",
                      channel_binding=None, mechanisms: list[str] | None = None) -> list[AuthRequest]:
    """Run a whole SCRAM exchange with scramp's client; returns the last server batch."""
    first = auth.start()
    assert len(first) == 1
    offered = mechanisms_of(first[0])
    client = scramp.ScramClient(mechanisms or offered, username, password,
                                channel_binding=channel_binding)
    out = auth.receive(sasl_initial(client.mechanism_name, client.get_client_first().encode()))
    assert [r.code for r in out] == [11]
    client.set_server_first(out[0].data.decode())
    last = auth.receive(client.get_client_final().encode())
    if last and last[0].code == 12:
        client.set_server_final(last[0].data.decode())  # raises if the signature is wrong
    return last


def scram_libpq(auth: Authenticator, client: LibpqScramClient, mechanism: str = "SCRAM-SHA-256"):
    auth.start()
    out = auth.receive(sasl_initial(mechanism, client.first()))
    assert [r.code for r in out] == [11]
    return auth.receive(client.final(out[0].data))


@pytest.fixture(scope="module")
def certs():
    c = make_test_certificates()
    yield c
    c.cleanup()


# ----------------------------------------------------------------------------- trust


def test_trust_sends_ok_at_once():
    auth = Authenticator(None, "anyone")
    assert not auth.done and not auth.expects_response
    assert auth.start() == [AuthRequest(0)]
    assert auth.done and not auth.expects_response
    with pytest.raises(RuntimeError):
        auth.receive(b"x\0")
    with pytest.raises(RuntimeError):
        auth.start()


def test_default_applies_only_without_users():
    assert Authenticator(None, "bob", default=UserAuth("password", "pw")).start() == [AuthRequest(3)]
    # users given: "bob" is unknown, default ignored -> mock SCRAM
    auth = Authenticator({"alice": UserAuth("trust")}, "bob", default=UserAuth("trust"))
    assert mechanisms_of(auth.start()[0]) == ["SCRAM-SHA-256"]
    # users None and default None: nobody is known
    auth = Authenticator(None, "bob", default=None)
    assert auth.start()[0].code == 10 and not auth.known


def test_receive_before_start_is_a_bug():
    auth = Authenticator({"u": UserAuth("password", "pw")}, "u")
    with pytest.raises(RuntimeError):
        auth.receive(b"pw\0")


# ----------------------------------------------------------------------------- cleartext


def test_cleartext_ok():
    auth = Authenticator({"pwuser": UserAuth("password", "pwpass")}, "pwuser")
    assert auth.start() == [AuthRequest(3)]
    assert auth.expects_response
    assert auth.receive(password_packet("pwpass")) == [AuthRequest(0)]
    assert auth.done and not auth.expects_response and not auth.failed


def test_cleartext_wrong_password():
    auth = Authenticator({"pwuser": UserAuth("password", "pwpass")}, "pwuser")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(password_packet("nope"))
    expect_fail(ei, "28P01", 'password authentication failed for user "pwuser"')
    assert auth.failed and not auth.done and not auth.expects_response
    with pytest.raises(RuntimeError):
        auth.receive(password_packet("pwpass"))


def test_cleartext_empty_password_is_refused():
    auth = Authenticator({"pwuser": UserAuth("password", "pwpass")}, "pwuser")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(b"\0")
    expect_fail(ei, "28P01", "empty password returned by client")


@pytest.mark.parametrize("payload", [b"pwpass", b"pw\0pass\0", b""])
def test_cleartext_bad_packet(payload):
    auth = Authenticator({"pwuser": UserAuth("password", "pwpass")}, "pwuser")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(payload)
    expect_fail(ei, "08P01", "invalid password packet size")


def test_cleartext_against_stored_md5_hash_and_scram_secret():
    for stored in (make_md5_hash("s3cret", "carol"), make_scram_secret("s3cret")):
        auth = Authenticator({"carol": UserAuth("password", stored)}, "carol")
        assert auth.start() == [AuthRequest(3)]
        assert auth.receive(password_packet("s3cret")) == [AuthRequest(0)]
        auth = Authenticator({"carol": UserAuth("password", stored)}, "carol")
        auth.start()
        with pytest.raises(AuthFailed):
            auth.receive(password_packet("s3cret!"))
        # the stored form itself is not the password
        auth = Authenticator({"carol": UserAuth("password", stored)}, "carol")
        auth.start()
        with pytest.raises(AuthFailed):
            auth.receive(password_packet(stored))


def test_unknown_user_with_cleartext_users_still_gets_same_message():
    auth = Authenticator({"pwuser": UserAuth("password", "pwpass")}, "ghost")
    assert auth.start()[0].code == 10  # mock SCRAM, like PostgreSQL with password_encryption=scram
    client = LibpqScramClient("pwpass")
    out = auth.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    with pytest.raises(AuthFailed) as ei:
        auth.receive(client.final(out[0].data))
    expect_fail(ei, "28P01", 'password authentication failed for user "ghost"')


# ----------------------------------------------------------------------------- md5


def test_md5_ok_with_libpq_computation():
    auth = Authenticator({"md5user": UserAuth("md5", "md5pass")}, "md5user")
    (req,) = auth.start()
    assert req.code == 5 and len(req.data) == 4
    assert auth.receive(libpq_md5_response("md5pass", "md5user", req.data)) == [AuthRequest(0)]
    assert auth.done


def test_md5_random_salt_differs():
    salts = {Authenticator({"u": UserAuth("md5", "p")}, "u").start()[0].data for _ in range(8)}
    assert len(salts) > 1


def test_md5_wrong_password_and_user_bound():
    auth = Authenticator({"md5user": UserAuth("md5", "md5pass")}, "md5user")
    (req,) = auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(libpq_md5_response("wrong", "md5user", req.data))
    expect_fail(ei, "28P01", 'password authentication failed for user "md5user"')
    # the hash includes the user name: right password computed for another user fails
    auth = Authenticator({"md5user": UserAuth("md5", "md5pass")}, "md5user")
    (req,) = auth.start()
    with pytest.raises(AuthFailed):
        auth.receive(libpq_md5_response("md5pass", "other", req.data))


def test_md5_empty_password():
    auth = Authenticator({"md5user": UserAuth("md5", "md5pass")}, "md5user")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(b"\0")
    expect_fail(ei, "28P01", "empty password returned by client")


def test_md5_replays_captured_asyncpg_exchange():
    # captures/asyncpg_connect_md5.txt: salt=1563a40a, client sent this (password md5pass)
    salt = bytes.fromhex("1563a40a")
    auth = Authenticator({"md5user": UserAuth("md5", "md5pass")}, "md5user", md5_salt=salt)
    assert auth.start() == [AuthRequest(5, salt)]
    assert auth.receive(b"md56c30fbc0b24a947389aee0c97b2209de\0") == [AuthRequest(0)]


def test_md5_with_stored_hash():
    stored = make_md5_hash("md5pass", "md5user")
    assert stored == "md5" + md5hex(b"md5passmd5user")
    salt = bytes.fromhex("622a8bb2")  # captures/jdbc_connect_md5.txt
    auth = Authenticator({"md5user": UserAuth("md5", stored)}, "md5user", md5_salt=salt)
    auth.start()
    assert auth.receive(b"md56fb6975b3912dfc1c28b6d8094faf5d5\0") == [AuthRequest(0)]


def test_md5_method_with_scram_secret_upgrades_to_scram():
    secret = make_scram_secret("s3cret")
    auth = Authenticator({"dave": UserAuth("md5", secret)}, "dave")
    assert auth.method == "scram-sha-256"
    last = scram_with_scramp(auth, "s3cret")
    assert [r.code for r in last] == [12, 0]


# ----------------------------------------------------------------------------- SCRAM


@pytest.mark.parametrize("username", ["*", "scramuser", "someone-else"])
def test_scram_ok_with_scramp_client_any_n(username):
    auth = Authenticator({"scramuser": UserAuth("scram-sha-256", "scrampass")}, "scramuser")
    last = scram_with_scramp(auth, "scrampass", username=username)
    assert [r.code for r in last] == [12, 0]  # SASLFinal and Ok in the same batch
    assert auth.done and not auth.expects_response
    assert auth.mechanism == "SCRAM-SHA-256"


@pytest.mark.parametrize("user_attr", ["", "*", "scramuser", "x=2Cy"])
def test_scram_ok_with_libpq_like_client(user_attr):
    auth = Authenticator({"scramuser": UserAuth("scram-sha-256", "scrampass")}, "scramuser")
    client = LibpqScramClient("scrampass", user_attr=user_attr)
    last = scram_libpq(auth, client)
    assert [r.code for r in last] == [12, 0]
    client.verify(last[0].data)


def test_scram_server_first_format():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    auth.start()
    out = auth.receive(sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abc"))
    r, s, i = out[0].data.decode().split(",")
    assert r.startswith("r=abc") and len(r) == len("r=abc") + 24  # 18 random bytes, base64
    assert len(base64.b64decode(s[2:])) == 16 and i == "i=4096"


def test_scram_wrong_password_fails_after_full_exchange():
    auth = Authenticator({"scramuser": UserAuth("scram-sha-256", "scrampass")}, "scramuser")
    with pytest.raises(AuthFailed) as ei:
        scram_with_scramp(auth, "wrong")
    expect_fail(ei, "28P01", 'password authentication failed for user "scramuser"')
    assert auth.failed and not auth.expects_response


def test_scram_unknown_user_runs_mock_exchange():
    users = {"scramuser": UserAuth("scram-sha-256", "scrampass")}
    auth = Authenticator(users, "ghost")
    assert not auth.known
    (req,) = auth.start()
    assert mechanisms_of(req) == ["SCRAM-SHA-256"]
    client = LibpqScramClient("scrampass")
    out = auth.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    assert [r.code for r in out] == [11]  # first round completes like for a real user
    salt1 = out[0].data.decode().split(",")[1]
    with pytest.raises(AuthFailed) as ei:
        auth.receive(client.final(out[0].data))
    expect_fail(ei, "28P01", 'password authentication failed for user "ghost"')

    # the mock salt is stable per user (a changing salt would betray an unknown user) ...
    auth2 = Authenticator(users, "ghost")
    auth2.start()
    out2 = auth2.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    assert out2[0].data.decode().split(",")[1] == salt1
    # ... and differs between users
    auth3 = Authenticator(users, "phantom")
    auth3.start()
    out3 = auth3.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    assert out3[0].data.decode().split(",")[1] != salt1


def test_scram_unknown_user_with_scramp_client_same_message_as_wrong_password():
    users = {"scramuser": UserAuth("scram-sha-256", "scrampass")}
    with pytest.raises(AuthFailed) as wrong:
        scram_with_scramp(Authenticator(users, "scramuser"), "bad")
    with pytest.raises(AuthFailed) as unknown:
        scram_with_scramp(Authenticator(users, "scramuser2"), "scrampass")
    assert wrong.value.error.code == unknown.value.error.code == "28P01"
    assert wrong.value.error.message.replace('"scramuser"', "X") == \
        unknown.value.error.message.replace('"scramuser2"', "X")


def test_scram_method_with_stored_md5_hash_cannot_succeed():
    stored = make_md5_hash("pw", "erin")
    auth = Authenticator({"erin": UserAuth("scram-sha-256", stored)}, "erin")
    with pytest.raises(AuthFailed) as ei:
        scram_with_scramp(auth, "pw")
    expect_fail(ei, "28P01", 'password authentication failed for user "erin"')


def test_scram_with_stored_secret():
    secret = make_scram_secret("scrampass", salt=b"0123456789abcdef", iterations=5000)
    parsed = ScramSecret.parse(secret)
    assert parsed is not None and parsed.iterations == 5000 and parsed.salt == b"0123456789abcdef"
    # the same secret as scramp computes it
    salt, stored_key, server_key, i = scramp.ScramMechanism().make_auth_info(
        "scrampass", iteration_count=5000, salt=b"0123456789abcdef")
    assert (parsed.stored_key, parsed.server_key) == (stored_key, server_key)
    assert str(parsed) == secret
    auth = Authenticator({"scramuser": UserAuth("scram-sha-256", secret)}, "scramuser",
                         salt=b"ignored-for-a-stored-secret")
    auth.start()
    client = LibpqScramClient("scrampass")
    out = auth.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    assert ",s=MDEyMzQ1Njc4OWFiY2RlZg==,i=5000" in out[0].data.decode()
    last = auth.receive(client.final(out[0].data))
    client.verify(last[0].data)
    with pytest.raises(AuthFailed):
        scram_with_scramp(Authenticator({"u": UserAuth("scram-sha-256", secret)}, "u"), "nope")


CAPTURED_SCRAM = [
    # (capture, client-first, server nonce part, client-final, server-final) -- PG 15.18,
    # user scramuser, password scrampass, salt cSOne5vVXO6bdhR6apP9Jg==, 4096 iterations
    (
        "psycopg2_connect_scram (libpq, n=)",
        "n,,n=,r=Q1S5541i2lhBpjf2/hT5o5R2",
        "8R1Id4pcowcjoEYC++1Quhq4",
        "c=biws,r=Q1S5541i2lhBpjf2/hT5o5R28R1Id4pcowcjoEYC++1Quhq4,"
        "p=SiXUTKdALqbctTgfJ9pDcby8d10dGuqQ6iTXMZW+IVA=",
        "v=De79PbmBHSnUiPMpPB3kknam3iLGaDkd1mxIQXcfjR4=",
    ),
    (
        "jdbc_connect_scram (n=*)",
        "n,,n=*,r=Gqiat}EDn0f'gTD1<nd]@4aD",
        "zKy/ZjYoFpm5PkPnpTbGRdv1",
        "c=biws,r=Gqiat}EDn0f'gTD1<nd]@4aDzKy/ZjYoFpm5PkPnpTbGRdv1,"
        "p=tTIMvDOxRFWlqZBaxtl/mKyW/tW6iMc/iCaWJASNmUc=",
        "v=CWCFUb0JGJ28ve0C8mHw0wnEuNSa6s+vTABr0oR1r9s=",
    ),
    (
        "asyncpg_connect_scram (n=scramuser)",
        "n,,n=scramuser,r=tuWYSUtwohT+Mfj21StcDwlhDBtQQ9JC",
        "27aGb7E/Ha9O4Xi/3rWL3Z2c",
        "c=biws,r=tuWYSUtwohT+Mfj21StcDwlhDBtQQ9JC27aGb7E/Ha9O4Xi/3rWL3Z2c,"
        "p=08oUYsinB8qpTH+yDElSwWpFMONJiNDfhlvNar46si4=",
        "v=T516uIknj+nQxPa/ua5mEKG1XStaNyZVRdHY9DnDA1k=",
    ),
]


@pytest.mark.parametrize("capture,cfirst,snonce,cfinal,sfinal", CAPTURED_SCRAM,
                         ids=[c[0] for c in CAPTURED_SCRAM])
def test_scram_replays_real_postgres_transcripts(capture, cfirst, snonce, cfinal, sfinal):
    salt = base64.b64decode("cSOne5vVXO6bdhR6apP9Jg==")
    auth = Authenticator({"scramuser": UserAuth("scram-sha-256", "scrampass")}, "scramuser",
                         salt=salt, nonce=snonce)
    assert auth.start() == [AuthRequest(10, b"SCRAM-SHA-256\0\0")]
    cnonce = cfirst.split("r=")[1]
    out = auth.receive(sasl_initial("SCRAM-SHA-256", cfirst.encode()))
    assert out == [AuthRequest(11, f"r={cnonce}{snonce},s=cSOne5vVXO6bdhR6apP9Jg==,i=4096".encode())]
    assert auth.receive(cfinal.encode()) == [AuthRequest(12, sfinal.encode()), AuthRequest(0)]


def test_scram_transcripts_reproducible_with_fixed_nonce_and_salt():
    def run():
        auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                             salt=b"fixed-salt-16byt", nonce="fixedservernonce")
        client = scramp.ScramClient(["SCRAM-SHA-256"], "u", "pw", c_nonce="fixedclientnonce")
        transcript = auth.start()
        transcript += auth.receive(sasl_initial("SCRAM-SHA-256", client.get_client_first().encode()))
        client.set_server_first(transcript[-1].data.decode())
        transcript += auth.receive(client.get_client_final().encode())
        return transcript

    assert run() == run()
    # and the mock exchange of an unknown user is reproducible too
    def run_unknown():
        auth = Authenticator({}, "ghost", salt=b"fixed-salt-16byt", nonce="fixedservernonce")
        return auth.start() + auth.receive(sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abc"))
    assert run_unknown() == run_unknown()
    assert b"s=Zml4ZWQtc2FsdC0xNmJ5dA==" in run_unknown()[-1].data


def test_scram_no_initial_response_gets_empty_challenge():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    auth.start()
    assert auth.receive(sasl_initial("SCRAM-SHA-256", None)) == [AuthRequest(11, b"")]
    assert auth.expects_response
    client = LibpqScramClient("pw")
    out = auth.receive(client.first())  # the client-first comes as a SASLResponse
    last = auth.receive(client.final(out[0].data))
    assert [r.code for r in last] == [12, 0]
    client.verify(last[0].data)


def test_scram_password_needing_saslprep():
    # U+00A0 (non-ASCII space) is mapped to U+0020 by SASLprep on both sides
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pass\u00a0word")}, "u")
    assert [r.code for r in scram_with_scramp(auth, "pass word")] == [12, 0]


def test_scram_password_rejected_by_saslprep_uses_raw_bytes():
    # control characters are prohibited by SASLprep: libpq and PostgreSQL use the raw bytes
    pw = "tab\there"
    auth = Authenticator({"u": UserAuth("scram-sha-256", pw)}, "u")
    client = LibpqScramClient(pw)
    last = scram_libpq(auth, client)
    client.verify(last[0].data)


# ----------------------------------------------------------------------------- channel binding


def tls_pair(certs: TestCertificates, hostname: str):
    """Handshake a client and a server SSLObject over MemoryBIOs; returns both."""
    server_ctx = certs.server_ssl_context()
    client_ctx = ssl.create_default_context(cafile=certs.ca_file)
    bios = [ssl.MemoryBIO() for _ in range(4)]
    s_in, s_out, c_in, c_out = bios
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    done = {"client": False, "server": False}
    for _ in range(50):
        for name, obj, out, peer_in in (("client", client, c_out, s_in),
                                        ("server", server, s_out, c_in)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            data = out.read()
            if data:
                peer_in.write(data)
        if all(done.values()):
            break
    assert all(done.values()), "handshake did not complete"

    def pump(src, src_out, dst_in, dst, payload):
        src.write(payload)
        dst_in.write(src_out.read())
        return dst.read(len(payload))

    assert pump(client, c_out, s_in, server, b"ping") == b"ping"
    assert pump(server, s_out, c_in, client, b"pong") == b"pong"
    return client, server


def test_tls_server_end_point_of_test_certificate(certs):
    h = tls_server_end_point(certs.cert_der)
    assert h == hashlib.sha256(certs.cert_der).digest()  # trustme signs with SHA-256
    assert h == certs.tls_endpoint_hash
    assert h == bytes(scramp.core.CBindData.from_der(certs.cert_der))


def _self_signed(hash_alg, key=None):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = datetime.datetime(2024, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hash_alg))
    return cert.public_bytes(Encoding.DER)


def test_tls_server_end_point_hash_choice():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519

    der = _self_signed(hashes.SHA384())
    assert tls_server_end_point(der) == hashlib.sha384(der).digest()
    der = _self_signed(hashes.SHA512())
    assert tls_server_end_point(der) == hashlib.sha512(der).digest()
    try:
        der = _self_signed(hashes.SHA1())
    except Exception:  # pragma: no cover - a backend refusing SHA-1 signatures
        pass
    else:
        assert tls_server_end_point(der) == hashlib.sha256(der).digest()
    der = _self_signed(None, ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="no hash"):
        tls_server_end_point(der)


def test_scram_plus_offered_on_tls(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=certs.tls_endpoint_hash)
    assert auth.start() == [AuthRequest(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")]


def test_scram_plus_with_scramp_client_over_real_tls(certs):
    client_tls, _server_tls = tls_pair(certs, "localhost")
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=tls_server_end_point(certs.cert_der))
    # scramp computes the binding data itself from the peer certificate of the TLS object
    last = scram_with_scramp(auth, "pw", channel_binding=(CB, client_tls))
    assert auth.mechanism == "SCRAM-SHA-256-PLUS"
    assert [r.code for r in last] == [12, 0]


@pytest.mark.parametrize("user_attr", ["", "*", "u"])
def test_scram_plus_with_libpq_like_client(certs, user_attr):
    h = certs.tls_endpoint_hash
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", tls_endpoint_hash=h)
    client = LibpqScramClient("pw", flag="p", cb_data=h, user_attr=user_attr)
    last = scram_libpq(auth, client, "SCRAM-SHA-256-PLUS")
    client.verify(last[0].data)


def test_scram_plus_wrong_binding_data(certs):
    other = make_test_certificates()
    try:
        auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                             tls_endpoint_hash=certs.tls_endpoint_hash)
        with pytest.raises(AuthFailed) as ei:
            scram_with_scramp(auth, "pw", channel_binding=(CB, other.tls_endpoint_hash))
        expect_fail(ei, "28000", "SCRAM channel binding check failed")
    finally:
        other.cleanup()


def test_scram_plus_unknown_user_fails_late(certs):
    h = certs.tls_endpoint_hash
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "nobody", tls_endpoint_hash=h)
    with pytest.raises(AuthFailed) as ei:
        scram_with_scramp(auth, "pw", channel_binding=(CB, h))
    expect_fail(ei, "28P01", 'password authentication failed for user "nobody"')


def test_scram_without_binding_on_tls_is_allowed(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=certs.tls_endpoint_hash)
    last = scram_with_scramp(auth, "pw", mechanisms=["SCRAM-SHA-256"])  # flag "n"
    assert [r.code for r in last] == [12, 0]
    assert auth.mechanism == "SCRAM-SHA-256"


def test_flag_y_on_tls_is_a_negotiation_error(certs):
    h = certs.tls_endpoint_hash
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", tls_endpoint_hash=h)
    auth.start()
    # scramp's client sends "y" when it can bind but the chosen mechanism is not -PLUS
    client = scramp.ScramClient(["SCRAM-SHA-256"], "u", "pw", channel_binding=(CB, h))
    first = client.get_client_first()
    assert first.startswith("y,,")
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial("SCRAM-SHA-256", first.encode()))
    expect_fail(ei, "28000", "SCRAM channel binding negotiation error")


def test_flag_y_without_tls_is_fine(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    last = scram_with_scramp(auth, "pw", channel_binding=(CB, certs.tls_endpoint_hash))
    assert [r.code for r in last] == [12, 0]
    client = LibpqScramClient("pw", flag="y")
    last = scram_libpq(Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u"), client)
    client.verify(last[0].data)


def test_plus_selected_without_binding_data(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=certs.tls_endpoint_hash)
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial("SCRAM-SHA-256-PLUS", b"n,,n=,r=abc"))
    expect_fail(ei, "08P01", "malformed SCRAM message",
                "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not "
                "include channel binding data.")


def test_binding_data_with_plain_mechanism(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=certs.tls_endpoint_hash)
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial("SCRAM-SHA-256", b"p=tls-server-end-point,,n=,r=abc"))
    expect_fail(ei, "08P01", "malformed SCRAM message")


def test_unsupported_binding_type(certs):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u",
                         tls_endpoint_hash=certs.tls_endpoint_hash)
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=,r=abc"))
    expect_fail(ei, "08P01", 'unsupported SCRAM channel-binding type "tls-unique"')


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN", ""])
def test_invalid_mechanism_without_tls(mech):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial(mech, b"n,,n=,r=abc"))
    expect_fail(ei, "08P01", "client selected an invalid SASL authentication mechanism")


# ----------------------------------------------------------------------------- malformed SASL


def _after_first(client_nonce="abc"):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", nonce="SRV")
    auth.start()
    auth.receive(sasl_initial("SCRAM-SHA-256", f"n,,n=,r={client_nonce}".encode()))
    return auth


@pytest.mark.parametrize("first,code,message,detail", [
    (b"x,,n=,r=a", "08P01", "malformed SCRAM message", "Unexpected channel-binding flag \"'x'\"."),
    (b"n;,n=,r=a", "08P01", "malformed SCRAM message", "Comma expected, but found character \"';'\"."),
    (b"n,,r=a", "08P01", "malformed SCRAM message", "Expected attribute \"n\" but found \"'r'\"."),
    (b"n,,n=", "08P01", "malformed SCRAM message", "Expected attribute \"r\" but found \"0x00\"."),
    (b"n,,n=,r", "08P01", "malformed SCRAM message", "Expected character \"=\" for attribute \"r\"."),
    (b"n,,n=,r=a,1=x", "08P01", "malformed SCRAM message",
     "Attribute expected, but found invalid character \"'1'\"."),
    (b"n,a=someone,n=,r=a", "0A000", "client uses authorization identity, but it is not supported", None),
    (b"n,,m=ext,n=,r=a", "0A000", "client requires an unsupported SCRAM extension", None),
    (b"n,,n=,r=a\x01b", "08P01", "non-printable characters in SCRAM nonce", None),
    (b"", "08P01", "malformed SCRAM message", "The message is empty."),
    (b"n,,n=\0,r=a", "08P01", "malformed SCRAM message", "Message length does not match input length."),
])
def test_malformed_client_first(first, code, message, detail):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(sasl_initial("SCRAM-SHA-256", first))
    expect_fail(ei, code, message, detail)
    assert auth.failed


def test_client_first_extensions_are_ignored():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    client = LibpqScramClient("pw")
    client.bare += ",x=extension"
    last = scram_libpq(auth, client)
    client.verify(last[0].data)


PROOF = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize("final,code,message,detail", [
    ("r=abcSRV,p=" + PROOF, "08P01", "malformed SCRAM message", "Expected attribute \"c\" but found \"'r'\"."),
    ("c=eSws,r=abcSRV,p=" + PROOF, "08P01",
     "unexpected SCRAM channel-binding attribute in client-final-message", None),
    ("c=biws,r=abcSRV", "08P01", "malformed SCRAM message", "Attribute expected, but found end of string."),
    ("c=biws,r=abcSRV,p=!!!!", "08P01", "malformed SCRAM message", "Malformed proof in client-final-message."),
    ("c=biws,r=abcSRV,p=" + base64.b64encode(bytes(16)).decode(), "08P01", "malformed SCRAM message",
     "Malformed proof in client-final-message."),
    ("c=biws,r=abcSRV,p=" + PROOF + ",x=1", "08P01", "malformed SCRAM message",
     "Garbage found at the end of client-final-message."),
    ("c=biws,r=abcXXX,p=" + PROOF, "08P01", "invalid SCRAM response", "Nonce does not match."),
    ("c=biws,r=abc,p=" + PROOF, "08P01", "invalid SCRAM response", "Nonce does not match."),
    ("c=biws,r=abcSRV,p=" + PROOF, "28P01", 'password authentication failed for user "u"', None),
    ("c=biws,r=abcSRV,x=ext,p=" + PROOF, "28P01", 'password authentication failed for user "u"', None),
])
def test_malformed_client_final(final, code, message, detail):
    auth = _after_first()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(final.encode())
    expect_fail(ei, code, message, detail)


@pytest.mark.parametrize("body,message", [
    (b"SCRAM-SHA-256", "invalid string in message"),
    (b"SCRAM-SHA-256\0\0\0", "insufficient data left in message"),
    (b"SCRAM-SHA-256\0\0\0\0\x10abc", "insufficient data left in message"),
    (b"SCRAM-SHA-256\0\0\0\0\x02abc", "invalid message format"),
    (b"SCRAM-SHA-256\0\xff\xff\xff\xffX", "invalid message format"),
])
def test_malformed_sasl_initial_response(body, message):
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u")
    auth.start()
    with pytest.raises(AuthFailed) as ei:
        auth.receive(body)
    expect_fail(ei, "08P01", message)


# ----------------------------------------------------------------------------- fault hooks


def test_bad_server_signature_is_detected_by_client():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", bad_server_signature=True)
    with pytest.raises(scramp.ScramException, match="signature"):
        scram_with_scramp(auth, "pw")
    assert auth.done  # the server side thinks all is well and sends Ok after it


def test_bad_server_signature_with_libpq_like_client():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", bad_server_signature=True)
    client = LibpqScramClient("pw")
    last = scram_libpq(auth, client)
    assert [r.code for r in last] == [12, 0]
    with pytest.raises(AssertionError):
        client.verify(last[0].data)


def test_skip_sasl_final():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", skip_sasl_final=True)
    client = LibpqScramClient("pw")
    assert scram_libpq(auth, client) == [AuthRequest(0)]
    assert auth.done


def test_faults_do_not_let_a_wrong_password_in():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", skip_sasl_final=True,
                         bad_server_signature=True)
    with pytest.raises(AuthFailed):
        scram_libpq(auth, LibpqScramClient("wrong"))


# ----------------------------------------------------------------------------- validation


def test_method_validation():
    with pytest.raises(ValueError) as ei:
        UserAuth("md6", "x")
    for valid in ("trust", "password", "md5", "scram-sha-256"):
        assert valid in str(ei.value)
    with pytest.raises(ValueError):
        UserAuth("SCRAM")
    for method in ("password", "md5", "scram-sha-256"):
        with pytest.raises(ValueError, match="needs a non-empty password"):
            UserAuth(method)
        with pytest.raises(ValueError, match="needs a non-empty password"):
            UserAuth(method, "")
    UserAuth("trust")
    UserAuth("trust", "ignored")
    with pytest.raises(TypeError):
        UserAuth("password", b"bytes")  # type: ignore[arg-type]


def test_users_values_are_revalidated():
    ua = UserAuth("trust")
    ua.method = "kerberos"
    with pytest.raises(ValueError):
        Authenticator({"u": ua}, "u")
    with pytest.raises(TypeError):
        Authenticator({"u": "trust"}, "u")  # type: ignore[dict-item]


def test_stored_password_kinds():
    assert UserAuth("md5", "plain").stored_kind == "plain"
    assert UserAuth("md5", make_md5_hash("a", "b")).stored_kind == "md5"
    assert UserAuth("md5", "md5" + "A" * 32).stored_kind == "plain"  # PostgreSQL: lower-case hex only
    assert UserAuth("md5", make_scram_secret("a")).stored_kind == "scram"
    assert UserAuth("trust").stored_kind is None


@pytest.mark.parametrize("secret", [
    "SCRAM-SHA-256$4096:c2FsdA==",
    "SCRAM-SHA-256$x:c2FsdHNhbHRzYWx0$" + PROOF + ":" + PROOF,
    "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$" + base64.b64encode(b"short").decode() + ":" + PROOF,
    "SCRAM-SHA-256$4096:!!!$" + PROOF + ":" + PROOF,
])
def test_malformed_scram_secret(secret):
    with pytest.raises(ValueError, match="malformed SCRAM secret"):
        UserAuth("scram-sha-256", secret)


def test_scram_secret_below_scramp_limits():
    with pytest.raises(ValueError, match="4096"):
        UserAuth("scram-sha-256", make_scram_secret("pw", iterations=1000))


@pytest.mark.parametrize("kwargs", [
    {"md5_salt": b"abc"},
    {"md5_salt": "abcd"},
    {"salt": b"short"},
    {"nonce": "has,comma"},
    {"nonce": ""},
    {"nonce": "sp ace"},
    {"scram_iterations": 100},
    {"scram_iterations": 4096.0},
    {"tls_endpoint_hash": b""},
])
def test_authenticator_argument_validation(kwargs):
    with pytest.raises(ValueError):
        Authenticator(None, "u", **kwargs)


def test_scram_iterations_are_used():
    auth = Authenticator({"u": UserAuth("scram-sha-256", "pw")}, "u", scram_iterations=8192)
    client = LibpqScramClient("pw")
    auth.start()
    out = auth.receive(sasl_initial("SCRAM-SHA-256", client.first()))
    assert out[0].data.endswith(b",i=8192")
    client.verify(auth.receive(client.final(out[0].data))[0].data)


# ----------------------------------------------------------------------------- certificates


def test_certificate_files(certs):
    assert os.path.isdir(certs.directory)
    for path, marker in ((certs.ca_file, b"BEGIN CERTIFICATE"), (certs.cert_file, b"BEGIN CERTIFICATE"),
                         (certs.key_file, b"PRIVATE KEY")):
        assert os.path.dirname(path) == certs.directory
        with open(path, "rb") as f:
            assert marker in f.read()
    assert [os.path.basename(p) for p in (certs.ca_file, certs.cert_file, certs.key_file)] == \
        ["ca.pem", "server.pem", "server.key"]
    assert stat.S_IMODE(os.stat(certs.key_file).st_mode) == 0o600
    with open(certs.cert_file) as f:
        first_pem = f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    assert ssl.PEM_cert_to_DER_cert(first_pem) == certs.cert_der


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_tls_handshake_over_memory_bio(certs, hostname):
    client, server = tls_pair(certs, hostname)
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    assert client.getpeercert(binary_form=True) == certs.cert_der


def test_tls_handshake_wrong_hostname_fails(certs):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_pair(certs, "example.com")


def test_tls_handshake_untrusted_ca_fails(certs):
    other = make_test_certificates()
    try:
        server_ctx = certs.server_ssl_context()
        client_ctx = ssl.create_default_context(cafile=other.ca_file)
        s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            for _ in range(10):
                for obj, out, peer in ((client, c_out, s_in), (server, s_out, c_in)):
                    try:
                        obj.do_handshake()
                    except ssl.SSLWantReadError:
                        pass
                    peer.write(out.read())
    finally:
        other.cleanup()


def test_server_context_refuses_tls_1_1(certs):
    assert certs.server_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2
    assert certs.client_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_cleanup_of_own_directory():
    c = make_test_certificates(["localhost"])
    assert os.path.exists(c.key_file)
    c.cleanup()
    assert not os.path.exists(c.directory)
    c.cleanup()  # idempotent


def test_given_directory_keeps_directory(tmp_path):
    target = tmp_path / "certs"
    with make_test_certificates(directory=str(target)) as c:
        assert c.directory == str(target) and not c.owns_directory
        (target / "other.txt").write_text("keep me")
        tls_pair(c, "127.0.0.1")
    assert sorted(os.listdir(target)) == ["other.txt"]


def test_certificate_needs_hostnames():
    with pytest.raises(ValueError):
        make_test_certificates(())


def test_each_call_makes_a_new_ca():
    a, b = make_test_certificates(), make_test_certificates()
    try:
        assert a.cert_der != b.cert_der and a.directory != b.directory
    finally:
        a.cleanup()
        b.cleanup()


@pytest.mark.parametrize("method,code", [("password", 3), ("md5", 5)])
def test_unknown_method_for_unknown_users(method, code):
    users = {"u": UserAuth(method, "pw")}
    auth = Authenticator(users, "ghost", unknown_method=method)
    (req,) = auth.start()
    assert req.code == code
    answer = libpq_md5_response("pw", "ghost", req.data) if method == "md5" else password_packet("pw")
    with pytest.raises(AuthFailed) as ei:
        auth.receive(answer)
    expect_fail(ei, "28P01", 'password authentication failed for user "ghost"')
    # a known user is not affected
    auth = Authenticator(users, "u", unknown_method=method)
    (req,) = auth.start()
    answer = libpq_md5_response("pw", "u", req.data) if method == "md5" else password_packet("pw")
    assert auth.receive(answer) == [AuthRequest(0)]


@pytest.mark.parametrize("bad", ["trust", "gss", ""])
def test_unknown_method_validation(bad):
    with pytest.raises(ValueError, match="unknown_method"):
        Authenticator({}, "u", unknown_method=bad)
