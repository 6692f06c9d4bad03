"""Which jobs of a sweep repeat one setting: those whose overrides differ only in their seed (or data fold).
The sweep's groups (sweeps/groups.py) and the trackers' grouping (W&B's job_type) are made of these."""

# Repeats of one setting: a sweep over these keys asks how much a setting's result varies, not which wins.
REPEAT_KEYS = ("seed", "data.fold")


def override_key(override: str) -> str:
    """``+seed=3`` and ``seed=3`` set the same key."""
    return override.split("=", 1)[0].lstrip("+~")


def setting_of(overrides: list[str]) -> list[str]:
    """A job's overrides without its repeat keys: what the jobs of its group share."""
    return [override for override in overrides if override_key(override) not in REPEAT_KEYS]
