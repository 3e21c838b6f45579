"""Vault throughput: seal/open vs raw AES-256-GCM, and key packages per second.

Usage: .venv/bin/python scripts/bench_vault.py [--seconds 0.5] [--markdown] [--json FILE]

Seal and open are measured on assets of 1 KB, 64 KB and 1 MB split into 10
fields, each as a ratio to raw AES-256-GCM encrypting (or decrypting) the same
10 buffers in the same run. The "hash floor" is raw AES-256-GCM plus the two
SHA-256 passes the construction requires (salted commitments over the
plaintext, the anchored digest over the ciphertext): no implementation of this
format can beat it. Seal and floors are timed alternating (the fastest batch of
many rounds), as are the seal and HPKE for the 1 KB ratio, so that load from
other jobs falls on both sides of each ratio. The floor keeps its 10 ciphertexts
until it returns, as a seal must
(the target is judged on this one); the earlier floor, which freed each
ciphertext as soon as it was hashed and so never paid for fresh output memory,
is printed beside it ("discarding"). Key packages: a 10-field grant built (owner side: unwrap
asset key, derive, HPKE-wrap) and opened (grantee side: HPKE-unwrap, decrypt
10 fields, 10 Merkle proofs), for the X25519 and ML-KEM-768+X25519 suites.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.keys import EncryptionKeyPair, Suite
from vault.packages import Anchor, build_disclosure, build_key_package, open_disclosure
from vault.sealing import asset_key_info, open_asset, seal_asset

SIZES = [
    ("1 KB", 1024, 20),
    ("64 KB", 64 * 1024, 5),
    ("1 MB", 1024 * 1024, 2),
]  # label, bytes, batch
N_FIELDS = 10


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Best-of-3 calls per second, each run lasting about ``seconds``."""
    fn()
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def fastest(fns: dict[str, Callable[[], object]], batch: int, rounds: int) -> dict[str, float]:
    """Seconds per call: the fastest batch of each function over ``rounds`` rounds, the functions
    alternating within each round, so a burst of load on the shared machine hits every one of
    them alike (separate timing windows let the ratios swing by 2x and more here)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / batch)
    return best


def hash_floors(
    key: AESGCM, nonces: list[bytes], values: list[bytes]
) -> tuple[Callable[[], list[bytes]], Callable[[], None]]:
    """AES-GCM plus the two SHA-256 passes over ``values``: keeping the ciphertexts until it
    returns, as a seal must (the target's floor), and freeing each at once (the earlier floor)."""

    def kept() -> list[bytes]:
        out = []
        for n, v in zip(nonces, values, strict=True):
            c = key.encrypt(n, v, None)
            hashlib.sha256(v).digest()
            hashlib.sha256(c).digest()
            out.append(c)
        return out

    def discarding() -> None:
        for n, v in zip(nonces, values, strict=True):
            c = key.encrypt(n, v, None)
            hashlib.sha256(v).digest()
            hashlib.sha256(c).digest()

    return kept, discarding


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the target ratios here as JSON")
    args = ap.parse_args()
    sec = args.seconds

    owner = EncryptionKeyPair.generate()
    key = AESGCM(os.urandom(32))
    rows = []
    for label, size, batch in SIZES:
        per = size // N_FIELDS
        fields = [(f"field_{i}", os.urandom(per)) for i in range(N_FIELDS)]
        values = [v for _, v in fields]
        aid = os.urandom(32)
        nonces = [os.urandom(12) for _ in range(N_FIELDS)]
        cts = [key.encrypt(n, v, None) for n, v in zip(nonces, values, strict=True)]

        def raw_seal(values: list[bytes] = values, nonces: list[bytes] = nonces) -> None:
            for n, v in zip(nonces, values, strict=True):
                key.encrypt(n, v, None)

        def raw_open(cts: list[bytes] = cts, nonces: list[bytes] = nonces) -> None:
            for n, c in zip(nonces, cts, strict=True):
                key.decrypt(n, c, None)

        floor_seal, floor_discarding = hash_floors(key, nonces, values)

        sealed = seal_asset(fields, asset_id=aid, version=1, owner_key=owner.public_key)
        r_seal = rate(raw_seal, sec)
        r_open = rate(raw_open, sec)

        def seal(f: list[tuple[str, bytes]] = fields, a: bytes = aid) -> object:
            return seal_asset(f, asset_id=a, version=1, owner_key=owner.public_key)

        v_seal = rate(seal, sec)
        t = fastest(
            {"seal": seal, "floor": floor_seal, "discarding": floor_discarding},
            batch,
            max(20, int(sec * 300)),
        )
        v_open = rate(lambda s=sealed: open_asset(s, owner), sec)
        mb = size / 1e6
        rows.append(
            (
                label,
                v_seal * mb,
                r_seal * mb,
                v_seal / r_seal,
                t["floor"] / t["seal"],
                t["discarding"] / t["seal"],
                v_open * mb,
                r_open * mb,
                v_open / r_open,
            )
        )

    pkg_rows = []
    fields = [(f"field_{i}", os.urandom(100)) for i in range(N_FIELDS)]
    names = [n for n, _ in fields]
    sealed = seal_asset(fields, asset_id=os.urandom(32), version=1, owner_key=owner.public_key)
    grant = os.urandom(32)
    anchor = Anchor(sealed.root, b"\x11" * 20, 1)
    for suite in Suite:
        grantee = EncryptionKeyPair.generate(suite)
        pkg = build_key_package(
            sealed, owner, grant_id=grant, fields=names, grantee_key=grantee.public_key
        )
        disclosure = build_disclosure(sealed, pkg, anchor=anchor)
        built = rate(
            lambda g=grantee: build_key_package(
                sealed, owner, grant_id=grant, fields=names, grantee_key=g.public_key
            ),
            sec,
        )
        opened = rate(
            lambda d=disclosure, g=grantee: open_disclosure(
                d, g, grant_id=grant, expected_root=sealed.root
            ),
            sec,
        )
        pkg_rows.append((suite.name, built, opened, len(pkg.to_bytes())))

    print(
        f"python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {sec}s x best of 3"
    )
    print()
    print(
        "| asset (10 fields) | seal MB/s | raw AES-GCM enc MB/s | seal / raw | seal / hash floor "
        "| seal / floor (discarding) | open MB/s | raw AES-GCM dec MB/s | open / raw |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, vs, rs, ratio, floor, floor_d, vo, ro, oratio in rows:
        print(
            f"| {label} | {vs:,.0f} | {rs:,.0f} | {ratio:.2f} | {floor:.2f} | {floor_d:.2f} "
            f"| {vo:,.0f} | {ro:,.0f} | {oratio:.2f} |"
        )
    print()
    print("| suite | packages built/s (10 fields) | disclosures opened/s | package bytes |")
    print("|---|---:|---:|---:|")
    for name, b, o, size in pkg_rows:
        print(f"| {name} | {b:,.0f} | {o:,.0f} | {size:,} |")
    print()
    print(
        "| suite | 1 KB 10-field seals/s | HPKE seals/s (32-byte key) "
        "| seal time / HPKE time (target <= 1.5) |"
    )
    print("|---|---:|---:|---:|")
    over_hpke: dict[str, float] = {}
    for name, seals, hpke_seals in hpke_rows(sec):
        ratio = over_hpke[name] = hpke_seals / seals
        verdict = "pass" if ratio <= 1.5 else "**missed**"
        print(f"| {name} | {seals:,.0f} | {hpke_seals:,.0f} | {ratio:.2f} {verdict} |")
    floor_1mb, floor_1mb_discarding = rows[-1][4], rows[-1][5]
    verdict = "pass" if floor_1mb >= 0.8 else "**missed**"
    print()
    print(
        f"1 MB seal / hash floor: {floor_1mb:.2f} (target >= 0.8: {verdict}); "
        f"/ the discarding floor: {floor_1mb_discarding:.2f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seal_over_hpke": over_hpke,
                    "seal_1mb_over_hash_floor": floor_1mb,
                    "seal_1mb_over_hash_floor_discarding": floor_1mb_discarding,
                }
            )
        )


def hpke_rows(sec: float) -> list[tuple[str, float, float]]:
    """A 1 KB 10-field seal against one HPKE seal of the same suite, alternating (per second)."""
    out = []
    fields = [(f"field_{i}", os.urandom(1024 // N_FIELDS)) for i in range(N_FIELDS)]
    aid = os.urandom(32)
    for suite in Suite:
        key = EncryptionKeyPair.generate(suite).public_key
        info = asset_key_info(aid, 1, key.digest())
        t = fastest(
            {
                "seal": lambda k=key: seal_asset(fields, asset_id=aid, version=1, owner_key=k),
                "hpke": lambda k=key, i=info: k.wrap(os.urandom(32), i),
            },
            20,
            max(20, int(sec * 600)),
        )
        out.append((suite.name, 1 / t["seal"], 1 / t["hpke"]))
    return out


if __name__ == "__main__":
    main()
