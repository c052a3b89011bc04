"""End to end in Chromium: register, log in, write with Markdown, tags and an image, edit,
like, comment, search, follow the feed, delete (confirmed), log out."""

import re
from urllib.parse import urljoin

import feedparser
from playwright.sync_api import expect

from flaskr.blog import slugify

DELETE_QUESTION = "Delete this post? This cannot be undone."
DELETE_COMMENT_QUESTION = "Delete this comment?"
UPLOADED_IMAGE = re.compile(r"^/uploads/[0-9a-f]{32}\.png$")
# The shown image's natural width: 0 when the browser could not load or decode it.
LOADED_WIDTH = """image => new Promise(resolve => {
    const done = () => resolve(image.naturalWidth);
    image.complete ? done() : (image.onload = image.onerror = done);
})"""


def answer_dialogs(page, answers):
    """Answer the page's next dialogs in turn (True accepts); return what they asked."""
    asked = []
    answers = list(answers)

    def on_dialog(dialog):
        asked.append((dialog.type, dialog.message))
        dialog.accept() if answers.pop(0) else dialog.dismiss()

    page.on("dialog", on_dialog)
    return asked


def test_register_log_in_and_out(page, flows):
    username = flows.unique_name()
    page.goto("/")
    page.get_by_role("link", name="Register").click()
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(flows.password)
    page.get_by_role("button", name="Register").click()

    expect(page).to_have_url(re.compile(r"/auth/login$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(flows.password)
    page.get_by_role("button", name="Log In").click()

    expect(page).to_have_url(re.compile(r"/$"))
    nav = page.get_by_role("navigation", name="Site")
    expect(nav).to_contain_text(username)
    expect(nav.get_by_role("button", name="Log Out")).to_be_visible()
    expect(page.get_by_role("link", name="New")).to_be_visible()

    nav.get_by_role("button", name="Log Out").click()
    expect(nav.get_by_role("link", name="Log In")).to_be_visible()
    expect(nav).not_to_contain_text(username)
    expect(page.get_by_role("link", name="New")).to_have_count(0)


def test_logout_link_from_elsewhere_asks_first(page, flows):
    username = flows.sign_up(page)
    # Typed, or followed from another site: not this site's own page, so it only asks.
    page.goto("/auth/logout")
    expect(page.get_by_role("heading", name="Log Out")).to_be_visible()
    nav = page.get_by_role("navigation", name="Site")
    expect(nav).to_contain_text(username)

    page.get_by_role("main").get_by_role("button", name="Log Out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(nav.get_by_role("link", name="Log In")).to_be_visible()
    expect(nav).not_to_contain_text(username)


def test_wrong_password_is_refused(page, flows):
    username = flows.unique_name()
    flows.register(page, username)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log In").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect password.")
    expect(page.get_by_role("button", name="Log Out")).to_have_count(0)


def test_create_edit_and_delete_a_post(page, flows, server):
    username = flows.sign_up(page)
    title = flows.unique_name("Post ")
    page.get_by_role("link", name="New").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Body").fill("First line\nsecond line")
    page.get_by_role("button", name="Publish", exact=True).click()

    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    expect(page.get_by_role("alert")).to_have_text("Published.")
    page.goto("/")
    card = page.locator("article.post").filter(has_text=title)
    expect(card).to_contain_text(re.compile(rf"by {username} on \d{{4}}-\d{{2}}-\d{{2}}"))
    expect(card).to_contain_text("First line")

    card.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(re.compile(r"/\d+/update$"))
    expect(page.get_by_label("Title")).to_have_value(title)
    page.get_by_label("Title").fill(f"{title} (edited)")
    page.get_by_label("Body").fill("Changed body")
    page.get_by_role("button", name="Update", exact=True).click()

    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    page.goto("/")
    card = page.locator("article.post").filter(has_text=f"{title} (edited)")
    expect(card).to_contain_text("Changed body")
    assert server.count_posts(f"{title} (edited)") == 1

    # Dismissing the confirm dialog keeps the post.
    dialogs = []

    def answer(dialog, accept):
        dialogs.append((dialog.type, dialog.message))
        dialog.accept() if accept else dialog.dismiss()

    card.get_by_role("link", name="Edit", exact=True).click()
    edit_url = page.url
    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(edit_url)
    assert dialogs == [("confirm", DELETE_QUESTION)]
    assert server.count_posts(f"{title} (edited)") == 1

    # Accepting it deletes the post.
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/$"))
    assert dialogs[1:] == [("confirm", DELETE_QUESTION)]
    expect(page.locator("article.post").filter(has_text=title)).to_have_count(0)
    assert server.count_posts(f"{title} (edited)") == 0


def test_only_the_author_sees_edit(new_page, flows):
    author_page = new_page()
    flows.sign_up(author_page)
    title = flows.unique_name("Mine ")
    flows.create_post(author_page, title, "body")

    reader_page = new_page()
    flows.sign_up(reader_page)
    reader_page.goto("/")
    card = reader_page.locator("article.post").filter(has_text=title)
    expect(card).to_have_count(1)
    expect(card.get_by_role("link", name="Edit")).to_have_count(0)


def test_visitor_who_writes_is_sent_to_log_in_and_back(page, flows):
    username = flows.unique_name()
    flows.register(page, username)
    page.goto("/create")
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(flows.password)
    page.get_by_role("button", name="Log In").click()
    expect(page).to_have_url(re.compile(r"/create$"))
    expect(page.get_by_role("heading", name="New Post")).to_be_visible()


def test_a_post_with_markdown_tags_and_an_image_from_writing_to_deleting(page, flows, server):
    username = flows.unique_name()
    flows.register(page, username)
    flows.log_in(page, username)
    title = flows.unique_name("Owl trip ")
    # A tag no other test uses, so that its page lists this post alone.
    owls = flows.unique_name("owls")
    page.get_by_role("link", name="New", exact=True).click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Body").fill("We saw **bold** owls.\n\n- a barn owl\n- a *little* owl")
    page.get_by_label("Tags").fill(f"travel, {owls.capitalize()}")
    page.get_by_label("Image", exact=True).set_input_files(
        flows.png_file("owls.png", size=(64, 48))
    )
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    page.goto("/")

    # The title on the index leads to the post's own page.
    page.locator("article.post").first.get_by_role("link", name=title, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/\d+/{slugify(title)}$"))
    post_id = int(page.url.rsplit("/", 2)[1])
    post = page.locator("article.post-detail")
    expect(post.get_by_role("heading", level=1)).to_have_text(title)
    expect(post).to_contain_text(re.compile(rf"by {username} on \d{{4}}-\d{{2}}-\d{{2}}"))
    body = post.locator(".body")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("em")).to_have_text("little")
    expect(body.locator("li")).to_have_text(["a barn owl", "a little owl"])
    expect(body).not_to_contain_text("**")

    image = post.locator("img.post-image")
    image_src = image.get_attribute("src")
    assert UPLOADED_IMAGE.match(image_src), image_src
    assert image.evaluate(LOADED_WIDTH) == 64
    expect(image).to_have_attribute("alt", "")

    # Tags are stored in lower case and each links to its page, which lists the post.
    tags = post.get_by_role("list", name="Tags").get_by_role("link")
    expect(tags).to_have_text([owls, "travel"])
    expect(tags.first).to_have_attribute("href", f"/tag/{owls}")
    expect(tags.last).to_have_attribute("href", "/tag/travel")
    tags.first.click()
    expect(page).to_have_url(re.compile(rf"/tag/{owls}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Posts tagged “{owls}”")
    expect(page.locator("article.post")).to_have_count(1)
    expect(page.get_by_role("link", name=title, exact=True)).to_have_attribute(
        "href", f"/{post_id}/{slugify(title)}"
    )

    # Edit: a new title, and the image removed with the checkbox.
    page.goto(f"/{post_id}")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/{post_id}/update$"))
    expect(page.get_by_label("Tags")).to_have_value(f"{owls}, travel")
    page.get_by_label("Title").fill(f"{title} (edited)")
    page.get_by_label("Remove this image").check()
    page.get_by_role("button", name="Update", exact=True).click()
    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    page.goto("/")
    page.get_by_role("link", name=f"{title} (edited)", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/{post_id}/{slugify(title + ' (edited)')}$"))
    expect(post.get_by_role("heading", level=1)).to_have_text(f"{title} (edited)")
    expect(post.locator("img")).to_have_count(0)
    expect(post.get_by_role("list", name="Tags").get_by_role("link")).to_have_count(2)
    assert page.request.get(image_src).status == 404

    # Delete, through the confirm dialog.
    asked = answer_dialogs(page, [True])
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/$"))
    assert asked == [("confirm", DELETE_QUESTION)]
    assert server.count_posts(f"{title} (edited)") == 0
    expect(page.get_by_role("link", name=f"{title} (edited)")).to_have_count(0)
    assert page.goto(f"/{post_id}").status == 404
    # A tag no post carries any more has no page.
    assert page.goto(f"/tag/{owls}").status == 404


def test_like_and_take_the_like_back(page, flows):
    flows.sign_up(page)
    post_id = flows.create_post(page, flows.unique_name("Likeable "))
    page.goto(f"/{post_id}")
    likes = page.locator("#likes")
    button = likes.get_by_role("button", name="Like", exact=True)
    expect(likes).to_contain_text("0 likes")
    expect(button).to_have_attribute("aria-pressed", "false")

    button.click()
    expect(page).to_have_url(re.compile(rf"/{post_id}/[^/#]+#likes$"))
    expect(likes).to_contain_text("1 like")
    expect(likes).not_to_contain_text("1 likes")
    expect(button).to_have_attribute("aria-pressed", "true")

    button.click()
    expect(likes).to_contain_text("0 likes")
    expect(button).to_have_attribute("aria-pressed", "false")


def test_a_reader_comments_and_the_author_deletes_the_comment(new_page, flows):
    author = new_page()
    flows.sign_up(author)
    post_id = flows.create_post(author, flows.unique_name("Discuss "))

    reader = new_page()
    reader_name = flows.sign_up(reader)
    reader.goto(f"/{post_id}")
    expect(reader.locator("#comments")).to_contain_text("No comments yet.")
    reader.get_by_label("Add a comment").fill("Nice owls!\nSecond line.")
    reader.get_by_role("button", name="Comment", exact=True).click()
    expect(reader).to_have_url(re.compile(rf"/{post_id}/[^/#]+#comment-\d+$"))
    comment = reader.locator("article.comment")
    expect(comment).to_have_count(1)
    expect(comment).to_contain_text(reader_name)
    expect(comment.locator(".comment-body")).to_have_text("Nice owls!\nSecond line.")

    # The post's author may delete it; dismissing the question keeps it.
    author.goto(f"/{post_id}")
    comment = author.locator("article.comment")
    asked = answer_dialogs(author, [False, True])
    comment.get_by_role("button", name="Delete comment").click()
    expect(comment).to_have_count(1)
    comment.get_by_role("button", name="Delete comment").click()
    expect(author).to_have_url(re.compile(rf"/{post_id}/[^/#]+#comments$"))
    expect(comment).to_have_count(0)
    expect(author.locator("#comments")).to_contain_text("No comments yet.")
    assert asked == [("confirm", DELETE_COMMENT_QUESTION)] * 2


def test_search_from_the_header(page, flows):
    flows.sign_up(page)
    word = flows.unique_name("strix")
    title = flows.unique_name("Found ")
    post_id = flows.create_post(page, title, f"A post about the {word} owl.")

    search_box = page.get_by_role("search").first.get_by_label("Search posts")
    search_box.fill(word)
    search_box.press("Enter")
    expect(page).to_have_url(re.compile(rf"/search\?q={word}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Search: {word}")
    results = page.locator("article.post")
    expect(results).to_have_count(1)
    expect(results.get_by_role("link", name=title, exact=True)).to_have_attribute(
        "href", f"/{post_id}/{slugify(title)}"
    )

    # Text that means something to the full-text engine is only text (typed in the
    # search page's own box, its one search box).
    expect(page.get_by_role("search")).to_have_count(1)
    for query in ('"NEAR(', "title:* OR", "a AND NOT (b"):
        page.get_by_role("search").get_by_label("Words to find in titles and bodies").fill(query)
        with page.expect_navigation() as navigation:
            page.get_by_label("Words to find in titles and bodies").press("Enter")
        assert navigation.value.status == 200, query
        expect(page.get_by_label("Words to find in titles and bodies")).to_have_value(query)


def test_follow_the_feed_link(page, flows, server):
    flows.sign_up(page)
    title = flows.unique_name("In the feed ")
    post_id = flows.create_post(page, title, "Read me **in a feed reader**.")
    page.goto(f"/{post_id}")
    for kind in ("atom", "rss"):
        link = page.locator(f'head link[rel="alternate"][type="application/{kind}+xml"]')
        feed_url = urljoin(page.url, link.get_attribute("href"))
        response = page.request.get(feed_url)
        assert response.ok, feed_url
        feed = feedparser.parse(response.body())
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == ("atom10" if kind == "atom" else "rss20")
        entry = feed.entries[0]
        assert entry.title == title
        assert entry.link == f"{server.url}/{post_id}/{slugify(title)}"
        assert entry.id == f"{server.url}/{post_id}"
        assert "<strong>in a feed reader</strong>" in entry.description
