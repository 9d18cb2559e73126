"""Write docs/api-reference.md from the code: every public name of ``omsbridge``, with its docstrings.

    python scripts/gen_api_reference.py          # rewrite docs/api-reference.md
    python scripts/gen_api_reference.py --check  # exit 1 if the committed page is stale

Classes list their fields (attrs fields with the docstring written under each one), properties and
public methods; enums list their values. core/tests/test_docs.py fails when the page is stale.
"""

from __future__ import annotations

import ast
import enum
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api-reference.md"

_INTRO = """\
# API reference

Generated from the code's docstrings by `scripts/gen_api_reference.py` (a test fails when this
page is stale): every public name of the `omsbridge` package, grouped by the module that defines
it. Import them from the package root: `from omsbridge import OrderDetail, Capability`.

Backends build the read side (`OrderDetail`, `OrderLine`, `OrderHit`, `OrderPage`, `Payment`,
`Shipment`, `CancelResult`, `PostResult`) and read the write side (`Transaction` and its parts);
the helpers on those classes (`Transaction.signed_total`, `LineItem.is_take_with`,
`Tender.method_name`, `Tender.tag`, `Customer.full_name`, `Transaction.order_number`...) are
listed under each class. A `Transaction` handed to a backend has been validated by the bridge;
build one yourself with `wire.loads` or the class (which validates too).
"""


_FOREIGN = {
    "hookimpl": 'Marker for plugin hook implementations (a `pluggy.HookimplMarker("omsbridge")`): '
    "decorate each hook function of a plugin with `@hookimpl`; see docs/hooks.md.",
    "Tender": "Any tender of a transaction: `CardTender | CashTender | DigitalWalletTender | "
    "GiftCardTender` (a type alias; the `type` key of the native JSON says which).",
}
"""Public names whose objects come from a library or are aliases: described here, not rendered."""


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under attributes in the class body (``x: int`` then ``\"\"\"...\"\"\"``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign | ast.Assign)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name):
                docs[target.id] = inspect.cleandoc(following.value.value)
    return docs


def _cached_property_docs(cls: type) -> dict[str, str]:
    """Docstrings of the class's ``functools.cached_property`` methods, by name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    return {
        node.name: ast.get_docstring(node) or ""
        for node in body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).endswith("cached_property") for d in node.decorator_list)
    }


def _annotations(cls: type) -> dict[str, str]:
    """Field annotations as written in the source (``field.type`` may have been resolved to
    objects by whatever ran before, so the page would depend on import order)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        if tree.body and isinstance(tree.body[0], ast.ClassDef):
            for node in tree.body[0].body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    found[node.target.id] = ast.unparse(node.annotation)
    return found


def _one_line(text: str) -> str:
    return _cell(" ".join(text.split()))


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (a bare ``|`` would split the cell)."""
    return text.replace("|", "\\|")


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: attrs.Attribute[Any]) -> str:
    if field.default is attrs.NOTHING:
        return "required"
    if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        return "empty"
    return f"`{field.default!r}`"


def _class_section(name: str, cls: type) -> list[str]:
    out = [f"### `{name}`", ""]
    if _doc(cls):
        out += [_doc(cls), ""]
    if issubclass(cls, enum.Enum):
        out += ["| value | meaning |", "|---|---|"]
        member_docs = _field_docs(cls)
        for member in cls:
            out.append(f"| `{member.value}` | {_one_line(member_docs.get(member.name, ''))} |")
        return [*out, ""]
    if attrs.has(cls):
        docs = _field_docs(cls)
        for base in cls.__mro__[1:]:
            for key, text in _field_docs(base).items():
                docs.setdefault(key, text)
        written = _annotations(cls)
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for field in attrs.fields(cls):
            if field.name.startswith("_"):
                continue
            out.append(
                f"| `{field.name}` | `{_cell(written.get(field.name) or _type_name(field.type))}` | "
                f"{_default(field)} | "
                f"{_one_line(docs.get(field.name, ''))} |"
            )
        out.append("")
    members = []
    cached = _cached_property_docs(cls)
    for member_name, member in sorted(vars(cls).items()):
        if member_name.startswith("_"):
            continue
        if isinstance(member, property):
            members.append(f"- `{member_name}` (property): {_one_line(_doc(member))}")
        elif inspect.ismemberdescriptor(member) and member_name in cached:
            # A functools.cached_property of a slotted attrs class becomes a slot: its
            # docstring is read from the source.
            members.append(f"- `{member_name}` (property): {_one_line(cached[member_name])}")
        elif inspect.isfunction(member) or isinstance(member, classmethod | staticmethod):
            function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            signature = str(inspect.signature(function)).replace("'", "")
            members.append(f"- `{member_name}{signature}`: {_one_line(_doc(function))}")
    if members:
        out += [*members, ""]
    return out


def render() -> str:
    """The page's text, from the installed ``omsbridge`` package."""
    import omsbridge

    by_module: dict[str, list[tuple[str, Any]]] = {}
    for name in sorted(omsbridge.__all__):
        obj = getattr(omsbridge, name)
        module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "omsbridge")
        if inspect.ismodule(obj):
            module = obj.__name__
        if not str(module).startswith("omsbridge"):
            # Made by a library (pluggy's marker, a union of tenders): the package root defines
            # it, and the page must not change with the library's version.
            module = "omsbridge"
        by_module.setdefault(module, []).append((name, obj))
    out = [_INTRO]
    for module in sorted(by_module):
        out += [f"## `{module}`", ""]
        for name, obj in by_module[module]:
            if name in _FOREIGN:
                out += [f"### `{name}`", "", _FOREIGN[name], ""]
            elif inspect.isclass(obj):
                out += _class_section(name, obj)
            elif inspect.ismodule(obj):
                out += [f"### `{name}` (module)", "", _doc(obj), ""]
            elif callable(obj):
                signature = str(inspect.signature(obj)).replace("'", "")
                out += [f"### `{name}{signature}`", "", _doc(obj), ""]
            else:
                out += [f"### `{name}`", "", f"`{obj!r}`", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with ``--check`` say whether the committed one is stale."""
    text = render()
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run python scripts/gen_api_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
