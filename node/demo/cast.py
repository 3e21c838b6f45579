"""The demo's cast (departments, citizen, bank, notary, regulator) and their records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from api.errors import ApiError
from ledger.models import MemberKind, Role
from vault.keys import EncryptionKeyPair

#: Where each run keeps its exports (inside the node's data dir).
DEMO_DIR = "demo"
#: Gas money the governor gives members that send their own transactions (dev chain).
MEMBER_FUNDING_WEI = 10**18
#: Purpose codes of the off-chain catalogue (api.terms.PURPOSES).
PURPOSE_LOAN = 1
PURPOSE_NOTARIAL = 3
SEVEN_DAYS = 7 * 86_400
LOAN_USES = 3
TRACE_WAIT_SECONDS = 30.0


class DemoError(ApiError):
    """The demo cannot run (no node, node not ready) or an outcome differs from the story."""


# ---- the cast and their data ------------------------------------------------------------


@dataclass
class Actor:
    """A member with its own account key and HPKE encryption key, made fresh per run."""

    role_name: str
    label: str
    kind: MemberKind
    roles: Role
    key: str = field(default_factory=lambda: "0x" + secrets.token_bytes(32).hex(), repr=False)
    enc: EncryptionKeyPair = field(default_factory=EncryptionKeyPair.generate, repr=False)

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)


@dataclass(frozen=True)
class Record:
    """A schema and the values a department issues under it."""

    asset: str
    schema: str
    issuer: str
    owner: str
    fields: tuple[tuple[str, bytes], ...]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.fields]

    def value(self, name: str) -> bytes:
        return dict(self.fields)[name]


def cast(run: int) -> dict[str, Actor]:
    """The members of run ``run``; the governor is not among them (it is the bureau's key)."""
    dept, consumer = Role.ISSUER, Role.CONSUMER
    return {
        a.role_name: a
        for a in (
            Actor("police", f"Public Security Bureau #{run}", MemberKind.DEPARTMENT, dept),
            Actor(
                "housing_fund", f"Housing Provident Fund Centre #{run}", MemberKind.DEPARTMENT, dept
            ),
            Actor(
                "real_estate",
                f"Natural Resources & Real Estate Registration #{run}",
                MemberKind.DEPARTMENT,
                dept,
            ),
            Actor("tax", f"Tax Bureau #{run}", MemberKind.DEPARTMENT, dept),
            Actor(
                "market", f"Market Regulation Administration #{run}", MemberKind.DEPARTMENT, dept
            ),
            Actor("bank", f"City Commercial Bank #{run}", MemberKind.BANK, consumer),
            Actor("notary", f"Notary Public Office #{run}", MemberKind.NOTARY, consumer),
            Actor("insurer", f"Mutual Life Insurance #{run}", MemberKind.INSURER, consumer),
            Actor("regulator", f"Financial Regulator #{run}", MemberKind.REGULATOR, Role.REGULATOR),
            Actor("citizen", f"Li Na #{run}", MemberKind.INDIVIDUAL, Role.SUBJECT),
            Actor("enterprise", f"Hengda Tea Co. #{run}", MemberKind.ENTERPRISE, Role.SUBJECT),
        )
    }


def records(run: int) -> list[Record]:
    """What the departments hold. The tax record's income is wrong on purpose (dispute)."""
    return [
        Record(
            "identity",
            "resident identity",
            "police",
            "citizen",
            (
                ("name", f"Li Na #{run}".encode()),
                ("id_number", b"330106199203154527"),
                ("birth_date", b"1992-03-15"),
                ("address", b"88 West Lake Road, Hangzhou"),
            ),
        ),
        Record(
            "housing_fund",
            "housing provident fund account",
            "housing_fund",
            "citizen",
            (
                ("account_no", b"HZ-GJJ-0091827"),
                ("employer", b"Zhejiang Digital Co."),
                ("monthly_contribution", b"3600"),
                ("balance", b"186400"),
            ),
        ),
        Record(
            "real_estate",
            "real estate title",
            "real_estate",
            "citizen",
            (
                ("certificate_no", b"ZJ(2021)HZ-0045512"),
                ("owner_name", f"Li Na #{run}".encode()),
                ("property_address", b"Unit 1502, 7 Qianjiang Road, Hangzhou"),
                ("area_m2", b"89.6"),
                ("encumbrances", b"none"),
            ),
        ),
        Record(
            "tax",
            "individual income tax record",
            "tax",
            "citizen",
            (
                ("tax_id", b"330106199203154527"),
                ("year", b"2025"),
                ("annual_income", b"312000"),  # wrong: should be 213000
                ("tax_paid", b"14630"),
            ),
        ),
        Record(
            "licence",
            "business licence",
            "market",
            "enterprise",
            (
                ("credit_code", b"91330106MA2H7XQ81K"),
                ("company_name", f"Hengda Tea Co. #{run}".encode()),
                ("legal_representative", b"Zhou Ming"),
                ("registered_capital", b"5000000 CNY"),
                ("business_scope", b"tea processing and sales"),
            ),
        ),
    ]


CORRECTED_INCOME = b"213000"
#: The loan application: three fields of two assets.
LOAN_FIELDS = {"identity": ["name", "id_number"], "housing_fund": ["monthly_contribution"]}
NOTARY_FIELDS = ["owner_name", "property_address", "area_m2"]


def fields_hash(names: list[str]) -> bytes:
    """The schema's on-chain ``fieldsHash``: keccak256(abi.encode(string[] fields))."""
    return keccak(abi_encode(["string[]"], [names]))


def mask_of(schema: list[str], names: list[str]) -> int:
    return sum(1 << schema.index(n) for n in names)


def hex_of(value: bytes) -> str:
    return "0x" + value.hex()


def b32_of(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


#: What the citizen claims from the Public Security Bureau (issued on her claim, not before).
def claimed_record(run: int) -> Record:
    return Record(
        "certificate",
        "no-criminal-record certificate",
        "police",
        "citizen",
        (
            ("name", f"Li Na #{run}".encode()),
            ("id_number", b"330106199203154527"),
            ("finding", b"no criminal record"),
            ("valid_until", b"2026-06-30"),
        ),
    )


#: The case number she quotes in her claim (only its hash goes on chain).
CLAIM_REFERENCE = "HZ-PSB-2026-0173"
#: The housing-fund correction the bank is told of (it pulled the old contribution).
CORRECTED_CONTRIBUTION = b"3800"
#: The mortgage valuation grant: one use, the bank may keep what it pulled 30 days.
VALUATION_FIELDS = ["property_address", "area_m2"]
RETENTION_SECONDS = 30 * 86_400
#: A sealed access the tax bureau records (disclosed to the police); short, so the demo
#: sees it fall due and the regulator list it as overdue.
SEAL_SECONDS = 3
SEAL_FIELDS = ["annual_income", "tax_paid"]
SEAL_BASIS = "Criminal Procedure Law art. 54; case HZ-PSB-2026-0173"
