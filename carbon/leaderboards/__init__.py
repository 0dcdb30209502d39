"""The leaderboard engine of the core: board definitions and their registry (registry),
windows (windows), the backend protocol with a Redis and a database backend (backends),
feeding, reading, rebuilding and rolling over (engine), the ledger's own boards
(ledger_source), the per-process push loop (push), the socket (consumers) and the API (api).
"""
