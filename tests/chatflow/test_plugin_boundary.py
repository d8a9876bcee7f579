"""chatflow names no provider: a provider's settings, options and code live in `providers/<name>/`.

Counts the identifiers (names, attributes, arguments, keywords, definitions, imports; not strings
or comments) in `chatflow/**/*.py` that contain a provider's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

CHATFLOW = Path(__file__).resolve().parents[2] / "chatflow"
PROVIDER_NAMES = re.compile(r"twilio|whatsapp_|meta_", re.IGNORECASE)


def identifiers(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.append(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [alias.name for alias in node.names] + [alias.asname for alias in node.names if alias.asname]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
        found += [(getattr(node, "lineno", 0), name) for name in names]
    return found


def provider_identifiers(source: str) -> list[str]:
    return [f"{line}: {name}" for line, name in identifiers(ast.parse(source)) if PROVIDER_NAMES.search(name)]


def test_the_counter_finds_every_kind_of_identifier_and_no_string() -> None:
    source = (
        "import twilio.rest\nfrom providers.whatsapp_cloud import spec as whatsapp_spec\n"
        "twilio_sid = settings.whatsapp_token\ndef meta_id(whatsapp_x: str) -> None: f(twilio_y=1)\n"
        "class TwilioThing: pass\nx = 'twilio whatsapp_cloud meta_'  # twilio_sid\n"
    )
    names = {hit.split(": ")[1] for hit in provider_identifiers(source)}
    assert names == {
        "twilio.rest", "providers.whatsapp_cloud", "whatsapp_spec", "twilio_sid", "whatsapp_token", "meta_id",
        "whatsapp_x", "twilio_y", "TwilioThing",
    }  # fmt: skip


def test_no_identifier_in_chatflow_names_a_provider() -> None:
    found = [
        f"{path.relative_to(CHATFLOW.parent)}:{hit}"
        for path in sorted(CHATFLOW.rglob("*.py"))
        for hit in provider_identifiers(path.read_text(encoding="utf-8"))
    ]
    assert found == []
