"""Every key the config loader accepts has a row in README's configuration reference.

The keys come from the config structs themselves (``daemon/config.py`` and the settings they
nest), so a new setting without a README row fails here. A row's first cell names keys in
backticks: a dotted key is absolute (in the ``models[].monitoring`` table: relative to it), a
bare name shares the prefix of the cell's first key (``kafka.poll_timeout``, ``session_timeout``),
and ``x.*`` covers every key under ``x``.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from driftwarden.daemon.config import Config

README = Path(__file__).resolve().parents[1] / "README.md"
MONITORING = "models[].monitoring."
NOT_USER_KEYS = {"base_dir"}  # set by the loader to the config file's directory


def config_keys(t: type = Config, prefix: str = "", seen: frozenset[type] = frozenset()) -> list[str]:
    """Dotted keys of every leaf setting (``models[].monitoring.drift.method``)."""
    out: list[str] = []
    for f in msgspec.inspect.type_info(t).fields:  # type: ignore[attr-defined]
        key, ft = prefix + f.encode_name, f.type
        while isinstance(ft, msgspec.inspect.UnionType):
            ft = next((x for x in ft.types if not isinstance(x, msgspec.inspect.NoneType)), ft.types[0])
        inner = ft.item_type if isinstance(ft, msgspec.inspect.ListType) else \
            ft.value_type if isinstance(ft, msgspec.inspect.DictType) else ft
        mark = "[]." if isinstance(ft, msgspec.inspect.ListType) else \
            ".<name>." if isinstance(ft, msgspec.inspect.DictType) else "."
        if isinstance(inner, msgspec.inspect.StructType) and inner.cls not in seen:
            out += config_keys(inner.cls, key + mark, seen | {t})
        elif key not in NOT_USER_KEYS:
            out.append(key)
    return out


def readme_keys() -> set[str]:
    """Keys named by the first cell of every table row of the configuration reference."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration reference"):]
    section = section[:section.index("\n## ", 10)]
    keys: set[str] = set()
    prefix = ""
    for line in section.splitlines():
        if line.startswith("### "):
            prefix = MONITORING if "models[].monitoring" in line else ""
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([^`]+)`", line.split(" | ")[0])
        parent = names[0][: names[0].rindex(".") + 1] if "." in names[0] else ""
        keys.update(prefix + (name if "." in name else parent + name) for name in names)
    return keys


def covered(key: str, rows: set[str]) -> bool:
    return key in rows or any(r.endswith(".*") and key.startswith(r[:-1]) for r in rows)


def test_every_config_key_has_a_readme_row() -> None:
    rows = readme_keys()
    missing = [k for k in config_keys() if not covered(k, rows)]
    assert not missing, f"config keys without a row in README's configuration reference: {missing}"


def test_the_key_walk_sees_the_new_settings() -> None:
    keys = config_keys()
    for k in ("models[].monitoring.drift.method", "models[].monitoring.false_alarm_budget",
              "models[].monitoring.performance.segment_alpha", "models[].monitoring.segments",
              "alerting.incident_span", "alerting.route.continue", "alerting.retraining.<name>.cooldown"):
        assert k in keys
    assert not covered("models[].monitoring.no_such_key", readme_keys())
