"""A TLS client certificate for a desk unit, signed by the site CA (cryptography)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hw.errors import ProvisionError


def issue_client_cert(common_name: str, ca_cert_path: Path, ca_key_path: Path, days: int) -> tuple[bytes, bytes, bytes]:
    """(key PEM, certificate PEM, CA certificate PEM) for a new P-256 client key."""
    try:
        ca_pem = ca_cert_path.read_bytes()
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"CA certificate {ca_cert_path} cannot be used: {exc}") from None
    check_ca(ca_cert, ca_cert_path)
    try:
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ProvisionError(f"CA key {ca_key_path} cannot be used (unencrypted PEM expected): {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ProvisionError(f"CA key {ca_key_path}: only EC and RSA keys are supported")
    if ca_key.public_key().public_numbers() != ca_cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ProvisionError(f"CA key {ca_key_path} does not belong to {ca_cert_path}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), ca_pem


def check_ca(cert: x509.Certificate, path: Path) -> None:
    """Raise :class:`ProvisionError` unless ``cert`` can sign client certificates: basicConstraints
    CA=true, keyCertSign when it has a keyUsage, and valid now (a client certificate signed by
    anything else is refused by the broker at every connect)."""
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    except ValueError as exc:  # a malformed extension
        raise ProvisionError(f"CA certificate {path} cannot be used: {exc}") from None
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    if not ca:
        raise ProvisionError(f"--ca-cert {path} is not a CA certificate ({subject} has no basicConstraints "
                             "CA=true): pass the site CA's certificate, not a server or client certificate")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise ProvisionError(f"--ca-cert {path}: {subject} may not sign certificates (its keyUsage lacks keyCertSign)")
    now = dt.datetime.now(dt.UTC)
    if now > cert.not_valid_after_utc:
        raise ProvisionError(f"--ca-cert {path}: {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if now < cert.not_valid_before_utc:
        raise ProvisionError(f"--ca-cert {path}: {subject} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
