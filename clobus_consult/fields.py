"""Marshmallow fields that normalise what the website sends before anything is matched or stored."""
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from marshmallow import ValidationError, fields


class Email(fields.String):
    """Trimmed, lower-cased, syntax-checked (no DNS look-ups: intake must not depend on the network)."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if not value:
            return None
        try:
            checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            raise ValidationError(f"Not a valid email address: {exc}") from None
        return checked.normalized.lower()


class Phone(fields.String):
    """Any common notation in, E.164 out; national numbers read in DEFAULT_PHONE_REGION."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if not value:
            return None
        if len(value) > 40:
            raise ValidationError("Not a valid phone number.")
        try:
            number = phonenumbers.parse(value, current_app.config["DEFAULT_PHONE_REGION"])
        except phonenumbers.NumberParseException:
            raise ValidationError("Not a valid phone number.") from None
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Not a valid phone number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Inn(fields.String):
    """ИНН (9 digits, an organisation) or ПИНФЛ (14 digits, a person); spaces and dashes ignored."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        digits = value.strip().replace(" ", "").replace("-", "")
        if not digits:
            return None
        if not (digits.isascii() and digits.isdigit() and len(digits) in (9, 14)):
            raise ValidationError("INN must be 9 digits (ИНН) or 14 digits (ПИНФЛ).")
        return digits


class UUIDString(fields.UUID):
    """A UUID kept as its canonical lower-case string."""

    def _deserialize(self, value, attr, data, **kwargs):
        return str(super()._deserialize(value, attr, data, **kwargs))


class DateTime(fields.DateTime):
    """ISO 8601 in (no offset: the service TIMEZONE); naive UTC inside; ``...Z`` out."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
        try:
            return parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValidationError("Datetime out of range.") from None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat() + "Z"


class DateTimeAlias(DateTime):
    """A dump-only copy of another datetime attribute (marshmallow 4 forbids two fields on one attribute)."""

    def __init__(self, source: str, **kwargs):
        self.source = source
        super().__init__(dump_only=True, **kwargs)

    def get_value(self, obj, attr, accessor=None, default=None):
        return super().get_value(obj, self.source, accessor=accessor)


def canonical_uuid(value: str) -> str | None:
    """The canonical lower-case form of a UUID string, or None if it is not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None
