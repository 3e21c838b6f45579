"""``datasafe-node demo``: the whole data-authorisation story, with real keys, on a running node.

Client side only: every actor holds its own fresh account key and HPKE encryption key,
signs its own requests (:class:`api.client.DataSafeClient`), transactions and consents
(:mod:`ledger.eip712`), and seals or opens data itself (:mod:`vault`). The service
only relays and stores ciphertext; the chain is read directly to check what the
service answers. The one privileged key is the governor's (the "big-data bureau"),
which admits the members: anvil's first dev key on the embedded chain, the ledger
settings' sender (``DATASAFE_LEDGER_PRIVATE_KEY`` / ``_KEYSTORE_PATH``) otherwise.

Every run makes new members (their names carry the run number), so the demo can be
played any number of times on the same node. :func:`run_demo` returns a JSON-able
report of every outcome (``datasafe-node demo --json`` prints it); the end-to-end test
asserts it and recounts the chain's events itself.

Secrets are kept as a wallet keeps them. Each actor has a wallet home of its own,
``<run folder>/wallets/<role>`` (mode 0700, the ``datasafe`` wallet's layout: a V3 keystore
for the account key and the passphrase-sealed HPKE key, files 0600), locked with the public
demo passphrase :data:`DEMO_PASSPHRASE` — so ``DATASAFE_HOME=<that dir> datasafe ...`` opens
it. Nothing decrypted is written to disk unless asked (``--write-plaintext``: the opened
records go to ``<run folder>/plaintext``, 0600); the run folder itself is 0700.

A run is resumable: its folder keeps the wallet homes and ``state.json`` (the completed
steps, the report so far without decrypted values, and the sealed assets), rewritten
atomically after each step's effects are confirmed on chain. ``datasafe-node demo --resume``
(or ``--run N``) continues the run from its first incomplete step with the same members;
``--stop-after K`` stops a run after K steps.
"""

from node.demo.cast import LOAN_USES, DemoError
from node.demo.runs import DEMO_PASSPHRASE, STEPS, Narrator, find_node, governor_sender, next_run
from node.demo.story import Demo, run_demo

__all__ = [
    "DEMO_PASSPHRASE",
    "LOAN_USES",
    "STEPS",
    "Demo",
    "DemoError",
    "Narrator",
    "find_node",
    "governor_sender",
    "next_run",
    "run_demo",
]
