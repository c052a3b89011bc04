"""Form input: reading submitted text fields within their limits, with errors users can act on."""

from urllib.parse import parse_qsl

from flask import Request, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

# Limits on what people may submit, in characters.
TITLE_MAX = 200
BODY_MAX = 100_000
IMAGE_ALT_MAX = 1_000
COMMENT_MAX = 5_000
TAGS_MAX = 10  # tags on one post
TAG_MAX = 32
USERNAME_MAX = 32
PASSWORD_MAX = 1024
DISPLAY_NAME_MAX = 64
BIO_MAX = 500

# What undecodable bytes become once a form is parsed (see FormRequest).
REPLACEMENT = "\ufffd"


class FormError(ValueError):
    """A submitted field cannot be used; the message says why, for the person who sent it."""


def text_field(name, label, max_length, required_message=None):
    """Return the text submitted in field `name`, or raise FormError.

    Refuses NUL characters and text that was not valid UTF-8, then, when
    required_message is given, an empty value, then text longer than max_length
    (None when the caller checks the length itself).
    """
    value = request.form.get(name, "")
    if "\x00" in value:
        raise FormError(f"{label} must not contain NUL characters.")
    if REPLACEMENT in value:
        raise FormError(f"{label} must be valid UTF-8 text.")
    if required_message is not None and not value:
        raise FormError(required_message)
    if max_length is not None and len(value) > max_length:
        raise FormError(f"{label} must be at most {max_length} characters.")
    return value


class ReplacingFormDataParser(FormDataParser):
    """Decode url-encoded forms the way multipart ones are: invalid UTF-8 becomes U+FFFD.

    Werkzeug keeps undecodable url-encoded bytes as literal "%FF" text, which cannot be
    told apart from someone typing "%FF"; a replacement character can, by text_field.
    Url-encoded forms obey the limits multipart ones do: at most max_form_memory_size
    bytes (MAX_FORM_MEMORY_SIZE) and max_form_parts fields (MAX_FORM_PARTS), else 413.
    """

    def parse(self, stream, mimetype, content_length, options=None):
        """Parse url-encoded bodies here and every other kind as werkzeug does."""
        if mimetype != "application/x-www-form-urlencoded":
            return super().parse(stream, mimetype, content_length, options)
        data = self.read_limited(stream, content_length)
        parts = data.count(b"&") + 1 if data else 0
        if self.max_form_parts is not None and parts > self.max_form_parts:
            raise RequestEntityTooLarge(f"The form has more than {self.max_form_parts:,} fields.")
        text = data.decode("utf-8", "replace")
        items = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")
        return stream, self.cls(items), self.cls()

    def read_limited(self, stream, content_length):
        """Read the body, refusing (413) one larger than the form memory limit.

        A declared length over the limit is refused before reading a byte; a body
        without one is read no further than one byte past the limit.
        """
        limit = self.max_form_memory_size
        if limit is None:
            return stream.read()
        too_large = RequestEntityTooLarge(f"The form is larger than {limit:,} bytes.")
        if content_length is not None and content_length > limit:
            raise too_large
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise too_large
        return data


class FormRequest(Request):
    """The application's request: Flask's, with forms decoded by ReplacingFormDataParser."""

    form_data_parser_class = ReplacingFormDataParser
