"""``datasafe-node``: the whole node (chain, ledger, custodian, database, API, indexer).

The composition root: it builds on ``ledger``, ``vault`` and ``api`` (asking the service
through :mod:`api.ops`), and nothing imports it. Commands in :mod:`node.cli`; ``up`` in
:mod:`node.up`, the API child in :mod:`node.supervise`, start-up checks in
:mod:`node.startup`, ``status`` in :mod:`node.status`, ``scrub|backup|restore`` in
:mod:`node.blobs`, the data dir in :mod:`node.datadir`, the demo in :mod:`node.demo`.

datasafe-node up          start everything in the foreground; Ctrl-C / SIGTERM stops it
datasafe-node status      chain reachable, manifest matches, database agrees with the chain,
                          API /readyz and indexer lag (``--json``)
datasafe-node down        stop the ``up`` running on the data dir and wait for it
datasafe-node deploy      deploy (unless the manifest exists) and admit the custodian
datasafe-node reset --yes delete the data dir's chain state, manifest, SQLite DB and blobs
datasafe-node scrub       check every blob against its anchored digest (DB and chain)
datasafe-node backup DIR  copy the database and the blobs into DIR (online)
datasafe-node restore DIR put a backup back (node stopped); then scrub

Embedded by default: an anvil child with its state in ``<data dir>/chain``. With
``--rpc-url`` (or ``DATASAFE_LEDGER_RPC_URL``) and ``--database-url`` (or
``DATASAFE_API_DATABASE_URL``) the same services run against an external EVM node and
PostgreSQL; no anvil is started then.

The API runs as a child process (``python -m api``) configured through its
``DATASAFE_API_*`` settings; the node owns both children, starts them with a
parent-death signal (SIGTERM) on Linux, and stops the API before the chain so that
anvil writes its state last. An API that dies on its own is restarted with a growing
backoff (``ApiSupervisor``); the chain keeps running, and ``status`` counts the restarts.
"""
