"""Generate the sandbox's object definitions from the Salesforce reference.

Inputs (all in the repository):

* ``plugins/salesforce_sandbox/reference/*.json`` — one file per sObject, Salesforce's
  published reference (see its README for sources);
* ``plugins/salesforce_oms/org-setup/`` — the omsbridge setup package (SFDX source): custom
  fields and the permission set that grants them;
* ``scripts/schema_overlay.py`` — the one overlay for what the reference does not list.

Output: ``src/omsbridge_salesforce_sandbox/data/schema.json`` (shipped in the wheel; read by
``schema.py``). Run ``python plugins/salesforce_sandbox/scripts/generate_schema.py`` after
changing any input; ``tests/test_generated_schema.py`` fails while the output is stale.
``--check`` exits 1 (naming the file) instead of writing when the output would change.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

PLUGIN = Path(__file__).resolve().parents[1]
REPO = PLUGIN.parents[1]
REFERENCE = PLUGIN / "reference"
SETUP_PACKAGE = REPO / "plugins" / "salesforce_oms" / "org-setup"
OUTPUT = PLUGIN / "src" / "omsbridge_salesforce_sandbox" / "data" / "schema.json"
CONNECT_OUTPUT = PLUGIN / "src" / "omsbridge_salesforce_sandbox" / "data" / "connect.json"

_MD = "{http://soap.sforce.com/2006/04/metadata}"

#: Describe type of each CustomField <type> the setup package uses.
_CUSTOM_TYPES = {"Text": "string", "Number": "double", "Checkbox": "boolean", "Date": "date"}

#: Org features that make a field exist, recognised in the reference's ``condition`` text.
#: Order matters: the first match wins.
_FEATURES = (
    ("multicurrency", "multicurrency"),
    ("only with Person Accounts", "person_accounts"),
    ("State and Country/Territory Picklists", "state_country_picklists"),
    ("Divisions enabled", "divisions"),
)

#: Licences an Order Management org does not have: a field available only with one of them
#: (and not also "with Salesforce Order Management") gets feature ``other_licence``, which no
#: profile has.
_OTHER_LICENCES = (
    "Subscription Management",
    "Revenue Cloud",
    "Field Service",
    "Health Cloud",
    "Data.com",
    "Salesforce to Salesforce",
    "Commerce Subscriptions",
    "Industries",
    "Sales Engagement",
    "Customer Portal",
    "partner portal",
    "B2B Commerce license enabled",
    "B2B or D2C Commerce license",
)


class InputError(Exception):
    """An input file is missing or malformed (the message names it)."""


def _load_overlay() -> Any:
    spec = importlib.util.spec_from_file_location(
        "schema_overlay", Path(__file__).with_name("schema_overlay.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _feature(condition: str | None) -> str | None:
    for needle, name in _FEATURES:
        if condition and needle in condition:
            return name
    if (
        condition
        and "Order Management" not in condition
        and any(licence in condition for licence in _OTHER_LICENCES)
    ):
        return "other_licence"
    return None


def _nillable(raw: dict[str, Any]) -> bool:
    """Whether a field may be null. The reference's ``nillable`` is the doc's property list;
    the doc omits "Nillable" on some fields a real-org describe reports as nillable (the
    reference notes it), and on doc-only fields that no describe confirms. Both are taken as
    nillable, so the sandbox does not demand a field that a real org lets be empty."""
    if raw.get("nillable") is not False:
        return True
    notes = " ".join(raw.get("notes") or [])
    if "reports nillable=true" in notes:
        return True
    describe_sources = {"fieldref-v67", "sfexplorer-describe", "sysfields-v67"}
    return not describe_sources.intersection(raw.get("source") or [])


def _relationship_name(name: str, type_: str) -> str | None:
    if type_ != "reference":
        return None
    if name.endswith("__c"):
        return name[:-3] + "__r"
    return name[:-2] if name.endswith("Id") else name


def _field_from_reference(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """One generated field (compact: keys at their default value are left out)."""
    type_ = raw["type"]
    out: dict[str, Any] = {"name": name, "type": type_}
    if raw.get("label"):
        out["label"] = raw["label"]
    for key in ("length", "precision", "scale", "digits"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    if type_ in ("picklist", "multipicklist"):
        out["picklist"] = raw.get("picklist")
        out["restricted"] = bool(raw.get("restricted"))
    # null in the reference = "no source says": the sandbox then allows (documented leniency).
    for key in ("createable", "updateable"):
        if raw.get(key) is False:
            out[key] = False
    if not _nillable(raw) and type_ != "boolean":
        out["nillable"] = False
    if raw.get("defaulted_on_create"):
        out["defaulted_on_create"] = True
    if raw.get("reference_to"):
        out["reference_to"] = list(raw["reference_to"])
        out["relationship_name"] = _relationship_name(name, type_)
    for key in ("id_lookup", "autonumber", "external_id", "unique", "case_sensitive"):
        if raw.get(key):
            out[key] = True
    feature = _feature(raw.get("condition"))
    if name == "CurrencyIsoCode":
        # A rule, not a per-field statement: a single-currency org has no CurrencyIsoCode on
        # any object (the reference states it for most objects and is silent for the rest;
        # CurrencyType, the currencies themselves, "is not available in single-currency
        # organizations" — Object Reference "CurrencyType").
        feature = "multicurrency"
    if feature:
        out["feature"] = feature
    if raw.get("since"):
        out["since"] = raw["since"]
    return out


def _read_reference() -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    files = sorted(REFERENCE.glob("*.json"))
    if not files:
        raise InputError(f"{REFERENCE}: no reference object files (*.json)")
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name = data["object"]
            fields = data["fields"]
        except (ValueError, KeyError) as exc:
            raise InputError(f"{path}: not a reference object file ({exc})") from None
        calls = set(data.get("supported_calls") or [])
        objects[name] = {
            "name": name,
            "key_prefix": data.get("key_prefix"),
            "label": name,
            "createable": "create()" in calls,
            "updateable": "update()" in calls,
            "deletable": "delete()" in calls,
            "queryable": "query()" in calls,
            "event": name.endswith("Event"),
            "fields": {n: _field_from_reference(n, f) for n, f in sorted(fields.items())},
        }
    return objects


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(_MD + tag)
    return found.text.strip() if found is not None and found.text else None


def _read_setup_package() -> dict[str, list[dict[str, Any]]]:
    """Custom fields per object from the SFDX source, with the permission set's access."""
    base = SETUP_PACKAGE / "force-app" / "main" / "default"
    perm_files = sorted((base / "permissionsets").glob("*.permissionset-meta.xml"))
    if not perm_files:
        raise InputError(f"{base / 'permissionsets'}: no permission set")
    editable: dict[str, bool] = {}
    for perm in perm_files:
        root = ET.parse(perm).getroot()
        for fp in root.findall(_MD + "fieldPermissions"):
            field = _text(fp, "field")
            if field is None:
                raise InputError(f"{perm}: fieldPermissions without <field>")
            editable[field] = _text(fp, "editable") == "true"
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(base.glob("objects/*/fields/*.field-meta.xml")):
        obj = path.parents[1].name
        root = ET.parse(path).getroot()
        name = _text(root, "fullName")
        kind = _text(root, "type")
        if not name or kind not in _CUSTOM_TYPES:
            raise InputError(f"{path}: needs <fullName> and a <type> in {sorted(_CUSTOM_TYPES)}")
        key = f"{obj}.{name}"
        if key not in editable:
            raise InputError(f"{path}: the permission set grants no access to {key}")
        field: dict[str, Any] = {"name": name, "type": _CUSTOM_TYPES[kind], "custom": True}
        field["label"] = _text(root, "label") or name
        for tag in ("length", "precision", "scale"):
            value = _text(root, tag)
            if value is not None:
                field[tag] = int(value)
        if not editable[key]:
            field["createable"] = False
            field["updateable"] = False
        for tag, out_key in (
            ("externalId", "external_id"),
            ("unique", "unique"),
            ("caseSensitive", "case_sensitive"),
        ):
            if _text(root, tag) == "true":
                field[out_key] = True
        if field.get("external_id"):
            field["id_lookup"] = True
        field["feature"] = "setup_package"
        out.setdefault(obj, []).append(field)
    return out


def generate() -> dict[str, Any]:
    """The generated schema document (deterministic: same inputs, same output)."""
    overlay = _load_overlay()
    objects = _read_reference()
    for name, spec in overlay.EXTRA_OBJECTS.items():
        if name in objects:
            raise InputError(f"schema_overlay.py: {name} is in the reference; remove it here")
        objects[name] = {
            "name": name,
            "key_prefix": spec["key_prefix"],
            "label": spec.get("label", name),
            "createable": spec.get("createable", True),
            "updateable": spec.get("updateable", True),
            "deletable": spec.get("deletable", True),
            "queryable": True,
            "event": False,
            "overlay": True,
            "fields": {n: {"name": n, **f} for n, f in spec["fields"].items()},
        }
        for n, f in objects[name]["fields"].items():
            if f["type"] == "reference":
                f["relationship_name"] = _relationship_name(n, "reference")
        system = {
            "Id": {"name": "Id", "type": "id", "createable": False, "updateable": False},
            "IsDeleted": {
                "name": "IsDeleted",
                "type": "boolean",
                "createable": False,
                "updateable": False,
            },
            "CreatedDate": {
                "name": "CreatedDate",
                "type": "datetime",
                "createable": False,
                "updateable": False,
            },
            "CreatedById": {
                "name": "CreatedById",
                "type": "reference",
                "reference_to": ["User"],
                "relationship_name": "CreatedBy",
                "createable": False,
                "updateable": False,
            },
            "LastModifiedDate": {
                "name": "LastModifiedDate",
                "type": "datetime",
                "createable": False,
                "updateable": False,
            },
            "LastModifiedById": {
                "name": "LastModifiedById",
                "type": "reference",
                "reference_to": ["User"],
                "relationship_name": "LastModifiedBy",
                "createable": False,
                "updateable": False,
            },
            "SystemModstamp": {
                "name": "SystemModstamp",
                "type": "datetime",
                "createable": False,
                "updateable": False,
            },
        }
        if spec.get("owner"):
            system["OwnerId"] = {
                "name": "OwnerId",
                "type": "reference",
                "reference_to": ["User"],
                "relationship_name": "Owner",
                "defaulted_on_create": True,
            }
        objects[name]["fields"] = {**system, **objects[name]["fields"]}
    for name, prefix in overlay.EXTRA_KEY_PREFIXES.items():
        if objects[name]["key_prefix"]:
            raise InputError(f"schema_overlay.py: the reference gives {name}'s key prefix")
        objects[name]["key_prefix"] = prefix
    for key, rel in overlay.CHILD_RELATIONSHIPS.items():
        obj, field = key.split(".")
        try:
            target = objects[obj]["fields"][field]
        except KeyError:
            raise InputError(
                f"schema_overlay.py: CHILD_RELATIONSHIPS names unknown {key}"
            ) from None
        target["child_relationship"] = rel
    for key, value in overlay.PICKLIST_DEFAULTS.items():
        obj, field = key.split(".")
        target = objects[obj]["fields"][field]
        if value not in (target.get("picklist") or []):
            raise InputError(f"schema_overlay.py: default {value!r} is not a value of {key}")
        target["default_value"] = value
    for obj in objects.values():
        for f in obj["fields"].values():
            if f.get("reference_to"):
                f["reference_to"] = sorted(
                    {
                        t
                        for ref in f["reference_to"]
                        for t in overlay.REFERENCE_EXPANSIONS.get(ref, [ref])
                    }
                )
    for obj, fields in _read_setup_package().items():
        if obj not in objects:
            raise InputError(f"{SETUP_PACKAGE}: custom field on unknown object {obj}")
        for field in fields:
            objects[obj]["fields"][field["name"]] = field
    for obj in objects.values():
        fields = obj["fields"]
        obj["name_field"] = next(
            (
                n
                for n in ("Name", f"{obj['name']}Number", "OrderNumber", "DocumentNumber")
                if n in fields
            ),
            None,
        )
        if obj["name"] in overlay.EXTRA_OBJECTS:
            obj["name_field"] = overlay.EXTRA_OBJECTS[obj["name"]].get("name_field")
        obj["fields"] = [fields[n] for n in sorted(fields)]
    prefixes = [o["key_prefix"] for o in objects.values() if o["key_prefix"]]
    if len(prefixes) != len(set(prefixes)):
        raise InputError("duplicate key prefix across the reference and the overlay")
    return {
        "generated_by": "plugins/salesforce_sandbox/scripts/generate_schema.py",
        "inputs": [
            "plugins/salesforce_sandbox/reference/*.json",
            "plugins/salesforce_oms/org-setup/force-app/main/default/**",
            "plugins/salesforce_sandbox/scripts/schema_overlay.py",
        ],
        "objects": [objects[n] for n in sorted(objects)],
    }


def _representation(raw: dict[str, Any]) -> dict[str, Any]:
    props = {}
    for name, spec in sorted((raw.get("properties") or {}).items()):
        out: dict[str, Any] = {"type": spec.get("type")}
        if spec.get("required") is True:
            out["required"] = True
        if spec.get("since"):
            out["since"] = spec["since"]
        if spec.get("values"):
            out["values"] = spec["values"]
        props[name] = out
    return props


def generate_connect() -> dict[str, Any]:
    """The Connect actions' documented request and response keys (reference/connect/)."""
    actions = []
    files = sorted((REFERENCE / "connect").glob("*.json"))
    if not files:
        raise InputError(f"{REFERENCE / 'connect'}: no Connect action files")
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            request = data.get("request") or {}
            response = (data.get("response") or {}).get("2xx") or {}
            actions.append(
                {
                    "action": data["action"],
                    "method": data["method"],
                    "path": data["path"],
                    "since": data.get("available_since"),
                    "request": _representation(request),
                    "request_nested": {
                        name: _representation(nested)
                        for name, nested in sorted((request.get("nested") or {}).items())
                    },
                    "response": sorted((response.get("properties") or {}).keys()),
                }
            )
        except (ValueError, KeyError) as exc:
            raise InputError(f"{path}: not a reference Connect file ({exc})") from None
    return {
        "generated_by": "plugins/salesforce_sandbox/scripts/generate_schema.py",
        "inputs": ["plugins/salesforce_sandbox/reference/connect/*.json"],
        "actions": actions,
    }


def render_connect(document: dict[str, Any]) -> str:
    """The Connect output file's text (one action per line block)."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def render(document: dict[str, Any]) -> str:
    """The output file's text: one object per block, one field per line (reviewable diffs)."""
    lines = ["{"]
    lines.append(f'"generated_by": {json.dumps(document["generated_by"])},')
    lines.append(f'"inputs": {json.dumps(document["inputs"])},')
    lines.append('"objects": [')
    for i, obj in enumerate(document["objects"]):
        head = {k: v for k, v in obj.items() if k != "fields"}
        lines.append(json.dumps(head, sort_keys=True)[:-1] + ', "fields": [')
        for j, field in enumerate(obj["fields"]):
            sep = "," if j < len(obj["fields"]) - 1 else ""
            lines.append("  " + json.dumps(field, sort_keys=True, ensure_ascii=False) + sep)
        lines.append("]}" + ("," if i < len(document["objects"]) - 1 else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the generated schema file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the output is stale")
    args = parser.parse_args(argv)
    try:
        outputs = {OUTPUT: render(generate()), CONNECT_OUTPUT: render_connect(generate_connect())}
    except (InputError, ET.ParseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = False
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            print(f"{path} is stale: run {Path(__file__).name}", file=sys.stderr)
            stale = True
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
