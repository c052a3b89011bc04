"""A corpus of hostile requests: each gets a 4xx with a clear message and writes nothing."""

import io
from dataclasses import dataclass, field

import pytest
from werkzeug.exceptions import HTTPException

FORM = "application/x-www-form-urlencoded"
CROSS_SITE = b"This form was sent from another site, so it was refused."
NOT_FOUND = b"404 Not Found"
NOT_ALLOWED = b"405 Method Not Allowed"
TOO_LARGE = b"413 Request Entity Too Large"
ADMINS_ONLY = b"Only the site&#39;s admins can use this page."
NINE_MEGABYTES = b"title=" + b"x" * (9 * 1024 * 1024)
INVALID_MULTIPART = (
    b'--B\r\nContent-Disposition: form-data; name="title"\r\n\r\n\xc0\xaf\r\n'
    b'--B\r\nContent-Disposition: form-data; name="body"\r\n\r\nx\r\n--B--\r\n'
)


@dataclass
class Case:
    method: str
    path: str
    status: int
    message: bytes
    user: str | None = "test"  # logged in as this user first, or a visitor
    data: dict | bytes | None = None
    headers: dict = field(default_factory=dict)
    content_type: str | None = None
    failures: int = 0  # failed logins for "test" recorded beforehand
    failed_login: bool = False  # a wrong username or password: exactly one failure is recorded


def case(name, *args, **kwargs):
    return pytest.param(Case(*args, **kwargs), id=name)


CASES = (
    # Forged origin or fetch metadata.
    case("sec-fetch cross-site create", "POST", "/create", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Sec-Fetch-Site": "cross-site"}),
    case("sec-fetch same-site create", "POST", "/create", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Sec-Fetch-Site": "same-site"}),
    case("origin of another site", "POST", "/create", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Origin": "https://evil.example"}),
    case("origin null", "POST", "/create", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Origin": "null"}),
    case("origin on another port", "POST", "/1/update", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Origin": "http://localhost:1"}),
    case("origin with our name as prefix", "POST", "/1/update", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Origin": "http://localhost.evil.example"}),
    case("cross-site delete", "POST", "/1/delete", 403, CROSS_SITE,
         headers={"Sec-Fetch-Site": "cross-site"}),
    case("cross-site login", "POST", "/auth/login", 403, CROSS_SITE, user=None,
         data={"username": "test", "password": "test"}, headers={"Origin": "null"}),
    case("cross-site register", "POST", "/auth/register", 403, CROSS_SITE, user=None,
         data={"username": "forged", "password": "long enough"},
         headers={"Sec-Fetch-Site": "cross-site"}),
    case("cross-site logout", "POST", "/auth/logout", 403, CROSS_SITE,
         headers={"Sec-Fetch-Site": "cross-site"}),
    case("cross-site PUT", "PUT", "/1/update", 403, CROSS_SITE,
         data={"title": "forged"}, headers={"Sec-Fetch-Site": "cross-site"}),
    case("cross-site DELETE", "DELETE", "/1/delete", 403, CROSS_SITE,
         headers={"Origin": "https://evil.example"}),
    # Oversized fields and bodies.
    case("title over 200", "POST", "/create", 400, b"Title must be at most 200 characters.",
         data={"title": "x" * 201, "body": ""}),
    case("body over 100000", "POST", "/create", 400, b"Body must be at most 100000 characters.",
         data={"title": "t", "body": "x" * 100_001}),
    case("huge title on update", "POST", "/1/update", 400,
         b"Title must be at most 200 characters.", data={"title": "x" * 10_000}),
    case("huge username at register", "POST", "/auth/register", 400,
         b"Username must be 1 to 32 letters", user=None,
         data={"username": "u" * 10_000, "password": "long enough"}),
    case("password over 1024 at register", "POST", "/auth/register", 400,
         b"Password must be at most 1024 characters.", user=None,
         data={"username": "newname", "password": "p" * 1025}),
    case("huge username at login", "POST", "/auth/login", 400,
         b"Username must be at most 1024 characters.", user=None,
         data={"username": "u" * 2000, "password": "x"}),
    case("9 MB create", "POST", "/create", 413, TOO_LARGE,
         data=NINE_MEGABYTES, content_type=FORM),
    case("9 MB login", "POST", "/auth/login", 413, TOO_LARGE, user=None,
         data=NINE_MEGABYTES, content_type=FORM),
    # NUL bytes and invalid UTF-8.
    case("NUL in title", "POST", "/create", 400, b"Title must not contain NUL characters.",
         data={"title": "a\x00b"}),
    case("NUL in body on update", "POST", "/1/update", 400,
         b"Body must not contain NUL characters.", data={"title": "t", "body": "\x00"}),
    case("invalid UTF-8 title", "POST", "/create", 400, b"Title must be valid UTF-8 text.",
         data=b"title=%FF%FE&body=x", content_type=FORM),
    case("overlong UTF-8 in body", "POST", "/1/update", 400, b"Body must be valid UTF-8 text.",
         data=b"title=t&body=%C0%AF", content_type=FORM),
    case("raw invalid bytes", "POST", "/create", 400, b"Title must be valid UTF-8 text.",
         data=b"title=\xff\xfe&body=x", content_type=FORM),
    case("invalid UTF-8 in multipart", "POST", "/create", 400,
         b"Title must be valid UTF-8 text.", data=INVALID_MULTIPART,
         content_type="multipart/form-data; boundary=B"),
    case("invalid UTF-8 username at register", "POST", "/auth/register", 400,
         b"Username must be valid UTF-8 text.", user=None,
         data=b"username=%FF&password=long+enough", content_type=FORM),
    case("NUL in password at login", "POST", "/auth/login", 400,
         b"Password must not contain NUL characters.", user=None,
         data={"username": "test", "password": "test\x00"}),
    case("NUL in username at register", "POST", "/auth/register", 400,
         b"Username must not contain NUL characters.", user=None,
         data={"username": "a\x00", "password": "long enough"}),
    # Injection-looking text.
    case("SQL in login username", "POST", "/auth/login", 400, b"Incorrect username.", user=None,
         data={"username": "' OR 1=1 --", "password": "x"}, failed_login=True),
    case("SQL comment after a real name", "POST", "/auth/login", 400, b"Incorrect username.",
         user=None, data={"username": "test' --", "password": "x"}, failed_login=True),
    case("SQL in login password", "POST", "/auth/login", 400, b"Incorrect password.", user=None,
         data={"username": "test", "password": "' OR '1'='1"}, failed_login=True),
    case("SQL in register username", "POST", "/auth/register", 400,
         b"Username must be 1 to 32 letters", user=None,
         data={"username": "x'); DROP TABLE user; --", "password": "long enough"}),
    case("script as username", "POST", "/auth/register", 400, b"Username must be 1 to 32 letters",
         user=None, data={"username": "<script>alert(1)</script>", "password": "long enough"}),
    case("header injection in username", "POST", "/auth/login", 400, b"Incorrect username.",
         user=None, data={"username": "test\r\nSet-Cookie: x=1", "password": "x"},
         failed_login=True),
    case("name taken in another case", "POST", "/auth/register", 400,
         b"User TeSt is already registered.", user=None,
         data={"username": "TeSt", "password": "long enough"}),
    case("password equal to username", "POST", "/auth/register", 400,
         b"Password must not be the same as the username.", user=None,
         data={"username": "samesame", "password": "SameSame"}),
    case("script in an empty-title post", "POST", "/create", 400, b"Title is required.",
         data={"title": "", "body": "<script>alert(1)</script>"}),
    # Out-of-range ids and pages.
    case("id past 2**63", "GET", "/9223372036854775808/update", 404, NOT_FOUND),
    case("23-digit id", "POST", "/99999999999999999999999/update", 404, NOT_FOUND,
         data={"title": "x"}),
    case("negative id", "POST", "/-1/delete", 404, NOT_FOUND),
    case("hex id", "POST", "/0x1/delete", 404, NOT_FOUND),
    case("missing post", "POST", "/2/update", 404, b"Post id 2 doesn&#39;t exist.",
         data={"title": "x"}),
    case("page 0", "GET", "/?page=0", 404, b"There is no such page.", user=None),
    case("huge page", "GET", "/?page=99999999999999999999", 404, b"There is no such page.",
         user=None),
    case("page in invalid UTF-8", "GET", "/?page=%FF", 404, b"There is no such page.", user=None),
    case("page in exponent form", "GET", "/?page=1e3", 404, b"There is no such page.",
         user=None),
    case("someone else's post", "POST", "/1/delete", 403,
         b"Only the author can change this post.", user="other"),
    # Wrong methods and paths.
    case("GET delete", "GET", "/1/delete", 405, NOT_ALLOWED),
    case("PUT create", "PUT", "/create", 405, NOT_ALLOWED, data={"title": "x"}),
    case("DELETE login", "DELETE", "/auth/login", 405, NOT_ALLOWED, user=None),
    case("PATCH update", "PATCH", "/1/update", 405, NOT_ALLOWED, data={"title": "x"}),
    case("path traversal", "GET", "/static/../../flaskr.sqlite", 404, NOT_FOUND, user=None),
    case("encoded traversal", "GET", "/static/%2e%2e/__init__.py", 404, NOT_FOUND, user=None),
    # Comments, likes, tags, images, search.
    case("comment over 5000", "POST", "/1/comment", 400,
         b"Comment must be at most 5000 characters.", data={"body": "c" * 5001}),
    case("blank comment", "POST", "/1/comment", 400, b"Comment is required.",
         data={"body": " \n\t "}),
    case("NUL in comment", "POST", "/1/comment", 400,
         b"Comment must not contain NUL characters.", data={"body": "a\x00b"}),
    case("cross-site comment", "POST", "/1/comment", 403, CROSS_SITE,
         data={"body": "forged"}, headers={"Sec-Fetch-Site": "cross-site"}),
    case("comment on huge id", "POST", "/99999999999999999999/comment", 404, NOT_FOUND,
         data={"body": "hello"}),
    case("cross-site like", "POST", "/1/like", 403, CROSS_SITE, headers={"Origin": "null"}),
    case("like a missing post", "POST", "/77/like", 404, b"Post id 77 doesn&#39;t exist."),
    case("delete a missing comment", "POST", "/comment/5/delete", 404,
         b"Comment id 5 doesn&#39;t exist."),
    case("eleven tags", "POST", "/create", 400, b"A post can have at most 10 tags.",
         data={"title": "t", "tags": ",".join(f"t{n}" for n in range(11))}),
    case("markup in a tag", "POST", "/1/update", 400, b"is not allowed",
         data={"title": "t", "tags": "<script>alert(1)</script>"}),
    case("tag over 32", "POST", "/create", 400, b"Tags must be at most 32 characters",
         data={"title": "t", "tags": "x" * 33}),
    case("text file as image", "POST", "/create", 400,
         b"The image must be a PNG, JPEG, GIF or WebP file.",
         data={"title": "t", "image": (io.BytesIO(b"<?php echo 1; ?>"), "x.png")},
         content_type="multipart/form-data"),
    case("upload name traversal", "GET", "/uploads/..%2Fsecret_key", 404, NOT_FOUND,
         user=None),
    case("search past the end", "GET", "/search?q=test&page=9", 404,
         b"There is no such page.", user=None),
    case("unknown tag page", "GET", "/tag/nothing-here", 404, b"No post is tagged", user=None),
    # Accounts: an author reaches no admin action by URL or form; one's own settings.
    case("author suspends", "POST", "/admin/users/2/suspend", 403, ADMINS_ONLY),
    case("author reinstates", "POST", "/admin/users/2/reinstate", 403, ADMINS_ONLY),
    case("author deletes a user", "POST", "/admin/users/2/delete", 403, ADMINS_ONLY),
    case("author makes a reset link", "POST", "/admin/users/2/reset-link", 403, ADMINS_ONLY),
    case("author makes an invite", "POST", "/admin/invites", 403, ADMINS_ONLY),
    case("author renames the site", "POST", "/admin/settings", 403, ADMINS_ONLY,
         data={"title": "Mine", "registration_open": "1"}),
    case("wrong current password", "POST", "/settings/password", 400, b"Incorrect password.",
         data={"current_password": "nope", "new_password": "a new secret",
               "repeat_password": "a new secret"}),
    case("cross-site password change", "POST", "/settings/password", 403, CROSS_SITE,
         data={"current_password": "test", "new_password": "a new secret",
               "repeat_password": "a new secret"}, headers={"Origin": "null"}),
    case("over-long display name", "POST", "/settings/profile", 400,
         b"Display name must be at most 64 characters.", data={"display_name": "d" * 65}),
    case("delete account, wrong password", "POST", "/settings/delete", 400,
         b"Incorrect password.", data={"delete_password": "nope", "confirm": "1"}),
    case("another user's session", "POST", "/settings/sessions/999/logout", 404,
         b"There is no such session of yours."),
    case("cross-site log out others", "POST", "/settings/sessions/logout-others", 403,
         CROSS_SITE, headers={"Sec-Fetch-Site": "cross-site"}),
    case("made-up reset link", "POST", "/account/reset/made-up", 404,
         b"This password reset link is not valid", user=None,
         data={"new_password": "a new secret", "repeat_password": "a new secret"}),
    case("invite for a taken name", "POST", "/auth/register/invite/made-up", 400,
         b"User test is already registered.", user=None,
         data={"username": "test", "password": "long enough"}),
    # Password guessing.
    case("right password while throttled", "POST", "/auth/login", 429,
         b"Too many failed logins.", user=None,
         data={"username": "test", "password": "test"}, failures=5),
)  # fmt: skip


def test_every_state_changing_route_has_a_hostile_case(app):
    """A new form or action joins the corpus: each POST route is attacked at least once."""
    adapter = app.url_map.bind("localhost")
    attacked = set()
    for param in CASES:
        (hostile,) = param.values
        try:
            rule, _ = adapter.match(hostile.path, method="POST", return_rule=True)
        except HTTPException:
            continue
        attacked.add(rule.rule)
    posted = {rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    assert posted - attacked == set()


def fresh(data):
    """The case's form data with each file rewound: every backend's run sends it whole."""
    if isinstance(data, dict):
        data = {
            name: (io.BytesIO(value[0].getvalue()), *value[1:])
            if isinstance(value, tuple)
            else value
            for name, value in data.items()
        }
    return data


@pytest.mark.parametrize("hostile", CASES)
def test_hostile_request_is_refused_and_writes_nothing(client, auth, query, snapshot, hostile):
    if hostile.user is not None:
        auth.login(hostile.user, hostile.user)
    for _ in range(hostile.failures):
        query("INSERT INTO login_failure (username, address) VALUES ('test', '127.0.0.1')")
    before = snapshot()

    response = client.open(
        hostile.path,
        method=hostile.method,
        data=fresh(hostile.data),
        headers=hostile.headers,
        content_type=hostile.content_type,
    )

    assert 400 <= response.status_code < 500
    assert response.status_code == hostile.status
    assert hostile.message in response.data
    assert b"Traceback" not in response.data
    assert b"<script>alert" not in response.data
    expected = dict(before)
    if hostile.failed_login:
        # Failures are counted per username whatever its case: kept in lower case.
        failure = (hostile.data["username"].lower(), "127.0.0.1")
        expected["login_failure"] = sorted([*before["login_failure"], failure], key=repr)
    assert snapshot() == expected
