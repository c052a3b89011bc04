"""End to end in Chromium: register, log in, write, edit, delete (confirmed), log out."""

import re

from playwright.sync_api import expect

DELETE_QUESTION = "Delete this post? This cannot be undone."


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
    expect(nav.get_by_role("link", name="Log Out")).to_be_visible()
    expect(page.get_by_role("link", name="New")).to_be_visible()

    nav.get_by_role("link", name="Log Out").click()
    expect(nav.get_by_role("link", name="Log In")).to_be_visible()
    expect(nav).not_to_contain_text(username)
    expect(page.get_by_role("link", name="New")).to_have_count(0)


def test_wrong_password_is_refused(page, flows):
    username = flows.unique_name()
    flows.register(page, username)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log In").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect password.")
    expect(page.get_by_role("link", name="Log Out")).to_have_count(0)


def test_create_edit_and_delete_a_post(page, flows, server):
    username = flows.sign_up(page)
    title = flows.unique_name("Post ")
    page.get_by_role("link", name="New").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Body").fill("First line\nsecond line")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(r"/$"))
    card = page.locator("article.post").filter(has_text=title)
    expect(card).to_contain_text(re.compile(rf"by {username} on \d{{4}}-\d{{2}}-\d{{2}}"))
    expect(card).to_contain_text("First line")

    card.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(re.compile(r"/\d+/update$"))
    expect(page.get_by_label("Title")).to_have_value(title)
    page.get_by_label("Title").fill(f"{title} (edited)")
    page.get_by_label("Body").fill("Changed body")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(r"/$"))
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
