"""Named errors. Each carries a one-line message a person can act on; the CLI prints it as is."""

from __future__ import annotations


class LooplineError(Exception):
    """Base of every error loopline raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(LooplineError):
    """params.yaml is missing, unreadable or does not match the typed config."""

    exit_code = 2


class DataSourceError(LooplineError):
    """An input file or dataset cannot be read as the table it claims to be."""


class IngestError(LooplineError):
    """The source was read but cannot become a feature table (missing columns, no rows, leakage)."""


class ValidationGateError(LooplineError):
    """The data contract failed: table-level expectations broke or too many rows were quarantined.

    `failures` lists every failed expectation as a readable string, so callers (flows, tags,
    artifacts) can show all of them, not just the first.
    """

    def __init__(self, source: str, failures: list[str], report_path: str | None = None):
        self.source = source
        self.failures = failures
        self.report_path = report_path
        where = f"; report: {report_path}" if report_path else ""
        super().__init__(
            f"{source}: validation gate failed ({len(failures)} problem(s)): "
            + "; ".join(failures)
            + where
        )

    def __reduce__(self) -> tuple:
        """Rebuilt from its own arguments: a batch that fails on a Dask worker comes back to
        the flow as this error, not as an unpickling TypeError."""
        return type(self), (self.source, self.failures, self.report_path)


class ModelIntegrityError(LooplineError):
    """A registered model's files differ from the checksums recorded when it was registered:
    corrupted or altered in the artifact store. It is never loaded."""

    exit_code = 3


class TrackingStoreError(LooplineError):
    """The MLflow store stayed locked or unreachable through every retry (`tracking.retries`)."""

    exit_code = 4


class DistributedTrainingError(LooplineError):
    """A rank of a multi-process (DDP) training failed or timed out; the message names the rank
    and the log that holds its traceback."""
