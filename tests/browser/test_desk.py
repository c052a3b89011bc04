"""The writer's desk in a browser: drafts, preview, scheduling, errors beside their fields."""

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect
from test_pages import axe_violations


def test_write_a_draft_preview_and_schedule_it(page, flows):
    flows.sign_up(page)
    title = flows.unique_name("Desk ")
    page.get_by_role("link", name="New", exact=True).click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Body").fill("A **draft** for later.")
    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    expect(page.get_by_role("alert")).to_have_text("Draft saved.")
    post_path = page.url.split("//", 1)[1].split("/", 1)[1]

    # The Drafts page, from the header, lists it.
    page.get_by_role("link", name="Drafts", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Drafts")
    expect(page.get_by_role("link", name=title, exact=True)).to_be_visible()
    assert axe_violations(page) == []

    # Preview: the post as readers will see it, above the form that keeps what was typed.
    page.get_by_role("link", name=f"Edit “{title}”").click()
    page.get_by_label("Body").fill("Now with *more* words.")
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("region", name="Preview")
    expect(preview.locator("article.post-detail h1")).to_have_text(title)
    expect(preview.locator(".body em")).to_have_text("more")
    expect(page.get_by_label("Body")).to_have_value("Now with *more* words.")
    assert axe_violations(page) == []

    # Scheduled an hour ahead: the writer is told when, and readers see nothing yet.
    later = datetime.now(UTC) + timedelta(hours=1)
    page.get_by_label("Publish at").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(f"Scheduled for {later:%Y-%m-%d %H:%M} UTC.")
    page.goto("/drafts")
    expect(page.locator(".drafts")).to_contain_text("Scheduled for")
    visitor = page.context.browser.new_context(base_url=page.url.split("/drafts")[0])
    response = visitor.new_page().goto(f"/{post_path}")
    assert response.status == 404
    visitor.close()


def test_an_error_is_announced_beside_its_field(page, flows):
    flows.sign_up(page)
    page.goto("/create")
    page.get_by_label("Title").evaluate("input => input.removeAttribute('required')")
    page.get_by_label("Title").fill("   ")
    page.get_by_role("button", name="Publish", exact=True).click()
    title = page.get_by_label("Title")
    # The field is invalid, described by its message, and has the focus.
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(title).to_have_accessible_description("Title is required.")
    expect(title).to_be_focused()
    expect(page.locator("#title-error")).to_have_text("Title is required.")
    assert axe_violations(page) == []
