from __future__ import annotations

import importlib.util

from harness import REPO


def test_catalog_when_generated_then_matches_committed_docs() -> None:
    path = REPO / "scripts" / "gen_catalog.py"
    spec = importlib.util.spec_from_file_location("gen_catalog", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO / "docs" / "catalog.md").read_text()
    assert module.render() == committed, "docs/catalog.md is stale: run scripts/gen_catalog.py"
