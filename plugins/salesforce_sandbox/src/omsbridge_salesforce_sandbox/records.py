"""sObject DML: validation, coercion and defaults for create/update/delete/upsert.

This is the one place that turns a JSON body into a stored record, so REST, composite,
collections, seed data and Order Management actions all enforce the same rules and answer
with the same Salesforce error codes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from . import ids
from .errors import SalesforceError
from .schema import API_VERSION, NUMERIC_TYPES, Field, Schema, SObjectType
from .store import Record, Store

if TYPE_CHECKING:
    from .clock import Clock

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Auto-number formats of name fields that Salesforce fills in.
AUTONUMBER_FORMATS: dict[str, str] = {
    "Order.OrderNumber": "{:08d}",
    "OrderItem.OrderItemNumber": "{:010d}",
    "OrderDeliveryGroup.OrderDeliveryGroupNumber": "ODG-{:08d}",
    "PaymentGroup.PaymentGroupNumber": "PG-{:08d}",
    "Payment.PaymentNumber": "P-{:09d}",
    "PaymentAuthorization.PaymentAuthorizationNumber": "PA-{:09d}",
    "DigitalWallet.DigitalWalletNumber": "DW-{:09d}",
    "AlternativePaymentMethod.AlternativePaymentMethodNumber": "APM-{:09d}",
    "OrderDeliveryGroupSummary.OrderDeliveryGroupSummaryNumber": "ODGS-{:08d}",
    "FulfillmentOrder.FulfillmentOrderNumber": "FO-{:07d}",
    "FulfillmentOrderLineItem.FulfillmentOrderLineItemNumber": "FOLI-{:08d}",
    "Shipment.ShipmentNumber": "SHIP-{:07d}",
    "Invoice.DocumentNumber": "INV-{:07d}",
    "CreditMemo.DocumentNumber": "CM-{:07d}",
    "Refund.RefundNumber": "R-{:09d}",
    "ReturnOrder.ReturnOrderNumber": "RO-{:07d}",
    "ReturnOrderLineItem.ReturnOrderLineItemNumber": "ROLI-{:08d}",
}

_PERSON_FIELDS = (
    "FirstName",
    "LastName",
    "PersonEmail",
    "PersonMobilePhone",
    "PersonMailingStreet",
    "PersonMailingCity",
    "PersonMailingState",
    "PersonMailingPostalCode",
    "PersonMailingCountry",
)

Hook = Callable[["Dml", str, Record, Record | None], None]


def format_datetime(value: datetime) -> str:
    """Salesforce's datetime wire format: ``2026-01-05T10:15:00.000+0000`` (UTC)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Parse the datetime forms Salesforce accepts (``Z``, ``+0000``, ``+00:00``, no zone)."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", raw):
        raw = raw[:-2] + ":" + raw[-2:]
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _label(f: Field) -> str:
    if f.type == "reference" and f.name.endswith("Id"):
        return f.name[:-2] + " ID"
    return f.name


class Dml:
    """Create, update, delete and upsert records of one sandbox org."""

    def __init__(
        self,
        schema: Schema,
        store: Store,
        clock: Clock,
        user_id: str,
        record_url: Callable[[str, str], str],
    ) -> None:
        self.schema = schema
        self.store = store
        self._clock = clock
        self._user_id = user_id
        self._record_url = record_url
        self.before: dict[str, list[Hook]] = {}
        self.after: dict[str, list[Hook]] = {}
        self._local = threading.local()
        self._register_builtin_rules()

    # --- fault hook ----------------------------------------------------------------------

    def arm_lock_fault(self, armed: bool) -> None:
        """Make the next write on this thread fail with UNABLE_TO_LOCK_ROW (a fault)."""
        self._local.lock_fault = armed

    def _check_lock_fault(self, rec_id: str) -> None:
        if getattr(self._local, "lock_fault", False):
            self._local.lock_fault = False
            raise SalesforceError(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {rec_id}",
                fields=[],
            )

    # --- public DML ----------------------------------------------------------------------

    def sobject(self, type_name: str) -> SObjectType:
        """The schema entry for *type_name*, or INVALID_TYPE / NOT_FOUND as Salesforce says."""
        sobject = self.schema.get(type_name)
        if sobject is None:
            raise SalesforceError("NOT_FOUND", "The requested resource does not exist", status=404)
        return sobject

    def create(self, type_name: str, body: Any, *, system: bool = False) -> str:
        """Insert a record from a JSON body; returns the new 18-character id."""
        sobject = self.sobject(type_name)
        if not system and not sobject.createable:
            raise SalesforceError(
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {sobject.name} does not support insert",
            )
        values = self._coerce_body(sobject, body, creating=True, system=system)
        now = format_datetime(self._clock.now())
        record: Record = {}
        for f in sobject.fields.values():
            if f.type == "boolean":
                record[f.name] = bool(f.default)
            elif f.default is not None:
                record[f.name] = f.default
            else:
                record[f.name] = None
        record.update(values)
        rec_id = self.store.new_id(sobject.name)
        self._check_lock_fault(rec_id)
        user = self._user_id
        record.update(
            {
                "Id": rec_id,
                "IsDeleted": False,
                "CreatedDate": now,
                "CreatedById": user,
                "LastModifiedDate": now,
                "LastModifiedById": user,
                "SystemModstamp": now,
            }
        )
        for f in sobject.fields.values():
            if f.autonumber and record.get(f.name) is None:
                fmt = AUTONUMBER_FORMATS.get(f"{sobject.name}.{f.name}", "{:08d}")
                record[f.name] = fmt.format(self.store.next_number(sobject.name))
        for hook in self.before.get(sobject.name, []):
            hook(self, sobject.name, record, None)
        if not system:
            # The platform's own writes (summaries, change orders...) fill what they need.
            self._check_required(sobject, record)
        self._check_unique(sobject, record)
        with self.store.transaction():
            self.store.insert(sobject.name, record)
            for hook in self.after.get(sobject.name, []):
                hook(self, sobject.name, record, None)
        return rec_id

    def update(self, type_name: str, rec_id: str, body: Any, *, system: bool = False) -> Record:
        """Apply a JSON body of changes to an existing record."""
        sobject = self.sobject(type_name)
        current = self.get_or_404(sobject, rec_id)
        if not system and not sobject.updateable:
            raise SalesforceError(
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {sobject.name} does not support update",
            )
        changes = self._coerce_body(sobject, body, creating=False, system=system)
        self._check_lock_fault(current["Id"])
        old = dict(current)
        new = dict(current)
        new.update(changes)
        now = format_datetime(self._clock.now())
        new.update(
            {"LastModifiedDate": now, "LastModifiedById": self._user_id, "SystemModstamp": now}
        )
        for hook in self.before.get(sobject.name, []):
            hook(self, sobject.name, new, old)
        if not system:
            self._check_required(sobject, new)
        self._check_unique(sobject, new)
        with self.store.transaction():
            stored = self.store.update(sobject.name, current["Id"], new)
            for hook in self.after.get(sobject.name, []):
                hook(self, sobject.name, stored, old)
        return stored

    def delete(self, type_name: str, rec_id: str) -> None:
        """Soft-delete a record (it stays visible to queryAll)."""
        sobject = self.sobject(type_name)
        current = self.get_or_404(sobject, rec_id)
        if not sobject.deletable:
            raise SalesforceError(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {sobject.name} does not support delete"
            )
        self._check_lock_fault(current["Id"])
        with self.store.transaction():
            self.store.update(
                sobject.name,
                current["Id"],
                {"IsDeleted": True, "SystemModstamp": format_datetime(self._clock.now())},
            )

    def upsert(self, type_name: str, ext_field: str, value: str, body: Any) -> tuple[str, bool]:
        """Upsert on an external-id field: returns (id, created)."""
        sobject = self.sobject(type_name)
        if ext_field.lower() == "id":
            if ids.normalize(value) and self.store.get(sobject.name, ids.to18(value)):
                self.update(sobject.name, value, body)
                return ids.to18(value), False
            raise SalesforceError("NOT_FOUND", "The requested resource does not exist", status=404)
        f = sobject.field(ext_field)
        if f is None or not f.external_id:
            raise SalesforceError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {ext_field}",
                status=404,
            )
        if isinstance(body, dict):
            for key, val in body.items():
                if key.lower() == f.name.lower() and val != value:
                    raise SalesforceError(
                        "INVALID_FIELD",
                        f"The value of the external ID field {f.name} in the request body "
                        "doesn't match the value in the URL.",
                        fields=[f.name],
                    )
        matches = self.matching(sobject, f, value)
        if len(matches) > 1:
            raise SalesforceError(
                "MULTIPLE_CHOICES",
                "more than one record found for external id field",
                status=300,
                extra={"records": [self._record_url(sobject.name, r["Id"]) for r in matches]},
            )
        if matches:
            self.update(sobject.name, matches[0]["Id"], body)
            return matches[0]["Id"], False
        payload = dict(body) if isinstance(body, dict) else body
        if isinstance(payload, dict):
            payload[f.name] = value
        return self.create(sobject.name, payload), True

    def get_or_404(self, sobject: SObjectType, rec_id: str) -> Record:
        """The live record with *rec_id*, or NOT_FOUND (404)."""
        norm = ids.normalize(rec_id)
        rec = self.store.get(sobject.name, norm) if norm else None
        if rec is None:
            raise SalesforceError("NOT_FOUND", "The requested resource does not exist", status=404)
        return rec

    # --- validation ----------------------------------------------------------------------

    def _coerce_body(
        self, sobject: SObjectType, body: Any, *, creating: bool, system: bool
    ) -> Record:
        if not isinstance(body, dict):
            raise SalesforceError(
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of SObject from non-object value",
            )
        out: Record = {}
        read_only: list[str] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            f = sobject.field(key)
            version = API_VERSION.get()
            if f is None or (not system and version is not None and f.since > version):
                raise SalesforceError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject.name}"
                )
            if not system and not (f.createable if creating else f.updateable):
                read_only.append(f.name)
                continue
            out[f.name] = self.coerce(sobject, f, value, system=system)
        if read_only:
            raise SalesforceError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                fields=read_only,
            )
        return out

    def coerce(self, sobject: SObjectType, f: Field, value: Any, *, system: bool = False) -> Any:
        """Check one field value and convert it to its stored form."""
        if value is None or (value == "" and f.type not in ("string", "textarea")):
            return None
        t = f.type
        if t in NUMERIC_TYPES:
            if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
                raise self._deserialize_error(t, value)
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                raise self._deserialize_error(t, value) from None
            if not number.is_finite():
                raise self._deserialize_error(t, value)
            if t == "int":
                if number != number.to_integral_value():
                    raise self._deserialize_error("int", value)
                return int(number)
            return number
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise self._deserialize_error("boolean", value)
        if t == "date":
            if isinstance(value, str) and _DATE.match(value):
                try:
                    date.fromisoformat(value)
                    return value
                except ValueError:
                    pass
            raise self._deserialize_error("date", value)
        if t == "datetime":
            if isinstance(value, str):
                try:
                    return format_datetime(parse_datetime(value))
                except ValueError:
                    pass
            raise self._deserialize_error("datetime", value)
        if t == "reference":
            return self._coerce_reference(f, value, system=system)
        if isinstance(value, dict | list):
            raise self._deserialize_error("string", value)
        text = (
            value
            if isinstance(value, str)
            else (("true" if value else "false") if isinstance(value, bool) else str(value))
        )
        if t == "picklist" and f.picklist is not None and f.restricted and text not in f.picklist:
            raise SalesforceError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{f.name}: bad value for restricted picklist field: {text}",
                fields=[f.name],
            )
        if t == "email" and text and not _EMAIL.match(text):
            raise SalesforceError(
                "INVALID_EMAIL_ADDRESS", f"{f.name}: invalid email address: {text}", fields=[f.name]
            )
        if len(text) > f.length:
            raise SalesforceError(
                "STRING_TOO_LONG",
                f"{f.name}: data value too large: {text[:40]} (max length={f.length})",
                fields=[f.name],
            )
        return text

    def _coerce_reference(self, f: Field, value: Any, *, system: bool = False) -> str:
        if not isinstance(value, str) or not ids.is_valid(value):
            raise SalesforceError(
                "MALFORMED_ID",
                f"{_label(f)}: id value of incorrect type: {value}",
                fields=[f.name],
            )
        norm = ids.to18(value)
        target = self.schema.by_prefix(norm[:3])
        # The platform's own writes may point where the reference's target list is silent
        # (e.g. an Invoice of a FulfillmentOrder); client writes must match it.
        if target is None or (not system and target.name not in f.references):
            raise SalesforceError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{_label(f)}: id value of incorrect type: {value}",
                fields=[f.name],
            )
        if self.store.get(target.name, norm) is None:
            raise SalesforceError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields=[f.name]
            )
        return norm

    @staticmethod
    def _deserialize_error(kind: str, value: Any) -> SalesforceError:
        token = (
            "VALUE_STRING"
            if isinstance(value, str)
            else (
                "VALUE_TRUE"
                if value is True
                else "VALUE_FALSE"
                if value is False
                else "START_OBJECT"
                if isinstance(value, dict)
                else "START_ARRAY"
                if isinstance(value, list)
                else "VALUE_NUMBER_INT"
            )
        )
        return SalesforceError(
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {kind} from {token} value {value} or request may "
            "be missing a required field",
        )

    @staticmethod
    def _check_required(sobject: SObjectType, record: Record) -> None:
        missing = [
            f.name
            for f in sobject.fields.values()
            if f.required and record.get(f.name) in (None, "")
        ]
        if missing:
            raise SalesforceError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                fields=missing,
            )

    def matching(self, sobject: SObjectType, f: Field, value: str) -> list[Record]:
        """Records whose *f* equals *value* the way Salesforce matches unique and external-id
        values: exactly for a case-sensitive field, ignoring case otherwise."""
        # Through the case-folded index: only records whose value matches are visited.
        found = self.store.where_folded(sobject.name, f.name, value)
        if f.case_sensitive:
            found = [r for r in found if r.get(f.name) == value]
        return found

    def _check_unique(self, sobject: SObjectType, record: Record) -> None:
        for f in sobject.fields.values():
            value = record.get(f.name)
            if not f.unique or value in (None, ""):
                continue
            for other in self.matching(sobject, f, str(value)):
                if other["Id"] != record["Id"]:
                    raise SalesforceError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{other['Id']}",
                        fields=[],
                    )

    # --- built-in platform rules ----------------------------------------------------------

    def on_before(self, type_name: str, hook: Hook) -> None:
        """Register a rule that runs before a record of *type_name* is written."""
        self.before.setdefault(type_name, []).append(hook)

    def on_after(self, type_name: str, hook: Hook) -> None:
        """Register a trigger that runs after a record of *type_name* is written."""
        self.after.setdefault(type_name, []).append(hook)

    def _register_builtin_rules(self) -> None:
        self.on_before("Account", _account_rules)
        self.on_before("Contact", _full_name)
        self.on_before("PricebookEntry", _pricebook_entry_rules)
        self.on_before("CardPaymentMethod", _card_rules)


def _full_name(dml: Dml, type_name: str, record: Record, old: Record | None) -> None:
    record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)


def _account_rules(dml: Dml, type_name: str, record: Record, old: Record | None) -> None:
    # Person accounts: created with LastName instead of Name; Name is derived. Without the
    # feature the person fields do not exist (INVALID_FIELD before this rule runs).
    person_accounts = dml.schema.get("Account").field("LastName") is not None  # type: ignore[union-attr]
    is_person = person_accounts and (
        old["IsPersonAccount"] if old else bool(record.get("LastName"))
    )
    if is_person:
        if old is None and record.get("Name"):
            raise SalesforceError(
                "INVALID_FIELD",
                "Name: a person account's name comes from FirstName and LastName",
                fields=["Name"],
            )
        if not record.get("LastName"):
            raise SalesforceError(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LastName]",
                fields=["LastName"],
            )
        record["IsPersonAccount"] = True
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record["LastName"]) if p)
        return
    used = [f for f in _PERSON_FIELDS if record.get(f) not in (None, "")] if person_accounts else []
    if used:
        raise SalesforceError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Business Account may not use Person Account field {used[0]}",
            fields=used,
        )
    record["IsPersonAccount"] = False
    if not record.get("Name"):
        raise SalesforceError(
            "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", fields=["Name"]
        )


def _pricebook_entry_rules(dml: Dml, type_name: str, record: Record, old: Record | None) -> None:
    store = dml.store
    book = store.get("Pricebook2", record["Pricebook2Id"] or "")
    product = store.get("Product2", record["Product2Id"] or "")
    if book is None or product is None:
        return
    record["Name"] = product["Name"]
    record["ProductCode"] = product.get("ProductCode")
    if old is not None:
        return
    entries = store.where("PricebookEntry", Product2Id=product["Id"])
    if any(e["Pricebook2Id"] == book["Id"] for e in entries):
        raise SalesforceError(
            "DUPLICATE_VALUE",
            "This price definition already exists in this price book",
            fields=[],
        )
    if not book["IsStandard"]:
        standard = {b["Id"] for b in store.where("Pricebook2", IsStandard=True)}
        if not any(e["Pricebook2Id"] in standard for e in entries):
            raise SalesforceError(
                "STANDARD_PRICE_NOT_DEFINED",
                "Before creating a custom price, create a standard price.",
                fields=[],
            )


def _card_rules(dml: Dml, type_name: str, record: Record, old: Record | None) -> None:
    number = record.get("InputCardNumber")
    if number:
        digits = re.sub(r"\D", "", number)
        last_four = digits[-4:] if digits else number[-4:]
        record["CardLastFour"] = last_four
        record["DisplayCardNumber"] = "************" + last_four
        # Salesforce never stores the full card number; only the masked form remains.
        record["InputCardNumber"] = None
