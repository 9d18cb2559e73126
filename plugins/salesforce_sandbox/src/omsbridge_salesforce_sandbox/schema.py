"""The sandbox org's object definitions: loaded from the generated schema, shaped per org profile.

The definitions are data generated from Salesforce's published reference
(``data/schema.json``, written by ``scripts/generate_schema.py``; never edit it by hand). This
module reads them, keeps the fields an org profile has (multicurrency, Person Accounts, the
omsbridge setup package), applies the org's picklist values, and answers describe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from .profiles import FO_STATUS_CATEGORY, OrgProfile, get_profile

#: The REST API version of the request being served (set by the REST layer; None outside a
#: request). Fields introduced in a later version do not exist for that request, as in
#: Salesforce ("available in API version X and later").
API_VERSION: ContextVar[float | None] = ContextVar("api_version", default=None)

#: Field types custom fields may have (Salesforce describe ``type`` values).
FIELD_TYPES = frozenset(
    {
        "id",
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "boolean",
        "int",
        "long",
        "double",
        "currency",
        "percent",
        "date",
        "datetime",
        "time",
        "picklist",
        "multipicklist",
        "reference",
        "encryptedstring",
        "address",
        "location",
    }
)

NUMERIC_TYPES = frozenset({"int", "long", "double", "currency", "percent"})
TEXT_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "id",
     "encryptedstring"}
)  # fmt: skip
#: Compound fields: read-only aggregates of their component fields.
COMPOUND_TYPES = frozenset({"address", "location"})


@dataclass(frozen=True)
class Field:
    """One field of an sObject: what describe reports and what validation enforces."""

    name: str
    type: str
    required: bool = False
    picklist: tuple[str, ...] | None = None
    restricted: bool = True
    references: tuple[str, ...] = ()
    relationship_name: str | None = None
    child_relationship: str | None = None
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    default: Any = None
    length: int = 255
    label: str | None = None
    case_sensitive: bool = False
    nillable_: bool | None = None
    precision: int = 0
    scale: int = 0
    defaulted_on_create: bool = False
    id_lookup: bool = False
    autonumber: bool = False
    custom: bool = False
    #: First API version with this field (0: always).
    since: float = 0.0

    @property
    def nillable(self) -> bool:
        """Whether the field may be null."""
        if self.nillable_ is not None:
            return self.nillable_
        return not self.required and self.type != "boolean"


@dataclass(frozen=True)
class SObjectType:
    """One sObject type: API name, key prefix, fields, and a few behaviour flags."""

    name: str
    key_prefix: str
    fields: dict[str, Field]
    label: str
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    name_field: str | None = "Name"
    queryable: bool = True
    custom: bool = False

    def field(self, name: str) -> Field | None:
        """The field called *name* (case-insensitive), or None."""
        return self._lower().get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship name is *name* (case-insensitive)."""
        lowered = name.lower()
        for candidate in self.fields.values():
            if candidate.relationship_name and candidate.relationship_name.lower() == lowered:
                return candidate
        return None

    def external_id_fields(self) -> list[Field]:
        """Fields usable in an upsert URL (external ids; ``Id`` is handled separately)."""
        return [f for f in self.fields.values() if f.external_id]

    def _lower(self) -> dict[str, Field]:
        cache_ = self.__dict__.get("_lower_cache")
        if cache_ is None:
            cache_ = {k.lower(): v for k, v in self.fields.items()}
            object.__setattr__(self, "_lower_cache", cache_)
        return cache_


class Schema:
    """The set of sObject types of one sandbox org (with any integrator-added fields)."""

    def __init__(self, types: Iterable[SObjectType]) -> None:
        self._types: dict[str, SObjectType] = {t.name.lower(): t for t in types}
        self._by_prefix = {t.key_prefix: t for t in self._types.values() if t.key_prefix}
        if len(self._by_prefix) != len([t for t in self._types.values() if t.key_prefix]):
            raise ValueError("duplicate key prefix in schema")

    def get(self, name: str) -> SObjectType | None:
        """The type called *name* (case-insensitive), or None."""
        return self._types.get(name.lower())

    def by_prefix(self, prefix: str) -> SObjectType | None:
        """The type whose ids start with *prefix*, or None."""
        return self._by_prefix.get(prefix)

    def types(self) -> list[SObjectType]:
        """All types, in definition order."""
        return list(self._types.values())

    def children(self, parent: str) -> dict[str, tuple[SObjectType, Field]]:
        """Child relationships of *parent*: relationship name -> (child type, lookup field)."""
        out: dict[str, tuple[SObjectType, Field]] = {}
        for child_type in self._types.values():
            for f in child_type.fields.values():
                if f.child_relationship and parent in f.references:
                    out.setdefault(f.child_relationship, (child_type, f))
        return out

    def at_version(self, version: float | None) -> Schema:
        """This schema as a request at API *version* sees it (later fields left out)."""
        if version is None:
            return self
        cache_: dict[float, Schema] = self.__dict__.setdefault("_versions", {})
        found = cache_.get(version)
        if found is None:
            found = cache_[version] = Schema(
                replace(t, fields={n: f for n, f in t.fields.items() if f.since <= version})
                for t in self._types.values()
            )
        return found

    def current(self) -> Schema:
        """This schema at the API version of the request being served (see API_VERSION)."""
        return self.at_version(API_VERSION.get())

    def with_fields(self, extra: dict[str, list[Field]]) -> Schema:
        """A copy with *extra* fields added per type (an org's custom fields)."""
        types = []
        for t in self._types.values():
            added = extra.get(t.name, [])
            if added:
                merged = dict(t.fields)
                for f in added:
                    merged[f.name] = f
                t = replace(t, fields=merged)
            types.append(t)
        return Schema(types)


# --- loading the generated definitions ----------------------------------------------------


@cache
def generated_document() -> dict[str, Any]:
    """The generated schema document (``data/schema.json``), parsed once per process."""
    text = resources.files(__package__).joinpath("data/schema.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def field_from_spec(spec: dict[str, Any]) -> Field:
    """A :class:`Field` from one generated field entry."""
    type_ = spec["type"]
    createable = spec.get("createable", True)
    nillable = spec.get("nillable", True) and type_ != "boolean"
    defaulted = bool(spec.get("defaulted_on_create")) or bool(spec.get("autonumber"))
    picklist = spec.get("picklist")
    return Field(
        name=spec["name"],
        type=type_,
        # Salesforce's "required on create": createable, not nillable, not defaulted.
        required=createable and not nillable and not defaulted and type_ != "boolean",
        picklist=tuple(picklist) if picklist is not None else None,
        restricted=bool(spec.get("restricted", False)),
        references=tuple(spec.get("reference_to", ())),
        relationship_name=spec.get("relationship_name"),
        child_relationship=spec.get("child_relationship"),
        external_id=bool(spec.get("external_id")),
        unique=bool(spec.get("unique")),
        createable=createable,
        updateable=spec.get("updateable", True),
        default=spec.get("default_value"),
        length=int(spec.get("length") or (18 if type_ in ("id", "reference") else 255)),
        label=spec.get("label"),
        case_sensitive=bool(spec.get("case_sensitive")),
        nillable_=nillable,
        precision=int(spec.get("precision") or 0),
        scale=int(spec.get("scale") or 0),
        defaulted_on_create=defaulted,
        id_lookup=bool(spec.get("id_lookup")) or type_ == "id",
        autonumber=bool(spec.get("autonumber")),
        custom=bool(spec.get("custom")) or spec["name"].endswith("__c"),
        since=float(spec.get("since") or 0),
    )


def _org_picklists(profile: OrgProfile) -> dict[str, tuple[str, ...]]:
    """Picklist values that are org data (not Salesforce's): set by the profile."""
    currencies = profile.currencies
    return {
        "FulfillmentOrder.Status": profile.fo_statuses,
        "OrderItemSummaryChange.Reason": profile.change_reasons,
        "*.CurrencyIsoCode": currencies,
    }


def _build(profile: OrgProfile) -> Schema:
    org_values = _org_picklists(profile)
    types: list[SObjectType] = []
    for obj in generated_document()["objects"]:
        if obj.get("event"):
            continue  # platform events are published, not stored: see streaming.py
        fields: dict[str, Field] = {}
        specs = list(obj["fields"]) + profile.extra_fields.get(obj["name"], [])
        for spec in specs:
            feature = spec.get("feature")
            if feature and feature not in profile.features:
                continue  # the org does not have this feature: the field does not exist
            f = field_from_spec(spec)
            values = org_values.get(f"{obj['name']}.{f.name}") or (
                org_values["*.CurrencyIsoCode"] if f.name == "CurrencyIsoCode" else None
            )
            if values is not None:
                default = profile.corporate_currency if f.name == "CurrencyIsoCode" else f.default
                f = replace(f, picklist=tuple(values), default=default)
            fields[f.name] = f
        types.append(
            SObjectType(
                name=obj["name"],
                key_prefix=obj["key_prefix"],
                fields=fields,
                label=obj.get("label") or obj["name"],
                createable=obj["createable"],
                updateable=obj["updateable"],
                deletable=obj["deletable"],
                name_field=obj.get("name_field"),
                queryable=obj.get("queryable", True),
            )
        )
    return Schema(types)


@cache
def _profile_schema(profile_name: str) -> Schema:
    return _build(get_profile(profile_name))


def default_schema(
    custom_fields: dict[str, list[Field]] | None = None, org_profile: str = "som"
) -> Schema:
    """The schema of an org with *org_profile*, plus *custom_fields* (type -> extra fields)."""
    schema = _profile_schema(org_profile)
    return schema.with_fields(custom_fields) if custom_fields else schema


def custom_field(name: str, type_: str = "string", **kwargs: Any) -> Field:
    """Declare an integrator's custom field (e.g. ``custom_field("Loyalty__c")``)."""
    if type_ not in FIELD_TYPES:
        raise ValueError(f"unknown field type {type_!r}")
    if kwargs.get("external_id"):
        kwargs.setdefault("unique", True)
        kwargs.setdefault("id_lookup", True)
    if type_ == "reference" and "relationship_name" not in kwargs:
        kwargs["relationship_name"] = name.replace("__c", "__r")
    kwargs.setdefault("custom", True)
    return Field(name, type_, **kwargs)


def _soap_type(f: Field) -> str:
    return {
        "id": "tns:ID",
        "reference": "tns:ID",
        "boolean": "xsd:boolean",
        "int": "xsd:int",
        "long": "xsd:long",
        "double": "xsd:double",
        "currency": "xsd:double",
        "percent": "xsd:double",
        "date": "xsd:date",
        "datetime": "xsd:dateTime",
        "time": "xsd:time",
        "address": "urn:address",
        "location": "urn:location",
    }.get(f.type, "xsd:string")


def describe_field(f: Field) -> dict[str, Any]:
    """The describe representation of one field (keys as in a real describe answer)."""
    text = f.type in TEXT_TYPES or f.type == "reference"
    numeric = f.type in ("double", "currency", "percent")
    return {
        "aggregatable": f.type not in ("textarea", "address", "location"),
        "autoNumber": f.autonumber,
        "byteLength": f.length * 3 if text else 0,
        "calculated": False,
        "caseSensitive": f.case_sensitive,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": None,
        "defaultedOnCreate": f.defaulted_on_create or f.default is not None or f.type == "boolean",
        "dependentPicklist": False,
        "digits": f.precision if f.type in ("int", "long") else 0,
        "externalId": f.external_id,
        "filterable": f.type not in ("textarea", "address", "location"),
        "groupable": f.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "htmlFormatted": False,
        "idLookup": f.id_lookup,
        "label": f.label or f.name,
        "length": f.length
        if (text and f.type != "reference") or f.type == "id"
        else (18 if f.type == "reference" else 0),
        "name": f.name,
        "nameField": False,
        "nillable": f.nillable,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": v == f.default,
                "label": v,
                "validFor": None,
                "value": v,
            }
            for v in (f.picklist or ())
        ],
        "precision": f.precision if numeric else 0,
        "referenceTo": list(f.references),
        "relationshipName": f.relationship_name,
        "restrictedPicklist": f.type in ("picklist", "multipicklist") and f.restricted,
        "scale": f.scale if numeric else 0,
        "soapType": _soap_type(f),
        "sortable": f.type not in ("textarea", "address", "location"),
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
    }


__all__ = [
    "API_VERSION",
    "FO_STATUS_CATEGORY",
    "Field",
    "SObjectType",
    "Schema",
    "custom_field",
    "default_schema",
    "describe_field",
    "field_from_spec",
    "generated_document",
]
