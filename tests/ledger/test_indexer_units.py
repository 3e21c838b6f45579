"""Pure parts of the indexer: range sizing, ABI decoding, column types, settings."""

from __future__ import annotations

from pathlib import Path

import eth_abi
import pytest
import sqlalchemy as sa
from eth_utils import keccak

from ledger import db
from ledger.indexer import AbiNotFoundError, IndexerSettings, RangeSizer, get_settings
from ledger.indexer._abi import event_specs, load_abi


def test_range_sizer_halves_on_refusal_and_grows_back() -> None:
    sizer = RangeSizer(max_span=16, grow_after=2)
    assert sizer.next_range(10, 100) == (10, 25)
    assert sizer.next_range(10, 12) == (10, 12)
    assert sizer.refused(10, 25)
    assert sizer.span == 8
    assert sizer.refused(10, 17) and sizer.refused(10, 13) and sizer.refused(10, 11)
    assert sizer.span == 1
    assert not sizer.refused(10, 10)  # cannot split one block
    for expected in (1, 2, 2, 4, 4, 8, 8, 16, 16, 16):
        sizer.succeeded()
        assert sizer.span == expected


def test_range_sizer_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        RangeSizer(max_span=0)
    with pytest.raises(ValueError):
        RangeSizer(max_span=4, min_span=8)


def test_event_specs_cover_every_ledger_event_and_decode() -> None:
    specs = {s.name: s for s in event_specs(load_abi()).values()}
    for name in (
        "MemberAdmitted",
        "MemberRolesChanged",
        "MemberSuspended",
        "MemberReinstated",
        "EncryptionKeyBound",
        "AgentAdded",
        "AgentRemoved",
        "GovernanceTransferStarted",
        "GovernanceTransferred",
        "SchemaRegistered",
        "AssetAnchored",
        "AssetSuperseded",
        "AssetDisputed",
        "DisputeResolved",
        "AssetRetired",
        "ConsentGranted",
        "ConsentRevoked",
        "ConsentPaused",
        "ConsentResumed",
        "Accessed",
    ):
        assert name in specs
    spec = specs["ConsentRevoked"]
    assert spec.topic0 == "0x" + keccak(text="ConsentRevoked(bytes32,address,uint64)").hex()
    grant_id = "0x" + "ab" * 32
    by = "0x" + "12" * 20
    args = spec.decode(
        [spec.topic0, grant_id, "0x" + "00" * 12 + by[2:]],
        "0x" + eth_abi.encode(["uint64"], [2**64 - 1]).hex(),
    )
    assert args == {"grantId": grant_id, "by": by, "timestamp": 2**64 - 1}
    with pytest.raises(ValueError):
        spec.decode([spec.topic0, grant_id], "0x")
    with pytest.raises(ValueError):
        spec.decode([spec.topic0, grant_id, "0x" + "ff" * 32], "0x")  # not an address
    with pytest.raises(ValueError):
        spec.decode([spec.topic0, grant_id, "0x" + "00" * 12 + by[2:]], "0x01")


def test_load_abi_missing_is_typed(tmp_path: Path) -> None:
    with pytest.raises(AbiNotFoundError):
        load_abi(tmp_path / "nope.json")


@pytest.mark.parametrize("mask", [0, 1, 2**62, 2**63, 2**64 - 1])
def test_mask64_round_trips_and_keeps_bit_tests(db_url: str, mask: int) -> None:
    engine = db.make_engine(db_url)
    meta = sa.MetaData()
    t = sa.Table(
        "m", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", db.Mask64)
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(t), [{"id": 1, "v": mask}])
        assert conn.execute(sa.select(t.c.v)).scalar_one() == mask
        top = conn.execute(
            sa.select(t.c.v.op("&")(sa.literal(-(2**63), sa.BigInteger)))
        ).scalar_one()
        assert (top != 0) == bool(mask >> 63)
    engine.dispose()
    with pytest.raises(ValueError):
        db.Mask64().process_bind_param(2**64, engine.dialect)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATASAFE_INDEXER_BATCH_SIZE", "77")
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path))
    s = IndexerSettings()
    assert s.batch_size == 77
    assert s.database_url == f"sqlite:///{tmp_path / 'datasafe.db'}"
    monkeypatch.setenv("DATASAFE_INDEXER_ON_UNKNOWN_EVENT", "ignore")
    with pytest.raises(ValueError):
        IndexerSettings()
    get_settings.cache_clear()
    monkeypatch.setenv("DATASAFE_INDEXER_ON_UNKNOWN_EVENT", "skip")
    assert get_settings() is get_settings()
    assert get_settings().on_unknown_event == "skip"
    get_settings.cache_clear()
