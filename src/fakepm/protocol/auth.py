"""Server side of PostgreSQL authentication: trust, password, md5, SCRAM-SHA-256(-PLUS).

Sans-I/O: an :class:`Authenticator` is fed the bodies of the client's ``'p'`` messages and
answers with :class:`AuthRequest` values (each becomes one ``'R'`` Authentication* message:
int32 code + data). It never touches a socket, a thread or a clock, and it does not know the
message codec. Randomness (md5 salt, SCRAM salt and server nonce) comes from :mod:`secrets`
and can be fixed for reproducible transcripts.

Wire behaviour follows PostgreSQL (src/backend/libpq/auth.c, auth-sasl.c, auth-scram.c):

* ``trust``: ``AuthenticationOk`` (code 0) at once.
* ``password``: ``AuthenticationCleartextPassword`` (3); the client answers with its password.
* ``md5``: ``AuthenticationMD5Password`` (5) + 4-byte salt; the client answers
  ``"md5" + md5hex(md5hex(password + user) + salt)``.
* ``scram-sha-256``: ``AuthenticationSASL`` (10) listing ``SCRAM-SHA-256`` (and first
  ``SCRAM-SHA-256-PLUS`` when the connection is TLS, i.e. ``tls_endpoint_hash`` is given),
  then ``AuthenticationSASLContinue`` (11) with the server-first message, then
  ``AuthenticationSASLFinal`` (12) and ``AuthenticationOk`` (0) in the same batch.
  The user name in the client-first message (``n=``, ``n=*`` or the real name) is ignored:
  the user is always the startup packet's. Channel binding is ``tls-server-end-point``
  only (see :func:`tls_server_end_point`).

What a configured password may be (``UserAuth.password``), as PostgreSQL stores them in
``pg_authid.rolpassword``:

* plain text, e.g. ``"secret"``;
* an md5 hash: ``"md5"`` + 32 lower-case hex digits = ``"md5" + md5hex(password + user)``
  (see :func:`make_md5_hash`);
* a SCRAM secret: ``SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>``
  (see :func:`make_scram_secret`).

Combinations behave as in PostgreSQL: ``md5`` with a SCRAM secret runs a SCRAM exchange
instead (hba ``md5`` upgrades to SCRAM for such users); ``scram-sha-256`` with an md5 hash
cannot succeed (a SCRAM exchange with a mock secret that fails at the end); ``password``
works with all three forms.

Failures raise :class:`AuthFailed` carrying a FATAL :class:`~fakepm.protocol.errors.PgError`:

* wrong password, unknown user, user whose stored password cannot be used:
  28P01 ``password authentication failed for user "<user>"`` -- the same text for an
  unknown user, who also gets a complete first SCRAM round (mock salt, stable per user)
  before failing, so a client cannot tell early that the user does not exist (or, with
  ``unknown_method``, a cleartext/md5 request answered by the same failure);
* empty password packet: 28P01 ``empty password returned by client``;
* password packet whose length disagrees with its string: 08P01 ``invalid password packet size``;
* SASL mechanism not offered: 08P01 ``client selected an invalid SASL authentication mechanism``;
* SCRAM syntax problems: 08P01 ``malformed SCRAM message`` with a detail naming the problem
  (PostgreSQL's wording); nonce mismatch: 08P01 ``invalid SCRAM response`` (detail
  ``Nonce does not match.``); flag ``y`` on a TLS connection: 28000
  ``SCRAM channel binding negotiation error``; wrong binding data: 28000
  ``SCRAM channel binding check failed``; ``c=`` not matching the non-binding flag: 08P01
  ``unexpected SCRAM channel-binding attribute in client-final-message``.

The SCRAM arithmetic and verifiers come from :mod:`scramp`. scramp's server parser cannot
read what libpq sends (it rejects the empty ``n=``), so the messages are parsed here with
PostgreSQL's rules and scramp sees a normalised client-first message (the auth message
still uses the client's exact bytes). scramp limits: at least 4096 iterations and salts of
at least 12 bytes (PostgreSQL's defaults are 4096 and 16).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import threading
from dataclasses import dataclass

# scramp (and the importlib.metadata/asn1crypto it pulls in, ~20-70 ms) is imported inside
# the SCRAM functions only: trust/md5/cleartext users and `import fakepm` never pay for it.

from fakepm.protocol.errors import PgError, fatal

__all__ = [
    "AUTH_OK",
    "AUTH_CLEARTEXT_PASSWORD",
    "AUTH_MD5_PASSWORD",
    "AUTH_SASL",
    "AUTH_SASL_CONTINUE",
    "AUTH_SASL_FINAL",
    "METHODS",
    "SCRAM_SHA_256",
    "SCRAM_SHA_256_PLUS",
    "AuthRequest",
    "AuthFailed",
    "UserAuth",
    "ScramSecret",
    "Authenticator",
    "make_md5_hash",
    "make_scram_secret",
    "tls_server_end_point",
]

# Authentication request codes (the int32 after 'R').
AUTH_OK = 0
AUTH_CLEARTEXT_PASSWORD = 3
AUTH_MD5_PASSWORD = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

METHODS = ("trust", "password", "md5", "scram-sha-256")

SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"
_CB_TYPE = "tls-server-end-point"

# PostgreSQL's defaults (src/include/common/scram-common.h).
SCRAM_DEFAULT_ITERATIONS = 4096
SCRAM_DEFAULT_SALT_LEN = 16
SCRAM_RAW_NONCE_LEN = 18
SCRAM_KEY_LEN = 32
# scramp's lower limits.
_SCRAMP_MIN_ITERATIONS = 4096
_SCRAMP_MIN_SALT_LEN = 12

# Per-process secret from which salts are derived when none is injected: the salt of a
# user is then stable across connections (like a stored verifier) for known and unknown
# users alike, as PostgreSQL does with its cluster-wide mock authentication nonce.
_MOCK_AUTH_NONCE = secrets.token_bytes(32)

_MD5_HASH_RE = re.compile(r"^md5[0-9a-f]{32}$")


@dataclass(frozen=True)
class AuthRequest:
    """One ``'R'`` (Authentication*) message: int32 ``code`` followed by ``data``."""

    code: int  # 0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASLContinue, 12 SASLFinal
    data: bytes = b""  # md5: 4-byte salt; SASL: NUL-terminated names + NUL; 11/12: SCRAM text


class AuthFailed(Exception):
    """Authentication ended in failure; ``.error`` is the FATAL PgError to send."""

    def __init__(self, error: PgError) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------- stored forms


@dataclass(frozen=True)
class ScramSecret:
    """A parsed ``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`` secret."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    PREFIX = "SCRAM-SHA-256$"

    def __str__(self) -> str:
        b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
        return (
            f"{self.PREFIX}{self.iterations}:{b64(self.salt)}"
            f"${b64(self.stored_key)}:{b64(self.server_key)}"
        )

    @classmethod
    def parse(cls, text: str) -> "ScramSecret | None":
        """The secret in ``text``, or None when ``text`` is not a SCRAM secret."""
        if not text.startswith(cls.PREFIX):
            return None
        m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$:]+)\$([^$:]+):([^$:]+)", text)
        if not m:
            return None
        try:
            iterations = int(m.group(1))
            salt, stored, server = (
                base64.b64decode(g, validate=True) for g in m.group(2, 3, 4)
            )
        except (ValueError, binascii.Error):
            return None
        if iterations < 1 or len(stored) != SCRAM_KEY_LEN or len(server) != SCRAM_KEY_LEN:
            return None
        if not salt:
            return None
        return cls(iterations, salt, stored, server)


def _classify_password(password: str) -> tuple[str, object]:
    """("plain", str) | ("md5", str) | ("scram", ScramSecret), as PostgreSQL's get_password_type."""
    if _MD5_HASH_RE.match(password):
        return "md5", password
    secret = ScramSecret.parse(password)
    if secret is not None:
        return "scram", secret
    return "plain", password


@dataclass
class UserAuth:
    """How one user authenticates.

    ``method`` is one of ``trust``, ``password``, ``md5``, ``scram-sha-256``. Every method
    but ``trust`` needs a non-empty ``password``: plain text, an md5 hash (``md5`` + 32
    lower-case hex digits, computed with the user name) or a SCRAM secret
    (``SCRAM-SHA-256$4096:salt$StoredKey:ServerKey``), the forms PostgreSQL stores.
    """

    method: str
    password: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"unknown authentication method {self.method!r}: valid methods are "
                f"{', '.join(METHODS)}"
            )
        if self.password is not None and not isinstance(self.password, str):
            raise TypeError(f"password must be a str or None, not {type(self.password).__name__}")
        if self.method == "trust":
            return
        if not self.password:
            raise ValueError(
                f"authentication method {self.method!r} needs a non-empty password "
                f"(plain text, an md5 hash or a SCRAM secret)"
            )
        if self.password.startswith(ScramSecret.PREFIX):
            secret = ScramSecret.parse(self.password)
            if secret is None:
                raise ValueError(
                    f"malformed SCRAM secret {self.password!r}: expected "
                    f"SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey> "
                    f"with 32-byte keys"
                )
            if secret.iterations < _SCRAMP_MIN_ITERATIONS or len(secret.salt) < _SCRAMP_MIN_SALT_LEN:
                raise ValueError(
                    f"SCRAM secret with {secret.iterations} iterations and a {len(secret.salt)}-byte "
                    f"salt: fakepm (scramp) needs at least {_SCRAMP_MIN_ITERATIONS} iterations "
                    f"and a {_SCRAMP_MIN_SALT_LEN}-byte salt"
                )

    @property
    def stored_kind(self) -> str | None:
        """``plain``, ``md5`` or ``scram`` (None without a password)."""
        return None if self.password is None else _classify_password(self.password)[0]


def user_auths(users) -> dict | None:
    """How each declared user authenticates, from what the API and the CLI accept: a UserAuth,
    a bare password (SCRAM-SHA-256, PostgreSQL's default), a dict {password, auth} or None
    (trust). None (no users declared) lets anybody in."""
    if users is None:
        return None
    out = {}
    for name, spec in users.items():
        if isinstance(spec, UserAuth):
            out[name] = spec
        elif isinstance(spec, str):
            out[name] = UserAuth("scram-sha-256", spec)
        elif isinstance(spec, dict):
            method = spec.get("auth", spec.get("method", "scram-sha-256" if spec.get("password") else "trust"))
            out[name] = UserAuth(method, spec.get("password"))
        elif spec is None:
            out[name] = UserAuth("trust")
        else:
            raise TypeError(f"user {name!r}: expected a password string, a dict or UserAuth, got {spec!r}")
    return out


# --------------------------------------------------------------------------- helpers


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def make_md5_hash(password: str, user: str) -> str:
    """What PostgreSQL stores for an md5 password: ``"md5" + md5hex(password + user)``."""
    return "md5" + _md5_hex(password.encode("utf-8") + user.encode("utf-8"))


def _scram_keys_raw(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # Used only when SASLprep refuses the password: PostgreSQL (and libpq) then use the
    # raw bytes, which scramp does not offer.
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


# (StoredKey, ServerKey) per (password, salt, iterations), keyed by a digest: the PBKDF2 of a
# plain-text password costs milliseconds, once per user, not per connection; the cache is
# process-wide, so it holds no password, and 256 entries of ~100 bytes (a test's users).
_KEYS_MAX = 256
_keys_cache: dict[bytes, tuple[bytes, bytes]] = {}
_keys_lock = threading.Lock()


def _scram_keys(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) for ``password`` (raw bytes; SASLprep'ed when possible)."""
    key = hashlib.sha256(b"%d\0%b\0%b" % (iterations, salt, password)).digest()
    found = _keys_cache.get(key)
    if found is not None:
        return found
    keys = _compute_scram_keys(password, salt, iterations)
    with _keys_lock:
        if len(_keys_cache) >= _KEYS_MAX:
            _keys_cache.pop(next(iter(_keys_cache)))
        _keys_cache[key] = keys
    return keys


def _compute_scram_keys(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    import scramp
    from scramp.utils import ScramException, saslprep

    try:
        text = password.decode("utf-8")
        saslprep(text)
    except (UnicodeDecodeError, ScramException):
        return _scram_keys_raw(password, salt, iterations)
    if len(salt) < _SCRAMP_MIN_SALT_LEN or iterations < _SCRAMP_MIN_ITERATIONS:
        return _scram_keys_raw(saslprep(text).encode("utf-8"), salt, iterations)
    _salt, stored_key, server_key, _i = scramp.ScramMechanism(SCRAM_SHA_256).make_auth_info(
        text, iteration_count=iterations, salt=salt
    )
    return stored_key, server_key


def make_scram_secret(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_DEFAULT_ITERATIONS
) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store for ``password`` (random 16-byte salt
    unless given)."""
    if salt is None:
        salt = secrets.token_bytes(SCRAM_DEFAULT_SALT_LEN)
    stored_key, server_key = _scram_keys(password.encode("utf-8"), salt, iterations)
    return str(ScramSecret(iterations, salt, stored_key, server_key))


def tls_server_end_point(cert_der: bytes) -> bytes:
    """RFC 5929 ``tls-server-end-point`` channel-binding data for a DER certificate.

    The hash of the whole certificate with the hash of its signature algorithm, except
    that MD5 and SHA-1 become SHA-256 (PostgreSQL's be_tls_get_certificate_hash does the
    same). Certificates without a signature hash (Ed25519/Ed448) raise ValueError, as
    PostgreSQL cannot do channel binding with them either.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(cert_der)
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"cannot determine the certificate's signature hash: {exc}") from None
    if algorithm is None:
        raise ValueError(
            "the certificate's signature algorithm has no hash (Ed25519/Ed448): "
            "tls-server-end-point channel binding is not defined for it"
        )
    if isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return digest.finalize()


def _auth_failed(user: str) -> AuthFailed:
    return AuthFailed(fatal("28P01", f'password authentication failed for user "{user}"'))


def _violation(message: str, detail: str | None = None) -> AuthFailed:
    return AuthFailed(fatal("08P01", message, detail=detail))


def _malformed(detail: str) -> AuthFailed:
    return _violation("malformed SCRAM message", detail)


def _sanitize_char(c: str) -> str:
    """PostgreSQL's sanitize_char: printable -> 'c', else 0xNN (end of string -> 0x00)."""
    if c and 0x21 <= ord(c) <= 0x7E:
        return f"'{c}'"
    return f"0x{(ord(c) if c else 0):02x}"


def _sanitize_str(s: str) -> str:
    return "".join(c if 0x21 <= ord(c) <= 0x7E else "?" for c in s[:30])


def _is_scram_printable(s: str) -> bool:
    return all(0x21 <= ord(c) <= 0x7E and c != "," for c in s)


class _Reader:
    """PostgreSQL's read_attr_value / read_any_attr over a latin-1 decoded message."""

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _value(self) -> str:
        end = self.text.find(",", self.pos)
        if end < 0:
            value, self.pos = self.text[self.pos :], len(self.text)
        else:
            value, self.pos = self.text[self.pos : end], end + 1
        return value

    def attr(self, name: str) -> str:
        c = self.peek()
        if c != name:
            raise _malformed(f'Expected attribute "{name}" but found "{_sanitize_char(c)}".')
        self.pos += 1
        if self.peek() != "=":
            raise _malformed(f'Expected character "=" for attribute "{name}".')
        self.pos += 1
        return self._value()

    def any_attr(self) -> tuple[str, str]:
        c = self.peek()
        if not c:
            raise _malformed("Attribute expected, but found end of string.")
        if not ("A" <= c <= "Z" or "a" <= c <= "z"):
            raise _malformed(
                f'Attribute expected, but found invalid character "{_sanitize_char(c)}".'
            )
        self.pos += 1
        if self.peek() != "=":
            raise _malformed(f'Expected character "=" for attribute "{c}".')
        self.pos += 1
        return c, self._value()

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.text)


def _read_cstring(payload: bytes, pos: int) -> tuple[bytes, int]:
    end = payload.find(b"\0", pos)
    if end < 0:
        raise _violation("invalid string in message")
    return payload[pos:end], end + 1


# --------------------------------------------------------------------------- authenticator

_DEFAULT = UserAuth("trust")
_UNKNOWN_METHODS = ("scram-sha-256", "md5", "password")


class Authenticator:
    """The server side of one connection's authentication exchange.

    ``users`` maps user names to :class:`UserAuth`; when it is None everybody gets
    ``default`` (and when ``default`` is None too, nobody is known). A user not found is
    "unknown": it gets a mock SCRAM-SHA-256 exchange and fails with the same message as a
    wrong password. ``default`` is not consulted when ``users`` is given.
    ``unknown_method`` picks the exchange an unknown user gets: ``scram-sha-256`` (what
    PostgreSQL 14+ does for hba md5/scram-sha-256 with the default password_encryption),
    ``md5`` or ``password`` (to look like the known users when they all use one of those);
    it always ends in the wrong-password failure.

    ``tls_endpoint_hash`` (see :func:`tls_server_end_point`) says the connection is TLS:
    SCRAM then offers ``SCRAM-SHA-256-PLUS`` first. ``salt`` (SCRAM, >= 12 bytes), ``nonce``
    (SCRAM server nonce, printable ASCII without ``,``) and ``md5_salt`` (4 bytes) fix
    the random parts; ``scram_iterations`` is used for plain-text passwords and mock
    exchanges (a stored SCRAM secret carries its own salt and iterations).

    Fault hooks: ``bad_server_signature`` sends a wrong ``v=`` in SASLFinal;
    ``skip_sasl_final`` sends AuthenticationOk without SASLFinal.
    """

    def __init__(
        self,
        users: dict[str, UserAuth] | None,
        user: str,
        *,
        tls_endpoint_hash: bytes | None = None,
        default: UserAuth | None = _DEFAULT,
        scram_iterations: int = SCRAM_DEFAULT_ITERATIONS,
        salt: bytes | None = None,
        nonce: str | None = None,
        md5_salt: bytes | None = None,
        bad_server_signature: bool = False,
        skip_sasl_final: bool = False,
        unknown_method: str = "scram-sha-256",
    ) -> None:
        if not isinstance(user, str):
            raise TypeError(f"user must be a str, not {type(user).__name__}")
        if tls_endpoint_hash is not None and (
            not isinstance(tls_endpoint_hash, bytes) or not tls_endpoint_hash
        ):
            raise ValueError("tls_endpoint_hash must be non-empty bytes (or None without TLS)")
        if type(scram_iterations) is not int or scram_iterations < _SCRAMP_MIN_ITERATIONS:
            raise ValueError(
                f"scram_iterations must be an int >= {_SCRAMP_MIN_ITERATIONS} (scramp's minimum), "
                f"got {scram_iterations!r}"
            )
        if salt is not None and (not isinstance(salt, bytes) or len(salt) < _SCRAMP_MIN_SALT_LEN):
            raise ValueError(f"salt must be bytes of length >= {_SCRAMP_MIN_SALT_LEN}")
        if nonce is not None and (
            not isinstance(nonce, str) or not nonce or not _is_scram_printable(nonce)
        ):
            raise ValueError("nonce must be a non-empty str of printable ASCII without ','")
        if md5_salt is not None and (not isinstance(md5_salt, bytes) or len(md5_salt) != 4):
            raise ValueError("md5_salt must be exactly 4 bytes")
        if unknown_method not in _UNKNOWN_METHODS:
            raise ValueError(
                f"unknown_method must be one of {', '.join(_UNKNOWN_METHODS)}, "
                f"got {unknown_method!r}"
            )

        self.user = user
        self.tls_endpoint_hash = tls_endpoint_hash
        self.scram_iterations = scram_iterations
        self.bad_server_signature = bad_server_signature
        self.skip_sasl_final = skip_sasl_final
        self._salt = salt
        self._nonce = nonce
        self._md5_salt = md5_salt

        if users is not None:
            conf = users.get(user)
        else:
            conf = default
        if conf is not None:
            if not isinstance(conf, UserAuth):
                raise TypeError(f"users[{user!r}] must be a UserAuth, not {type(conf).__name__}")
            conf.validate()
        self.config: UserAuth | None = conf
        self.known = conf is not None

        # Which exchange runs, and with what secret.
        self._stored: tuple[str, object] | None = None
        if conf is None:
            self.method = unknown_method
        else:
            self.method = conf.method
            if conf.password is not None:
                self._stored = _classify_password(conf.password)
            if self.method == "md5" and self._stored and self._stored[0] == "scram":
                self.method = "scram-sha-256"  # PostgreSQL: md5 in hba + SCRAM secret -> SCRAM

        self.mechanism: str | None = None  # selected SASL mechanism
        self._state = "new"
        self._done = False
        self._failed = False
        self._scram = None  # scramp.ScramServer
        self._doomed = False
        self._cb_in_use = False
        self._cbind_flag = ""
        self._client_nonce = ""
        self._server_nonce = ""

    # ----------------------------------------------------------------- public surface

    @property
    def done(self) -> bool:
        """True once AuthenticationOk has been produced."""
        return self._done

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def expects_response(self) -> bool:
        """True while the server waits for a 'p' message from the client."""
        return self._state in ("password", "md5", "sasl_initial", "sasl_first", "sasl_final")

    @property
    def mechanisms(self) -> list[str]:
        """SASL mechanisms offered (PLUS first on TLS connections, as PostgreSQL)."""
        if self.tls_endpoint_hash is not None:
            return [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
        return [SCRAM_SHA_256]

    def start(self) -> list[AuthRequest]:
        """The first Authentication* message(s) to send after the StartupMessage."""
        if self._state != "new":
            raise RuntimeError("Authenticator.start() was already called")
        if self.method == "trust":
            return self._ok([])
        if self.method == "password":
            self._state = "password"
            return [AuthRequest(AUTH_CLEARTEXT_PASSWORD)]
        if self.method == "md5":
            if self._md5_salt is None:
                self._md5_salt = secrets.token_bytes(4)
            self._state = "md5"
            return [AuthRequest(AUTH_MD5_PASSWORD, self._md5_salt)]
        self._state = "sasl_initial"
        data = b"".join(m.encode("ascii") + b"\0" for m in self.mechanisms) + b"\0"
        return [AuthRequest(AUTH_SASL, data)]

    def receive(self, payload: bytes) -> list[AuthRequest]:
        """Feed the body of the client's 'p' message; get what to send next.

        Raises AuthFailed (and the exchange is over) on any failure.
        """
        if not self.expects_response:
            raise RuntimeError(
                f"Authenticator does not expect a client message now (state {self._state})"
            )
        payload = bytes(payload)
        try:
            if self._state == "password":
                return self._receive_password(payload)
            if self._state == "md5":
                return self._receive_md5(payload)
            if self._state == "sasl_initial":
                return self._receive_sasl_initial(payload)
            if self._state == "sasl_first":
                return self._client_first(self._sasl_input(payload))
            return self._client_final(self._sasl_input(payload))
        except AuthFailed:
            self._failed = True
            self._state = "failed"
            raise

    # ----------------------------------------------------------------- helpers

    def _ok(self, out: list[AuthRequest]) -> list[AuthRequest]:
        self._state = "done"
        self._done = True
        out.append(AuthRequest(AUTH_OK))
        return out

    @staticmethod
    def _password_packet(payload: bytes) -> bytes:
        # recv_password_packet: the string must fill the packet; empty is refused.
        if not payload.endswith(b"\0") or payload.index(b"\0") != len(payload) - 1:
            raise _violation("invalid password packet size")
        if len(payload) == 1:
            raise AuthFailed(fatal("28P01", "empty password returned by client"))
        return payload[:-1]

    def _receive_password(self, payload: bytes) -> list[AuthRequest]:
        given = self._password_packet(payload)
        if self._stored is None:
            raise _auth_failed(self.user)
        kind, value = self._stored
        if kind == "plain":
            ok = hmac.compare_digest(given, value.encode("utf-8"))
        elif kind == "md5":
            ok = hmac.compare_digest(
                ("md5" + _md5_hex(given + self.user.encode("utf-8"))).encode("ascii"),
                value.encode("ascii"),
            )
        else:
            secret: ScramSecret = value  # type: ignore[assignment]
            _stored, server_key = _scram_keys(given, secret.salt, secret.iterations)
            ok = hmac.compare_digest(server_key, secret.server_key)
        if not ok:
            raise _auth_failed(self.user)
        return self._ok([])

    def _receive_md5(self, payload: bytes) -> list[AuthRequest]:
        given = self._password_packet(payload)
        if self._stored is None:
            raise _auth_failed(self.user)
        kind, value = self._stored
        if kind == "plain":
            stage1 = _md5_hex(value.encode("utf-8") + self.user.encode("utf-8"))
        else:  # "md5" (a SCRAM secret switched the method to SCRAM in __init__)
            stage1 = value[3:]
        assert self._md5_salt is not None
        expected = "md5" + _md5_hex(stage1.encode("ascii") + self._md5_salt)
        if not hmac.compare_digest(given, expected.encode("ascii")):
            raise _auth_failed(self.user)
        return self._ok([])

    # ----------------------------------------------------------------- SASL / SCRAM

    def _receive_sasl_initial(self, payload: bytes) -> list[AuthRequest]:
        # SASLInitialResponse: String mechanism, Int32 length (-1: none), Byte[n].
        mech_bytes, pos = _read_cstring(payload, 0)
        mech = mech_bytes.decode("latin-1")
        if mech == SCRAM_SHA_256_PLUS and self.tls_endpoint_hash is not None:
            self._cb_in_use = True
        elif mech == SCRAM_SHA_256:
            self._cb_in_use = False
        else:
            raise _violation("client selected an invalid SASL authentication mechanism")
        self.mechanism = mech
        if len(payload) - pos < 4:
            raise _violation("insufficient data left in message")
        (length,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        if length == -1:
            if pos != len(payload):
                raise _violation("invalid message format")
            # No initial response: send an empty challenge, the client-first comes next.
            self._state = "sasl_first"
            return [AuthRequest(AUTH_SASL_CONTINUE, b"")]
        if length < 0 or len(payload) - pos < length:
            raise _violation("insufficient data left in message")
        data = payload[pos : pos + length]
        if pos + length != len(payload):
            raise _violation("invalid message format")
        return self._client_first(self._sasl_input(data))

    @staticmethod
    def _sasl_input(data: bytes) -> str:
        if not data:
            raise _malformed("The message is empty.")
        if b"\0" in data:
            raise _malformed("Message length does not match input length.")
        return data.decode("latin-1")

    def _secret_for_exchange(self) -> tuple[bytes, bytes, bytes, int]:
        """(salt, StoredKey, ServerKey, iterations); sets _doomed when it cannot succeed."""
        stored = self._stored
        if stored is not None and stored[0] == "scram":
            s: ScramSecret = stored[1]  # type: ignore[assignment]
            return s.salt, s.stored_key, s.server_key, s.iterations
        if stored is not None and stored[0] == "plain" and self.config is not None:
            salt = self._salt or self._derived_salt(b"salt")
            stored_key, server_key = _scram_keys(
                stored[1].encode("utf-8"), salt, self.scram_iterations  # type: ignore[union-attr]
            )
            return salt, stored_key, server_key, self.scram_iterations
        # Unknown user, or a stored md5 hash (useless for SCRAM): PostgreSQL's mock secret,
        # a salt that is stable per user, and a certain failure at the end. The mock keys come
        # the way a plain-text password's do (a per-user mock password through the same cached
        # PBKDF2), and the proof is checked against them in full (_client_final): an unknown
        # user takes as long as a known one, so timing does not tell whether a user exists.
        self._doomed = True
        salt = self._salt or self._derived_salt(b"mock")
        mock_password = self._derived_salt(b"mock password").hex().encode("ascii")
        stored_key, server_key = _scram_keys(mock_password, salt, self.scram_iterations)
        return salt, stored_key, server_key, self.scram_iterations

    def _derived_salt(self, label: bytes) -> bytes:
        digest = hashlib.sha256(label + b"\0" + self.user.encode("utf-8") + _MOCK_AUTH_NONCE)
        return digest.digest()[:SCRAM_DEFAULT_SALT_LEN]

    def _client_first(self, text: str) -> list[AuthRequest]:
        import scramp
        from scramp.utils import ScramException

        r = _Reader(text)
        flag = r.peek()
        if flag in ("n", "y"):
            if self._cb_in_use:
                raise _malformed(
                    "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not "
                    "include channel binding data."
                )
            if flag == "y" and self.tls_endpoint_hash is not None:
                raise AuthFailed(
                    fatal(
                        "28000",
                        "SCRAM channel binding negotiation error",
                        detail="The client supports SCRAM channel binding but thinks the server "
                        "does not.  However, this server does support channel binding.",
                    )
                )
            r.pos += 1
            if r.peek() != ",":
                raise _malformed(f'Comma expected, but found character "{_sanitize_char(r.peek())}".')
            r.pos += 1
        elif flag == "p":
            if not self._cb_in_use:
                raise _malformed(
                    "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                    "message includes channel binding data."
                )
            cb_type = r.attr("p")
            if cb_type != _CB_TYPE:
                raise _violation(f'unsupported SCRAM channel-binding type "{_sanitize_str(cb_type)}"')
        else:
            raise _malformed(f'Unexpected channel-binding flag "{_sanitize_char(flag)}".')
        self._cbind_flag = flag
        # authzid is not supported
        if r.peek() == "a":
            raise AuthFailed(
                fatal("0A000", "client uses authorization identity, but it is not supported")
            )
        if r.peek() != ",":
            raise _malformed(
                f'Unexpected attribute "{_sanitize_char(r.peek())}" in client-first-message.'
            )
        r.pos += 1
        bare_start = r.pos
        if r.peek() == "m":
            raise AuthFailed(fatal("0A000", "client requires an unsupported SCRAM extension"))
        r.attr("n")  # the SCRAM user name is ignored: the startup packet's user counts
        client_nonce = r.attr("r")
        if not _is_scram_printable(client_nonce):
            raise _violation("non-printable characters in SCRAM nonce")
        if not client_nonce:
            raise _malformed("The client nonce is empty.")
        while not r.at_end:
            r.any_attr()  # optional extensions: ignored
        self._client_nonce = client_nonce

        try:
            bare = text[bare_start:].encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("The client-first-message is not valid UTF-8.") from None

        salt, stored_key, server_key, iterations = self._secret_for_exchange()
        nonce = self._nonce or base64.b64encode(secrets.token_bytes(SCRAM_RAW_NONCE_LEN)).decode(
            "ascii"
        )
        self._server_nonce = nonce
        mechanism = scramp.ScramMechanism(SCRAM_SHA_256_PLUS if self._cb_in_use else SCRAM_SHA_256)
        cb = (_CB_TYPE, self.tls_endpoint_hash) if self._cb_in_use else None
        server = mechanism.make_server(
            lambda _name: (salt, stored_key, server_key, iterations),
            channel_binding=cb,
            s_nonce=nonce,
        )
        gs2 = f"p={_CB_TYPE},," if self._cb_in_use else f"{flag},,"
        try:
            # scramp cannot parse libpq's empty "n=": give it a normalised message, then
            # put the client's exact bare message back for the AuthMessage.
            server.set_client_first(f"{gs2}n=*,r={client_nonce}")
            server.client_first_bare = bare
            server_first = server.get_server_first()
        except ScramException as exc:  # pragma: no cover - pre-validated above
            raise _malformed(str(exc)) from None
        self._scram = server
        self._state = "sasl_final"
        return [AuthRequest(AUTH_SASL_CONTINUE, server_first.encode("ascii"))]

    def _client_final(self, text: str) -> list[AuthRequest]:
        from scramp.utils import ScramException, ServerError

        r = _Reader(text)
        channel_binding = r.attr("c")
        if self._cb_in_use:
            assert self.tls_endpoint_hash is not None
            expected = base64.b64encode(f"p={_CB_TYPE},,".encode("ascii") + self.tls_endpoint_hash)
            if channel_binding.encode("latin-1") != expected:
                raise AuthFailed(fatal("28000", "SCRAM channel binding check failed"))
        elif not (
            (channel_binding == "biws" and self._cbind_flag == "n")
            or (channel_binding == "eSws" and self._cbind_flag == "y")
        ):
            raise _violation("unexpected SCRAM channel-binding attribute in client-final-message")
        final_nonce = r.attr("r")
        while True:
            name, proof_b64 = r.any_attr()
            if name == "p":
                break
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except (ValueError, binascii.Error):
            proof = b""
        if len(proof) != SCRAM_KEY_LEN:
            raise _malformed("Malformed proof in client-final-message.")
        if not r.at_end:
            raise _malformed("Garbage found at the end of client-final-message.")
        if final_nonce != self._client_nonce + self._server_nonce:
            raise _violation("invalid SCRAM response", "Nonce does not match.")

        # the proof is verified even for a doomed exchange (an unknown user), as PostgreSQL's
        # verify_client_proof runs before it looks at `doomed`: the same work, the same time
        server = self._scram
        try:
            server.set_client_final(text.encode("latin-1").decode("utf-8"))
            server_final = server.get_server_final()
        except UnicodeDecodeError:
            raise _malformed("The client-final-message is not valid UTF-8.") from None
        except ScramException as exc:
            if exc.server_error is ServerError.INVALID_PROOF:
                raise _auth_failed(self.user) from None
            if exc.server_error is ServerError.CHANNEL_BINDINGS_DONT_MATCH:
                raise AuthFailed(fatal("28000", "SCRAM channel binding check failed")) from None
            raise _malformed(str(exc)) from None
        if self._doomed:
            raise _auth_failed(self.user)

        if self.bad_server_signature:
            signature = bytearray(server.server_signature)
            signature[0] ^= 0xFF
            server_final = "v=" + base64.b64encode(bytes(signature)).decode("ascii")
        out: list[AuthRequest] = []
        if not self.skip_sasl_final:
            out.append(AuthRequest(AUTH_SASL_FINAL, server_final.encode("ascii")))
        return self._ok(out)
