"""Ledger test fixtures: a populated world on the session chain, reverted after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _ledger_world import ASSET_ID, SCHEMA_ID, World
from eth_account import Account

from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import LedgerClient
from ledger.manifest import Manifest
from ledger.models import MemberKind, Role
from ledger.tx import LocalKeySender


@pytest.fixture
def world(chain_snapshot: Any, ledger_manifest: Manifest) -> Iterator[World]:
    url = chain_snapshot.url
    gov_key, issuer_key, subject_key, bank_key = (DEV_PRIVATE_KEYS[i] for i in (0, 1, 2, 3))
    gov = LedgerClient(url, ledger_manifest.ledger_address, sender=LocalKeySender.from_key(gov_key))
    issuer = LedgerClient(
        url, ledger_manifest.ledger_address, sender=LocalKeySender.from_key(issuer_key)
    )
    try:
        subject = Account.from_key(subject_key).address
        bank = Account.from_key(bank_key).address
        issuer_addr = Account.from_key(issuer_key).address
        gov.send(gov.calls.admit_member(issuer_addr, Role.ISSUER, MemberKind.DEPARTMENT))
        gov.send(gov.calls.admit_member(bank, Role.CONSUMER, MemberKind.BANK))
        gov.send(gov.calls.admit_subject(subject, MemberKind.INDIVIDUAL))
        issuer.send(issuer.calls.register_schema(SCHEMA_ID, 3, b"\4" * 32))
        issuer.send(issuer.calls.anchor_asset(ASSET_ID, subject, SCHEMA_ID, b"\5" * 32, b"\6" * 32))
        yield World(
            url=url,
            manifest=ledger_manifest,
            gov=gov,
            issuer=issuer,
            governor_key=gov_key,
            issuer_key=issuer_key,
            subject_key=subject_key,
            bank_key=bank_key,
            domain=gov.domain(),
        )
    finally:
        gov.close()
        issuer.close()
