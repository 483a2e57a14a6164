"""The file engine shared by the daemon and `dcmwatch process`.

A file comes in through an intake (the watched inbox, or a listing of folders, manifests and
`s3://` prefixes), travels in a batch to an executor (the engine's own worker pool, or Dask),
is processed by `work.run_one` (the pure per-file core under its time limit), and is settled by
the settle stage: output committed, journaled, input released; or quarantined with its sidecar;
or retried after a back-off. Crash isolation finds a file that kills its workers. The daemon and
the backfill driver are thin front ends that turn the crank (`core.Engine.pump`).
"""
