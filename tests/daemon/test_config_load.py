"""Loading a config fast (libyaml, cached Struct fields) reads every document as the Python parser did."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.config import ConfigError, load_config, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(p for p in ROOT.rglob("*.y*ml") if p.suffix in (".yaml", ".yml")
                    and not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_repository_yaml_files_parse_to_the_same_data(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _same(parse_yaml(text), yaml.safe_load(text))


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["5s", "yes", "No", "0x1F", "1e3", "~", "null", "2026-12-01",
                                                           "0o17", ".inf", "-.Inf", "1_000", "+12", "'q'"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                         max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(doc=documents, flow=st.booleans(), as_json=st.booleans())
def test_documents_parse_to_the_same_data(doc: Any, flow: bool, as_json: bool) -> None:
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    assert _same(parse_yaml(text), yaml.safe_load(text))


@pytest.mark.parametrize("text", ["a: [1, 2", "a: b: c", "- a\nb: 1", "a: 'x", "\tkey: 1"])
def test_a_document_yaml_refuses_gives_the_python_parser_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(yaml.YAMLError) as python_error:
        yaml.safe_load(text)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert f"not valid YAML: {python_error.value}" in str(exc.value)
