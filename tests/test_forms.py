import pytest

from flaskr.forms import BODY_MAX, COMMENT_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX, FormError, text_field

FORM = "application/x-www-form-urlencoded"


def test_limits_match_the_spec():
    assert (TITLE_MAX, BODY_MAX, COMMENT_MAX, TAGS_MAX, TAG_MAX) == (200, 100_000, 5_000, 10, 32)


@pytest.mark.parametrize(
    ("body", "value"),
    (
        (b"f=plain+text", "plain text"),
        (b"f=caf%C3%A9", "café"),
        ("f=café".encode(), "café"),
        (b"f=%25FF", "%FF"),
        (b"f=a%26b%3Dc&g=x", "a&b=c"),
        (b"g=x", ""),
        (b"f=", ""),
        (b"f=%F0%9F%90%8D", "\U0001f40d"),
    ),
)
def test_text_field_reads_url_encoded_text(app, body, value):
    with app.test_request_context(method="POST", data=body, content_type=FORM):
        assert text_field("f", "Field", 10) == value


@pytest.mark.parametrize(
    ("body", "message"),
    (
        (b"f=%FF%FE", "Field must be valid UTF-8 text."),
        (b"f=\xff\xfe", "Field must be valid UTF-8 text."),
        (b"f=%C3", "Field must be valid UTF-8 text."),
        (b"f=%ED%A0%80", "Field must be valid UTF-8 text."),  # an encoded surrogate
        (b"f=%EF%BF%BD", "Field must be valid UTF-8 text."),  # U+FFFD itself
        (b"f=a%00b", "Field must not contain NUL characters."),
        (b"f=", "Field is required."),
        (b"f=12345678901", "Field must be at most 10 characters."),
    ),
)
def test_text_field_refuses(app, body, message):
    with app.test_request_context(method="POST", data=body, content_type=FORM):
        with pytest.raises(FormError, match=message):
            text_field("f", "Field", 10, "Field is required.")


def test_text_field_without_a_limit(app):
    with app.test_request_context(method="POST", data={"f": "x" * 5000}):
        assert len(text_field("f", "Field", None)) == 5000


def test_multipart_invalid_utf8_is_refused(app):
    body = b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\n\xff\xfe\r\n--B--\r\n'
    with app.test_request_context(
        method="POST", data=body, content_type="multipart/form-data; boundary=B"
    ):
        with pytest.raises(FormError, match="valid UTF-8"):
            text_field("f", "Field", 10)


def test_other_bodies_are_not_form_fields(app):
    with app.test_request_context(method="POST", json={"f": "x"}):
        assert text_field("f", "Field", 10) == ""
