"""Safety in the browser: hostile posts, comments, tags, searches and Markdown never run
script; other origins cannot post for a user; the browser enforces the site's CSP."""

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><iframe src=javascript:alert(1)></iframe>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
]

# Markdown that would run script if the renderer let raw HTML or unsafe link schemes through.
HOSTILE_MARKDOWN = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](vbscript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "![x](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>x</details>",
    # A control: a safe link still becomes one.
    "[a safe link](https://example.org/)",
]

# Elements a successful injection would add inside a post, a comment or a form.
INJECTED = "script, img, svg, iframe, details, object, embed"
# Link targets that are safe to follow: this site, or the web.
SAFE_HREF = re.compile(r"^(https?://|/|#)")


def record_dialogs(page):
    """Collect the message of every dialog the page opens (and close it)."""
    dialogs = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def hostile_page(new_page, flows):
    """A logged-in page without the Content-Security-Policy, so that escaping alone is what
    is tested; return it, the user's name and the list of dialogs it opens."""
    page = new_page(bypass_csp=True)
    dialogs = record_dialogs(page)
    username = flows.sign_up(page)
    return page, username, dialogs


def expect_list_shows_text(page, path, posts):
    """The list at path, page after page, shows exactly these posts ({title: body}) as text."""
    seen = {}
    number = 1
    while True:
        page.goto(f"{path}{'&' if '?' in path else '?'}page={number}")
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)
        for card in page.locator("article.post").all():
            seen[card.locator("h2").text_content()] = card.locator(".body").text_content().strip()
        if page.locator('a[rel="next"]').count() == 0:
            break
        number += 1
    assert seen == posts, path


def test_hostile_titles_and_bodies_never_run_script(new_page, flows):
    page, username, dialogs = hostile_page(new_page, flows)
    marker = flows.unique_name("x")
    ids = {}
    for payload in HOSTILE:
        title = f"{marker} {payload}"
        ids[payload] = flows.create_post(page, title, f"{payload}\n{payload}", tags=marker)
        # The index shows the new post first.
        card = page.locator("article.post").first
        expect(card.locator("h2")).to_have_text(title)
        expect(card.locator(".body")).to_have_text(f"{payload}\n{payload}")
        expect(card.locator(INJECTED)).to_have_count(0)

    for payload, post_id in ids.items():
        page.goto(f"/{post_id}/update")
        expect(page.get_by_label("Title")).to_have_value(f"{marker} {payload}")
        expect(page.get_by_label("Body")).to_have_value(f"{payload}\n{payload}")
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)
        assert page.title() == f'Edit "{marker} {payload}" - Flaskr'

        page.goto(f"/{post_id}")
        post = page.locator("article.post-detail")
        expect(post.get_by_role("heading", level=1)).to_have_text(f"{marker} {payload}")
        expect(post.locator(".body")).to_have_text(f"{payload}\n{payload}")
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)
        assert page.title() == f"{marker} {payload} - Flaskr"

    # The lists that show these posts: their tag's page, a search, their author's page.
    posts = {f"{marker} {payload}": f"{payload}\n{payload}" for payload in HOSTILE}
    for path in (f"/tag/{marker}", f"/user/{username}"):
        expect_list_shows_text(page, path, posts)
    # Search results show a snippet: the same text on one line.
    snippets = {f"{marker} {payload}": f"{payload} {payload}" for payload in HOSTILE}
    expect_list_shows_text(page, f"/search?q={marker}", snippets)

    # A failed save re-renders the submitted text: escaped there too.
    page.goto("/create")
    page.get_by_label("Title").evaluate("input => input.removeAttribute('required')")
    page.get_by_label("Body").fill(HOSTILE[0])
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Title is required.")
    expect(page.get_by_label("Body")).to_have_value(HOSTILE[0])

    assert dialogs == []


def test_hostile_comments_never_run_script(new_page, flows):
    page, username, dialogs = hostile_page(new_page, flows)
    post_id = flows.create_post(page, flows.unique_name("Commented "))
    page.goto(f"/{post_id}")
    for payload in HOSTILE:
        page.get_by_label("Add a comment").fill(f"{payload}\n{payload}")
        page.get_by_role("button", name="Comment", exact=True).click()
        expect(page).to_have_url(re.compile(rf"/{post_id}/[^/#]+#comment-\d+$"))

    page.goto(f"/{post_id}")
    comments = page.locator("article.comment")
    expect(comments.locator(".comment-body")).to_have_text(
        [f"{payload}\n{payload}" for payload in HOSTILE]
    )
    expect(comments.first).to_contain_text(username)
    expect(page.locator(f"main {INJECTED}")).to_have_count(0)
    # The comment count on the index is the only trace of them there.
    page.goto("/")
    expect(page.locator(f"main {INJECTED}")).to_have_count(0)
    assert dialogs == []


def test_hostile_tags_and_searches_are_shown_as_text(new_page, flows):
    page, _, dialogs = hostile_page(new_page, flows)
    for payload in HOSTILE:
        # Not a tag anyone may use: refused, and the refusal quotes it as text.
        page.goto("/create")
        page.get_by_label("Title").fill("Tagged")
        page.get_by_label("Tags").fill(payload)
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text(f"'{payload.lower()[:30]}")
        expect(page.get_by_label("Tags")).to_have_value(payload)
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)

        # A tag page for it, and a search for it from that page's header.
        response = page.goto(f"/tag/{payload}")
        assert response.status == 404
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)
        search_box = page.get_by_role("search").first.get_by_label("Search posts")
        search_box.fill(payload)
        search_box.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Search: {payload}")
        expect(page.get_by_label("Words to find in titles and bodies")).to_have_value(payload)
        expect(page.locator(f"main {INJECTED}")).to_have_count(0)
        assert page.title() == f"Search: {payload} - Flaskr"
    assert dialogs == []


def test_hostile_markdown_never_makes_a_script_link_or_element(new_page, flows):
    page, _, dialogs = hostile_page(new_page, flows)
    body = "\n\n".join(HOSTILE_MARKDOWN)
    post_id = flows.create_post(page, flows.unique_name("Markdown "), body)
    page.goto(f"/{post_id}")
    rendered = page.locator("article.post-detail .body")
    expect(rendered.locator(INJECTED)).to_have_count(0)
    # Raw HTML is shown as the text it is.
    expect(rendered).to_contain_text("<img src=x onerror=alert(1)>")
    expect(rendered).to_contain_text('<a href="javascript:alert(1)">x</a>')
    expect(rendered).to_contain_text("<details open ontoggle=alert(1)>x</details>")

    # Of all the hostile links only the safe control became a link.
    links = rendered.locator("a")
    hrefs = [link.get_attribute("href") or "" for link in links.all()]
    assert hrefs == ["https://example.org/"]
    assert all(SAFE_HREF.match(href) for href in hrefs)
    # Clicking it leaves for that page and runs nothing (the page is stubbed: no network).
    page.route("https://example.org/**", lambda route: route.fulfill(body="elsewhere"))
    links.first.click()
    page.wait_for_url("https://example.org/")
    assert dialogs == []


FORGED_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<form method="post" action="{action}">
  <input name="title" value="{title}">
  <input name="body" value="Posted by another site.">
</form>
<script>document.forms[0].submit();</script>
</body></html>
"""


class ForgedFormHandler(BaseHTTPRequestHandler):
    """Serves a page that submits a post to Flaskr as soon as it loads."""

    def do_GET(self):
        title = parse_qs(urlsplit(self.path).query).get("title", ["Forged"])[0]
        page = FORGED_FORM.format(
            action=html.escape(self.server.target), title=html.escape(title)
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def attacker(server):
    """Forged-form pages on another site (127.0.0.2) and on this site's other port."""
    origins = {}
    running = []
    for name, host in (("cross-site", "127.0.0.2"), ("same-site", "127.0.0.1")):
        httpd = ThreadingHTTPServer((host, 0), ForgedFormHandler)
        httpd.target = f"{server.url}/create"
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1})
        thread.start()
        running.append((httpd, thread))
        origins[name] = f"http://{host}:{httpd.server_address[1]}"
    yield origins
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# cross-site: the SameSite=Lax session cookie is not sent. same-site (127.0.0.1, another
# port): the cookie IS sent, so only the Sec-Fetch-Site / Origin check stops the post.
@pytest.mark.parametrize("origin", ["cross-site", "same-site"])
def test_form_on_another_origin_cannot_post(page, flows, server, attacker, origin):
    flows.sign_up(page)
    title = flows.unique_name("Forged ")

    def is_forged_post(response):
        return response.request.method == "POST" and response.url == f"{server.url}/create"

    with page.expect_response(is_forged_post) as forged:
        page.goto(f"{attacker[origin]}/?title={title}", wait_until="commit")
    created = server.count_posts(title)
    assert (forged.value.status, created) == (403, 0), (
        f"the forged POST got {forged.value.status} and created {created} post(s)"
    )


# What SPEC §5 asks of every page's Content-Security-Policy.
REQUIRED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def test_the_browser_enforces_the_sites_content_security_policy(page):
    response = page.goto("/")
    policy = response.header_value("content-security-policy") or ""
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip()
    )
    assert {name: directives.get(name) for name in REQUIRED_CSP} == REQUIRED_CSP
    assert response.header_value("x-content-type-options") == "nosniff"

    # An inline script that got into the page anyway is not run, and the browser says why.
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        ran = page.evaluate(
            """() => {
                window.injected = false;
                const script = document.createElement("script");
                script.textContent = "window.injected = true";
                document.body.append(script);
                return window.injected;
            }"""
        )
    assert ran is False
