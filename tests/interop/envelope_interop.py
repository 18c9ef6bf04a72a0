#!/usr/bin/env python3
"""An independent implementation of docs/FORMAT.md, in Python with `cryptography`.

1. Decodes and opens every case of test-vectors/envelopes/*.json and checks the outcome
   class each case is headed by.
2. Seals fresh envelopes here (every suite) and has the Rust CLI open them; has the Rust
   CLI seal envelopes and opens them here.

X-Wing keys are read from their PKCS#8 form here (a fixed 22-byte prefix, then the
32-byte seed) and expanded as draft-connolly-cfrg-xwing-kem says: SHAKE256(seed, 96)
gives the ML-KEM-768 seed (64 bytes) and the X25519 private key (32 bytes).

Usage: envelope_interop.py --cli target/debug/pin-recovery [--rsa-open]
(--rsa-open when the CLI was built with the aws-lc feature and can open RSA envelopes).
Exits non-zero on any mismatch.
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "test-vectors"
LABEL = b"pin-recovery v1 envelope"
OAEP_LABEL = b"pin-recovery v1 rsa-oaep content key"
SUITES = {0x0001: "hpke-p256", 0x0002: "rsa-oaep", 0x0010: "hpke-xwing"}
HPKE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_XWING = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
# DER prefixes of id-XWing (1.3.6.1.4.1.62253.25722) keys: PKCS#8 with the raw seed,
# SubjectPublicKeyInfo with the raw 1216-byte key, no parameters in either.
XWING_PKCS8_PREFIX = bytes.fromhex("3034020100300d060b2b0601040183e62d81c87a0420")
XWING_SPKI_PREFIX = bytes.fromhex("308204d4300d060b2b0601040183e62d81c87a038204c100")


class XWingKey:
    """An X-Wing private key, from its seed."""

    def __init__(self, seed):
        assert len(seed) == 32
        expanded = hashlib.shake_256(seed).digest(96)
        pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        classical = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        self.private = hpke.MLKEM768X25519PrivateKey(pq, classical)
        raw = pq.public_key().public_bytes_raw() + classical.public_key().public_bytes_raw()
        assert len(raw) == 1216
        self.spki = XWING_SPKI_PREFIX + raw


class DecodeError(Exception):
    def __init__(self, cls):
        super().__init__(cls)
        self.cls = cls


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise DecodeError("decode:truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, n):
        return int.from_bytes(self.take(n), "big")

    def opaque(self, width, lo, hi):
        n = self.int(width)
        if not lo <= n <= hi:
            raise DecodeError("decode:bad-length")
        return self.take(n)


def text_id(raw):
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("decode:bad-text")
    if any(unicodedata.category(ch) == "Cc" for ch in s):
        raise DecodeError("decode:bad-text")
    return s


def decode(data):
    """FORMAT.md section 2, canonical decoding."""
    if len(data) > 4096:
        raise DecodeError("decode:too-long")
    r = Reader(data)
    if r.take(4) != b"PINR":
        raise DecodeError("decode:bad-magic")
    if r.int(1) != 1:
        raise DecodeError("decode:unsupported-version")
    suite = r.int(2)
    if suite not in SUITES:
        raise DecodeError("decode:unknown-suite")
    env = {"suite": suite, "key_id": r.take(16), "envelope_id": r.take(16)}
    env["binding"] = tuple(text_id(r.opaque(1, 1, 255)) for _ in range(3))
    env["created_at"] = r.int(8)
    env["header"] = data[:r.pos]
    enc = {0x0001: lambda: r.opaque(2, 65, 65), 0x0002: lambda: r.opaque(2, 256, 512),
           0x0010: lambda: r.opaque(2, 1120, 1120)}[suite]()
    if suite == 0x0002 and len(enc) not in (256, 384, 512):
        raise DecodeError("decode:bad-length")
    env["enc"] = enc
    env["ct"] = r.opaque(2, 48, 48)
    if r.pos != len(data):
        raise DecodeError("decode:trailing-bytes")
    return env


def from_text(text):
    if not text.startswith("pinrec1."):
        raise DecodeError("decode:bad-magic")
    body = text[len("pinrec1."):]
    if len(body) > 5462:  # the base64url length of 4096 bytes, checked before decoding
        raise DecodeError("decode:too-long")
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    if not set(body) <= alphabet or len(body) % 4 == 1:
        raise DecodeError("decode:bad-base64")
    data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != body:
        raise DecodeError("decode:bad-base64")  # non-zero trailing bits
    return decode(data)


def spki_der(key):
    if isinstance(key, XWingKey):
        return key.spki
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key):
    h = hashes.Hash(hashes.SHA256())
    h.update(spki_der(key))
    return h.finalize()[:16]


def open_envelope(env, key, binding):
    """FORMAT.md section 5. Returns the secret or raises ValueError('open:failed')."""
    info = LABEL + env["header"]
    expected_suite = suite_of(key)
    if env["suite"] != expected_suite or env["key_id"] != key_id(key):
        raise ValueError("open:failed")
    try:
        if env["suite"] == 0x0001:
            secret = HPKE.decrypt(env["enc"] + env["ct"], key, info=info)
        elif env["suite"] == 0x0010:
            secret = HPKE_XWING.decrypt(env["enc"] + env["ct"], key.private, info=info)
        else:
            if len(env["enc"]) != key.key_size // 8:
                raise ValueError("open:failed")
            try:
                ck = key.decrypt(env["enc"], padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), OAEP_LABEL))
                if len(ck) != 32:
                    raise ValueError
            except ValueError:
                ck = os.urandom(32)  # implicit rejection, as the spec says
            secret = AESGCM(ck).decrypt(bytes(12), env["ct"], info)
    except (InvalidTag, ValueError, Exception):
        raise ValueError("open:failed")
    if env["binding"] != binding:
        raise ValueError("open:failed")
    return secret


def suite_of(key):
    if isinstance(key, XWingKey):
        return 0x0010
    return 0x0001 if isinstance(key, ec.EllipticCurvePrivateKey) else 0x0002


def header(suite, key, binding, created_at=1767225600):
    out = b"PINR" + bytes([1]) + suite.to_bytes(2, "big") + key_id(key) + os.urandom(16)
    for part in binding:
        raw = part.encode()
        out += bytes([len(raw)]) + raw
    return out + created_at.to_bytes(8, "big")


def seal(key, secret, binding):
    """FORMAT.md section 4, from the public half of `key`."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        h = header(0x0001, key, binding)
        sealed = HPKE.encrypt(secret, key.public_key(), info=LABEL + h)
        enc, ct = sealed[:65], sealed[65:]
    elif isinstance(key, XWingKey):
        h = header(0x0010, key, binding)
        sealed = HPKE_XWING.encrypt(secret, key.private.public_key(), info=LABEL + h)
        enc, ct = sealed[:1120], sealed[1120:]
    else:
        h = header(0x0002, key, binding)
        ck = os.urandom(32)
        enc = key.public_key().encrypt(ck, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), OAEP_LABEL))
        ct = AESGCM(ck).encrypt(bytes(12), secret, LABEL + h)
    return h + len(enc).to_bytes(2, "big") + enc + len(ct).to_bytes(2, "big") + ct


def load_key(name):
    pem = (VECTORS / "keys" / name).read_bytes()
    der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
    if der.startswith(XWING_PKCS8_PREFIX):
        if len(der) != len(XWING_PKCS8_PREFIX) + 32:
            raise ValueError(f"{name}: X-Wing PKCS#8 of the wrong length")
        return XWingKey(der[len(XWING_PKCS8_PREFIX):])
    return serialization.load_pem_private_key(pem, None)


def check_vectors():
    failures, counted = [], 0
    for path in sorted((VECTORS / "envelopes").glob("*.json")):
        doc = json.loads(path.read_text())
        key = load_key(doc["service_key"])
        assert key_id(key).hex() == doc["key_id"], f"{path.name}: key id differs"
        assert spki_der(key).hex() == doc["service_key_spki"], f"{path.name}: SPKI differs"
        for case in doc["cases"]:
            b = case["binding"]
            binding = (b["tenant"], b["user"], b["device"])
            try:
                env = decode(bytes.fromhex(case["envelope"])) if "envelope" in case else from_text(case["text"])
                if "envelope" in case and "text" in case:
                    assert from_text(case["text"]) == env
                secret = open_envelope(env, key, binding)
                outcome = "ok" if secret.hex() == case["secret"] else "wrong-secret"
            except DecodeError as e:
                outcome = e.cls
            except ValueError as e:
                outcome = str(e)
            counted += 1
            if outcome != case["expect"]:
                failures.append(f"{path.name}: {case['name']}: expected {case['expect']}, got {outcome}")
        print(f"{path.name}: {len(doc['cases'])} cases checked by the Python implementation")
    return failures, counted


def cli(args, cli_path, stdin=b""):
    proc = subprocess.run([cli_path, *args], input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]}: {proc.stderr.decode()}")
    return proc.stdout


def check_cli(cli_path, rsa_open):
    failures = []
    binding = ("contoso.example", "alice@contoso.example", "LAPTOP-7F3K")
    flags = ["--tenant", binding[0], "--user", binding[1], "--device", binding[2]]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["p256-service.pem", "xwing-service.pem", "rsa2048-service.pem", "rsa4096-service.pem"]:
            key = load_key(name)
            key_path = str(VECTORS / "keys" / name)
            # Python seals, Rust opens.
            secret = os.urandom(32)
            env_path = Path(tmp) / f"{name}.env"
            env_path.write_bytes(seal(key, secret, binding))
            if suite_of(key) != 0x0002 or rsa_open:
                got = cli(["open", "--key", key_path, *flags, "--envelope", str(env_path)], cli_path).decode().strip()
                if got != secret.hex():
                    failures.append(f"{name}: Rust opened a Python envelope to the wrong secret")
                else:
                    print(f"{name}: Python sealed, Rust opened")
            # Rust seals, Python opens.
            pub_path = Path(tmp) / f"{name}.pub"
            pub_path.write_bytes(cli(["pubkey", "--key", key_path], cli_path))
            secret = os.urandom(32)
            text = cli(["seal", "--pubkey", str(pub_path), *flags, "--secret", "-"], cli_path, secret.hex().encode())
            env = from_text(text.decode().strip())
            if open_envelope(env, key, binding) != secret:
                failures.append(f"{name}: Python opened a Rust envelope to the wrong secret")
            else:
                print(f"{name}: Rust sealed, Python opened")
            inspected = json.loads(cli(["inspect", "--json", "-"], cli_path, text))
            want_binding = {"tenant": binding[0], "user": binding[1], "device": binding[2]}
            if inspected["key_id"] != key_id(key).hex() or inspected["binding"] != want_binding:
                failures.append(f"{name}: inspect disagrees: {inspected}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cli", help="path to the pin-recovery binary")
    ap.add_argument("--rsa-open", action="store_true", help="the CLI can open RSA envelopes (aws-lc build)")
    args = ap.parse_args()
    failures, counted = check_vectors()
    if args.cli:
        failures += check_cli(args.cli, args.rsa_open)
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print(f"{counted} vector cases, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
