import io
import time
from urllib.parse import urlencode

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from flaskr.db import get_db
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


def assert_413_page(response, message):
    assert response.status_code == 413
    assert b'class="site-nav"' in response.data
    assert message in response.data


def test_a_huge_url_encoded_body_is_refused_at_once(app, client, count):
    # 8 MB of empty fields ("a&a&..."), within MAX_CONTENT_LENGTH: once parsed in full,
    # it took seconds of CPU and hundreds of MB before a 400.
    body = b"a&" * (4 * 1024 * 1024)
    client.post("/auth/login", data=b"a", content_type=FORM)  # templates compiled
    started = time.process_time()
    response = client.post("/auth/login", data=body, content_type=FORM)
    cpu = time.process_time() - started
    assert_413_page(response, b"The form is larger than 2,097,152 bytes.")
    assert cpu < 0.1
    assert count("login_failure") == 1  # only the warm-up's attempt


def test_a_huge_body_without_a_length_is_read_no_further_than_the_limit(app):
    body = io.BytesIO(b"a&" * (4 * 1024 * 1024))
    with app.test_request_context(
        method="POST",
        input_stream=body,
        content_type=FORM,
        environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
    ):
        with pytest.raises(RequestEntityTooLarge, match="larger than 2,097,152 bytes"):
            text_field("f", "Field", 10)
    assert body.tell() == 2 * 1024 * 1024 + 1


@pytest.mark.parametrize("content_type", (FORM, "multipart/form-data"))
def test_too_many_fields_are_refused(client, content_type):
    fields = [(f"f{k}", "x") for k in range(1001)]
    if content_type == FORM:
        response = client.post(
            "/auth/login", data="&".join(f"{k}={v}" for k, v in fields), content_type=FORM
        )
        assert_413_page(response, b"The form has more than 1,000 fields.")
    else:
        response = client.post("/auth/login", data={**dict(fields), "file": (io.BytesIO(b""), "")})
        assert_413_page(response, b"413 Request Entity Too Large")


def test_the_field_limit_counts_fields_not_bytes(app):
    body = "&".join(f"f{k}=x" for k in range(1000)).encode()
    with app.test_request_context(method="POST", data=body, content_type=FORM):
        assert text_field("f999", "Field", 10) == "x"


@pytest.mark.parametrize("character", ("\u732b", "\U0001f989"))  # CJK: 9 bytes encoded, emoji: 12
def test_the_longest_body_in_any_script_is_accepted(client, auth, app, character):
    auth.login()
    body = character * 100_000
    encoded = urlencode({"title": "long", "body": body, "tags": "a, b"})
    assert len(encoded) > 900_000
    response = client.post("/1/update", data=encoded, content_type=FORM)
    assert response.status_code == 302
    with app.app_context():
        assert get_db().execute("SELECT body FROM post WHERE id = 1").fetchone()[0] == body


def multipart(**fields):
    """Encode text fields as a multipart body (boundary B)."""
    parts = [
        f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    return b"".join(parts) + b"--B--\r\n"


def test_multipart_text_fields_share_the_memory_limit(client, auth, app):
    auth.login()
    body = "\U0001f989" * 100_000
    content_type = "multipart/form-data; boundary=B"
    ok = client.post("/1/update", data=multipart(title="t", body=body), content_type=content_type)
    assert ok.status_code == 302
    huge = multipart(title="t", body="x" * (2 * 1024 * 1024 + 1))
    response = client.post("/1/update", data=huge, content_type=content_type)
    assert_413_page(response, b"413 Request Entity Too Large")
    with app.app_context():
        assert get_db().execute("SELECT body FROM post WHERE id = 1").fetchone()[0] == body


def test_form_limits_can_be_lifted(make_app):
    app = make_app(MAX_FORM_MEMORY_SIZE=None, MAX_FORM_PARTS=None)
    body = b"&".join([b"a"] * 2000) + b"&f=" + b"x" * (3 * 1024 * 1024)
    with app.test_request_context(method="POST", data=body, content_type=FORM):
        assert len(text_field("f", "Field", None)) == 3 * 1024 * 1024
