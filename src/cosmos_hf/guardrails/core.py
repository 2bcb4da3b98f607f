"""The vocabulary every guard shares: a verdict, and the error that blocks an output.

Guards never return "safe" because something went wrong: an exception inside a guard becomes a
blocking verdict (or a `GuardrailBlockedError`) that names the guard and the error (fail closed).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GuardrailVerdict:
    """The outcome of one guard (or of a chain of guards) on one input.

    Attributes:
        is_safe: True only when every guard that ran said safe.
        guard: name of the guard that decided (the first one that blocked, or "all" when safe).
        reason: a human-readable reason; for blocks it names the matched rule / category / error.
        details: guard-specific extras (matched term, category codes, per-frame classes, ...).
    """

    is_safe: bool
    guard: str
    reason: str = ""
    details: dict = field(default_factory=dict)

    def __bool__(self) -> bool:  # `if verdict:` reads as "is it safe?"
        return self.is_safe


class GuardrailBlockedError(ValueError):
    """Raised when a guard blocks an input or output, or when a guard fails (fail closed).

    A subclass of ValueError so that the `cosmos-hf` CLI reports it as a clear error (exit code 2).
    """

    def __init__(self, verdict: GuardrailVerdict):
        self.verdict = verdict
        super().__init__(f"blocked by guardrail {verdict.guard!r}: {verdict.reason}")


def safe_verdict(guard: str = "all", **details) -> GuardrailVerdict:
    return GuardrailVerdict(is_safe=True, guard=guard, reason="safe", details=dict(details))


def run_guard_fail_closed(guard_name: str, fn, *args, **kwargs) -> GuardrailVerdict:
    """Call `fn(*args, **kwargs) -> GuardrailVerdict`; any exception becomes a blocking verdict that says why."""
    try:
        verdict = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - every failure must block, whatever its type
        return GuardrailVerdict(
            is_safe=False,
            guard=guard_name,
            reason=f"guard failed, blocking (fail closed): {type(err).__name__}: {err}",
            details={"error": repr(err)},
        )
    if not isinstance(verdict, GuardrailVerdict):
        return GuardrailVerdict(
            is_safe=False,
            guard=guard_name,
            reason=f"guard returned {type(verdict).__name__} instead of a GuardrailVerdict, blocking (fail closed)",
        )
    return verdict


def resolve_pretrained_path(name_or_path, cache_dir=None, local_files_only: bool = True):
    """A local folder for `name_or_path`: itself if it exists, else its snapshot in the Hugging Face cache.

    With `local_files_only` (the default) this never touches the network: some loaders (peft's adapter loading)
    query the Hub even when told to stay local, so guards hand them a resolved folder instead of a Hub id.
    """
    from pathlib import Path

    if Path(name_or_path).exists():
        return Path(name_or_path)
    if not local_files_only:
        return name_or_path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(name_or_path), cache_dir=cache_dir, local_files_only=True))
    except Exception as err:  # LocalEntryNotFoundError, HFValidationError for malformed ids, ...
        where = f"cache {cache_dir}" if cache_dir else "the local Hugging Face cache"
        raise FileNotFoundError(
            f"{name_or_path!r} is neither a local folder nor in {where} (no network access at runtime)"
        ) from err
