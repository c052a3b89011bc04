"""Importing a WordPress export (WXR): posts, tags, comments, authors, and what is skipped."""

from pathlib import Path

import pytest
from markup import live_markup

from flaskr import wordpress
from flaskr.wordpress import html_to_markdown, html_to_text

EXAMPLE = Path(__file__).parent / "data" / "wordpress-export.xml"

EXAMPLE_SUMMARY = f"""\
Imported 2 posts, 1 scheduled posts, 1 drafts, 3 comments, 2 new authors and 4 new tags from \
{EXAMPLE}.
Skipped:
  1 attachments
  2 comments not approved (pending, spam or trash)
  1 items of type 'wp_block'
  1 menu items
  1 pages
  1 password-protected posts
  1 pingbacks and trackbacks
  2 tags not valid here (letters, digits, ' -_.', 32 at most)
"""


def run(app, path):
    """Run import-wordpress; return (exit code, output)."""
    result = app.test_cli_runner().invoke(args=["import-wordpress", str(path)])
    return result.exit_code, result.output


def item(
    title="A post",
    body="<p>Text</p>",
    post_id="100",
    status="publish",
    kind="post",
    creator="writer",
    date="2024-05-01 10:00:00",
    extra="",
    guid=None,
):
    """One <item> of a WXR file."""
    guid = f"https://blog.example.org/?p={post_id}" if guid is None else guid
    return f"""<item><title>{title}</title><dc:creator>{creator}</dc:creator>
<guid isPermaLink="false">{guid}</guid>
<content:encoded><![CDATA[{body}]]></content:encoded>
<wp:post_id>{post_id}</wp:post_id><wp:post_date_gmt>{date}</wp:post_date_gmt>
<wp:status>{status}</wp:status><wp:post_type>{kind}</wp:post_type>
<wp:post_password></wp:post_password>{extra}</item>"""


def comment(content="Nice", approved="1", author="Reader", user_id="0", date=None, kind=""):
    """One <wp:comment> of an item."""
    date = date or "2024-05-02 10:00:00"
    return f"""<wp:comment><wp:comment_author><![CDATA[{author}]]></wp:comment_author>
<wp:comment_date_gmt>{date}</wp:comment_date_gmt>
<wp:comment_content><![CDATA[{content}]]></wp:comment_content>
<wp:comment_approved>{approved}</wp:comment_approved><wp:comment_type>{kind}</wp:comment_type>
<wp:comment_user_id>{user_id}</wp:comment_user_id></wp:comment>"""


def wxr(*items, authors="", version="1.2"):
    """A WXR document with these items."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/{version}/">
<channel><title>Blog</title><link>https://blog.example.org</link>
<wp:wxr_version>{version}</wp:wxr_version>{authors}{"".join(items)}</channel></rss>"""


@pytest.fixture
def write(tmp_path):
    """Return a function that writes text to a file and returns its path."""

    def write(text, name="export.xml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_the_example_export_imports_posts_and_reports_what_it_skipped(app, query):
    code, output = run(app, EXAMPLE)
    assert code == 0
    assert output == EXAMPLE_SUMMARY
    posts = query(
        "SELECT p.title, u.username, p.created, p.updated, p.draft FROM post p"
        " JOIN user u ON u.id = p.author_id WHERE p.id > 1 ORDER BY p.id"
    )
    assert [tuple(map(str, row)) for row in posts] == [
        ("Growing tomatoes & peppers", "rosa", "2024-03-02 09:30:00", "2024-03-05 17:00:00", "0"),
        (
            "Embeds, galleries and a few surprises",
            "tom.gardener-example.org",
            "2024-03-04 08:00:00",
            "None",
            "0",
        ),
        # A draft (no UTC time yet: its local one) and a post scheduled for its time.
        ("Plans for next year", "rosa", "2024-03-06 10:00:00", "None", "1"),
        ("Spring planting day", "tom.gardener-example.org", "2099-04-01 08:00:00", "None", "0"),
    ]
    tags = query(
        "SELECT pt.post_id, t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
        " ORDER BY pt.post_id, t.name"
    )
    assert tags == [
        (2, "how to"),
        (2, "tomatoes"),
        (2, "vegetables"),
        (3, "tomatoes"),
        (3, "vidéo tours"),
    ]
    comments = query(
        "SELECT post_id, author_id, author_name, created, body FROM comment ORDER BY id"
    )
    assert [tuple(map(str, row)) for row in comments] == [
        (
            "2",
            "None",
            "Jane Reader",
            "2024-03-03 11:00:00",
            "Lovely post! Which variety was sweetest?",
        ),
        ("2", "3", "None", "2024-03-03 12:00:00", "The Sungold, by far."),
        ("3", "None", "<script>alert('name')</script>", "2024-03-05 09:00:00", "Nice"),
    ]
    titles = [row[0] for row in query("SELECT title FROM post")]
    for skipped in ("Members only", "About"):
        assert skipped not in titles


def test_imported_drafts_and_scheduled_posts_stay_out_of_sight(app, client):
    run(app, EXAMPLE)
    for path in ("/", "/user/rosa", "/feed.atom", "/sitemap.xml", "/search?q=planting"):
        page = client.get(path).data
        assert b"Plans for next year" not in page and b"Spring planting" not in page, path
    assert b"Growing tomatoes" in client.get("/").data
    for post_id in (4, 5):
        assert client.get(f"/{post_id}", follow_redirects=True).status_code == 404


def test_bodies_become_markdown_without_live_markup(app, query):
    run(app, EXAMPLE)
    (first,), (second,) = query("SELECT body FROM post WHERE id IN (2, 3) ORDER BY id")
    # <!--more--> ends the opening paragraph and is gone.
    assert first.startswith(
        "This spring I tried **six** varieties.  \nThe cherry ones did best.\n\n## What worked\n"
    )
    assert "more" not in first
    assert "- Starting seeds indoors in *February*\n" in first
    assert "[good seed catalogue](https://seeds.example.com/catalogue?id=4&lang=en)" in first
    assert "1. Sow\n2. Prick out" in first
    # The image hosted elsewhere is a link to it; the [caption] keeps its text only.
    assert "[Ripe tomatoes](https://images.example.net/tomatoes.jpg) Ripe tomatoes in July" in first
    assert "[caption" not in first
    assert "> The best fertiliser is the gardener's shadow." in first
    assert "```\nmon: 2 l\nthu: 2 l\n\nsat: 3 l\n```" in first
    assert second.split("\n\n")[:4] == [
        "A video tour of the beds:",
        "https://video.example.com/watch?v=beds",
        "https://video.example.com/watch?v=compost",
        "<https://maps.example.com/embed?garden>",
    ]
    for gone in ("gallery", "document.title", "onclick", "onerror", "<iframe"):
        assert gone not in second
    # A relative address points into the old blog, which has it.
    assert (
        "Some click me text and [image](https://garden.example.org/x) an image and [sic] brackets."
        in second
    )


def test_imported_posts_render_without_live_markup(app, client):
    run(app, EXAMPLE)
    for path in ("/", "/2", "/3", "/user/rosa", "/tag/tomatoes", "/feed.atom", "/feed.rss"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200
        assert live_markup(response.data) == [], path
    page = client.get("/2", follow_redirects=True).data.decode()
    assert '<a href="https://images.example.net/tomatoes.jpg"' in page
    assert "<img" not in page.split('<div class="body">')[1]
    assert "Jane Reader (guest) on 2024-03-03 11:00" in page
    assert "rosa on 2024-03-03 12:00" in page
    third = client.get("/3", follow_redirects=True).data.decode()
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt; (guest)" in third
    assert "javascript:" not in third


def test_the_live_markup_check_finds_live_markup():
    page = '<p onclick="x()">a</p><script>b()</script><a href="javascript:c()">d</a><iframe>'
    assert len(live_markup(page)) == 4
    assert live_markup('<script src="/static/app.js"></script><p>&lt;script&gt;</p>') == []


def test_running_twice_imports_nothing_twice(app, snapshot):
    run(app, EXAMPLE)
    before = snapshot()
    code, output = run(app, EXAMPLE)
    assert code == 0
    assert output.startswith(
        f"Imported 0 posts, 0 comments, 0 new authors and 0 new tags from {EXAMPLE}.\n"
    )
    assert "  4 posts already imported\n" in output
    assert snapshot() == before


def test_imported_authors_cannot_log_in(app, client, auth):
    run(app, EXAMPLE)
    for password in ("!", "", "rosa", "anything at all"):
        response = auth.login("rosa", password)
        assert response.status_code != 302
    assert b"Incorrect password." in auth.login("rosa", "!").data
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_the_1_1_format_is_read_too(app, query, write):
    path = write(EXAMPLE.read_text(encoding="utf-8").replace("export/1.2/", "export/1.1/"))
    code, output = run(app, path)
    assert code == 0
    assert output.startswith("Imported 2 posts, 1 scheduled posts, 1 drafts, 3 comments")


def test_a_failure_halfway_changes_nothing(app, snapshot, monkeypatch):
    calls = []

    def failing_save_tags(db, post_id, names):
        calls.append(post_id)
        if len(calls) == 2:
            raise RuntimeError("the disk is full")

    monkeypatch.setattr(wordpress, "save_tags", failing_save_tags)
    before = snapshot()
    with pytest.raises(RuntimeError), app.app_context():
        wordpress.import_wordpress(str(EXAMPLE))
    assert calls == [2, 3]
    assert snapshot() == before


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss><channel>&b;</channel></rss>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss><channel><title>&secret;</title></channel></rss>"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is not well-formed XML (no element found, line 1)"),
        ("title,body\n", "it is not well-formed XML (syntax error, line 1)"),
        ("<html><body>hi</body></html>", "its root element is <html>, not <rss> with a <channel>"),
        ("<rss><item/></rss>", "its root element is <rss>, not <rss> with a <channel>"),
        (
            '<rss version="2.0"><channel><title>A feed</title></channel></rss>',
            "it has no wp:wxr_version (an RSS feed is not an export)",
        ),
        (
            '<rss><channel><wxr_version xmlns="urn:x">1.2</wxr_version></channel></rss>',
            "its WXR version is 1.2; 1.1 and 1.2 are supported",
        ),
        (wxr(version="1.0"), "its WXR version is 1.0; 1.1 and 1.2 are supported"),
        (BILLION_LAUGHS, "it declares a document type, which a WordPress export never does"),
        (EXTERNAL_ENTITY, "it declares a document type, which a WordPress export never does"),
        ("<rss><channel>&nbsp;</channel></rss>", "it is not well-formed XML (undefined entity"),
    ],
)
def test_a_file_that_is_not_wxr_is_refused_in_one_line(app, write, snapshot, text, reason):
    path = write(text)
    before = snapshot()
    code, output = run(app, path)
    assert code == 1
    assert output.startswith(f"Error: {path} is not a WordPress export: {reason}")
    assert output.count("\n") == 1
    assert snapshot() == before


def test_a_missing_file_is_refused_in_one_line(app, tmp_path):
    code, output = run(app, tmp_path / "nope.xml")
    assert code == 1
    assert output == f"Error: Cannot read {tmp_path / 'nope.xml'}: No such file or directory.\n"


def test_a_file_past_the_size_limit_is_refused(app, write, monkeypatch):
    monkeypatch.setattr(wordpress, "WXR_MAX_BYTES", 100)
    path = write(wxr())
    code, output = run(app, path)
    assert output == f"Error: {path} is not a WordPress export: it is larger than 100 bytes.\n"


def test_import_needs_an_initialised_database(make_app, tmp_path):
    app = make_app(DATABASE=str(tmp_path / "new.sqlite"))
    code, output = run(app, EXAMPLE)
    assert code == 1
    assert "run 'flask --app flaskr init-db' first" in output


def test_posts_are_checked_like_typed_ones(app, write, query, monkeypatch):
    monkeypatch.setattr(wordpress, "BODY_MAX", 50)
    monkeypatch.setattr(wordpress, "HTML_PER_CHARACTER", 100)
    too_many_tags = "".join(
        f'<category domain="post_tag" nicename="t{k}">T{k}</category>' for k in range(12)
    )
    path = write(
        wxr(
            item(title="t" * 250, post_id="1"),
            item(title="", post_id="2", extra=too_many_tags + too_many_tags),
            item(post_id="3", body="long " * 20),
            item(post_id="8", body="<b>x</b>" * 1000),
            item(post_id="9", body="<i>" * 1000 + "deep"),
            item(post_id="4", date="0000-00-00 00:00:00"),
            item(post_id="5", status="trash"),
            item(post_id="10", status="private"),
            item(post_id="6", kind="revision"),
            item(post_id="7", guid="", title="no guid"),
        )
    )
    code, output = run(app, path)
    assert code == 0
    assert output.splitlines() == [
        f"Imported 3 posts, 0 comments, 1 new authors and 10 new tags from {path}.",
        "  1 titles were shortened to 200 characters.",
        "Skipped:",
        "  1 items of type 'revision'",
        "  2 posts longer than 50 characters",
        "  1 posts with markup nested too deeply to convert",
        "  1 posts with status 'trash'",
        "  1 posts without a valid date",
        "  1 private posts (Flaskr has none)",
        "  2 tags beyond 10 on one post",
    ]
    titles = [row[0] for row in query("SELECT title FROM post WHERE id > 1 ORDER BY id")]
    assert titles == ["t" * 199 + "…", "Untitled", "no guid"]
    assert query("SELECT key FROM imported WHERE kind = 'post' ORDER BY row_id")[-1] == (
        "https://blog.example.org?p=7",
    )
    # The second run finds the post without a GUID by its site and id.
    assert "  3 posts already imported" in run(app, path)[1]


def test_comments_are_checked_like_typed_ones(app, write, query):
    authors = (
        "<wp:author><wp:author_id>7</wp:author_id><wp:author_login>commenter</wp:author_login>"
        "</wp:author><wp:author><wp:author_login>no-id</wp:author_login></wp:author>"
    )
    comments = [
        comment("  "),
        comment("x" * 5001),
        comment("<i></i>" * 8000),
        comment("<i>" * 2000 + "deep"),
        comment("dated", date="yesterday"),
        comment("by nobody", author="  "),
        comment("by an account", user_id="7"),
        comment("a trackback", kind="trackback"),
        comment("pending", approved="0"),
    ]
    path = write(wxr(item(extra="".join(comments)), authors=authors))
    code, output = run(app, path)
    assert output.splitlines() == [
        f"Imported 1 posts, 2 comments, 2 new authors and 0 new tags from {path}.",
        "Skipped:",
        "  2 comments longer than 5,000 characters",
        "  1 comments not approved (pending, spam or trash)",
        "  1 comments with markup nested too deeply to convert",
        "  1 comments without a valid date",
        "  1 empty comments",
        "  1 pingbacks and trackbacks",
    ]
    rows = query(
        "SELECT c.body, c.author_name, u.username, u.password FROM comment c"
        " LEFT JOIN user u ON u.id = c.author_id ORDER BY c.id"
    )
    assert rows == [
        ("by nobody", "Anonymous", None, None),
        ("by an account", None, "commenter", "!"),
    ]


def test_author_names_become_free_valid_usernames(app, write, query):
    path = write(
        wxr(
            item(post_id="1", creator="test"),
            item(post_id="2", creator="TEST"),
            item(post_id="3", creator="!!!"),
            item(post_id="4", creator=""),
            item(post_id="5", creator="a" * 40),
            item(post_id="6", creator="b" * 40),
        )
    )
    run(app, path)
    names = [row[0] for row in query("SELECT username FROM user WHERE id > 2 ORDER BY id")]
    # "test" is someone else's account here: an import never writes as an existing user.
    assert names == ["test-2", "TEST-3", "author", "wordpress", "a" * 32, "b" * 32]


def test_an_author_deleted_since_the_last_run_is_made_again(app, write, query):
    run(app, write(wxr(item(post_id="1", creator="ann"))))
    with app.app_context():
        from flaskr.db import get_db

        db = get_db()
        db.execute("DELETE FROM post WHERE author_id = 3")
        db.execute("DELETE FROM user WHERE id = 3")
    run(app, write(wxr(item(post_id="2", creator="ann")), name="second.xml"))
    assert query(
        "SELECT u.username FROM post p JOIN user u ON u.id = p.author_id WHERE p.id > 1"
    ) == [("ann",)]


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ('<iframe src="data:text/html,x"></iframe>After', "After"),
        ("<img alt='no source'>", "no source"),
        ("<img src='javascript:alert(1)' alt='js'>", "js"),
        ("<a href=' JavaScript:alert(1)'>click</a> <a href='data:text/html,x'>me</a>", "click me"),
        (
            "<a href='/about'>about</a> <a href='mailto:a@x.org'>mail</a> <a href='#n'>n</a>",
            "[about](/about) [mail](mailto:a@x.org) [n](#n)",
        ),
        (
            '<a href="https://x.org/big"><img src="https://x.org/small" alt="A"></a>',
            "[A](https://x.org/big)",
        ),
        ('<img src="https://x.org/a (1).png">', "[image](<https://x.org/a%20(1).png>)"),
        ("[code]<b>x</b>[/code]", "```\n<b>x</b>\n```"),
        ('[video width="1" mp4="https://x.org/v.mp4"][/video]', "https://x.org/v.mp4"),
        ("[playlist ids='1,2']", ""),
        ("One<!--more Keep reading-->Two", "One\n\nTwo"),
        ("<pre>a\n\nb</pre>", "```\na\n\nb\n```"),
        ("<form><input name=q><button>Go</button></form><svg><text>s</text></svg>", ""),
    ],
)
def test_html_becomes_markdown_without_markup(html, markdown):
    assert html_to_markdown(html) == markdown


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ('<a href="https://x.org">https://x.org</a>', "https://x.org"),
        ("<a>anchor</a> <em>em</em> <code>c</code>", "anchor em c"),
        ('<img src="x" alt="smile">!', "smile!"),
        ("one\n\ntwo", "one\n\ntwo"),
    ],
)
def test_comment_html_becomes_plain_text(html, text):
    assert html_to_text(html) == text


def test_relative_links_point_into_the_old_blog():
    html = "<a href='/about'>about</a> <a href='#top'>top</a> <img src='pics/a.png' alt='a'>"
    assert html_to_markdown(html, "https://old.example.org/blog/") == (
        "[about](https://old.example.org/about) [top](#top)"
        " [a](https://old.example.org/blog/pics/a.png)"
    )


def test_authors_of_two_blogs_are_two_accounts(app, write, query):
    run(app, write(wxr(item(post_id="1", creator="admin"))))
    other = wxr(item(post_id="1", creator="admin")).replace("blog.example.org", "other.example.org")
    run(app, write(other, name="other.xml"))
    rows = query("SELECT u.username FROM post p JOIN user u ON u.id = p.author_id WHERE p.id > 1")
    assert rows == [("admin",), ("admin-2",)]
