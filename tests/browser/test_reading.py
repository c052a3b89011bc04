"""Reading: cards, a post at its readable URL, highlighting, tables, search snippets, errors."""

import re

from playwright.sync_api import expect

from flaskr.blog import slugify

LONG_BODY = (
    "The *opening* of a long story about owls, with [a link](https://example.org/).\n\n"
    + "More words about owls at night. " * 300
    + "\n\nTHE END of the story."
)
CODE_AND_TABLE = (
    "Some code:\n\n```python\ndef hoot(times):\n    return 'hoot' * times\n```\n\n"
    "| Owl | Weight (g) |\n|:----|-----------:|\n| Barn | 350 |\n| Little | 180 |\n\n"
    "- [x] seen\n- [ ] heard\n\nA claim.[^1]\n\n[^1]: Its source."
)


def console_errors(page):
    """Collect the page's console errors and script errors from now on."""
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_read_a_card_then_continue_to_the_post(page, flows):
    flows.sign_up(page)
    title = flows.unique_name("A long story ")
    post_id = flows.create_post(page, title, LONG_BODY, image=flows.png_file(size=(64, 48)))
    card = page.locator("article.card").filter(has_text=title)
    excerpt = card.locator(".excerpt")
    expect(excerpt.locator("em")).to_have_text("opening")
    expect(excerpt).to_contain_text("\u2026")
    expect(card).not_to_contain_text("THE END")
    expect(card).to_contain_text("8 min read")
    image = card.locator("img.card-image")
    expect(image).to_have_attribute("width", "64")
    expect(image).to_have_attribute("height", "48")
    # A card is small: a long post takes less than a screen.
    assert card.bounding_box()["height"] < 600

    card.get_by_role("link", name=re.compile("^Continue reading")).click()
    expect(page).to_have_url(re.compile(rf"/{post_id}/{slugify(title)}$"))
    expect(page.locator("article.post-detail .body")).to_contain_text("THE END of the story.")


def test_an_old_post_url_leads_to_the_readable_one(page, flows):
    flows.sign_up(page)
    title = flows.unique_name("Moved ")
    post_id = flows.create_post(page, title)
    response = page.goto(f"/{post_id}")
    assert response.ok
    expect(page).to_have_url(re.compile(rf"/{post_id}/{slugify(title)}$"))
    page.goto(f"/{post_id}/an-outdated-slug?comments=1")
    expect(page).to_have_url(re.compile(rf"/{post_id}/{slugify(title)}\?comments=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def test_code_is_highlighted_and_tables_aligned_under_the_policy(new_page, flows):
    for scheme in ("light", "dark"):
        page = new_page(color_scheme=scheme)
        problems = console_errors(page)
        flows.sign_up(page)
        post_id = flows.create_post(page, flows.unique_name("Code "), CODE_AND_TABLE)
        page.goto(f"/{post_id}")
        body = page.locator("article.post-detail .body")
        keyword = body.locator(".highlight .k").first
        expect(keyword).to_have_text("def")
        colours = keyword.evaluate(
            """k => [getComputedStyle(k).color,
                     getComputedStyle(k.closest('pre').querySelector('.n')).color]"""
        )
        assert colours[0] != colours[1], f"keywords not coloured in {scheme} mode"
        cells = body.locator("td")
        expect(cells.nth(1)).to_have_text("350")
        assert cells.nth(1).evaluate("c => getComputedStyle(c).textAlign") == "right"
        assert cells.nth(0).evaluate("c => getComputedStyle(c).textAlign") == "left"
        expect(body.get_by_role("checkbox", name="seen")).to_be_checked()
        expect(body.get_by_role("checkbox", name="heard")).to_be_disabled()
        expect(body.locator(".footnotes")).to_contain_text("Its source.")
        assert problems == [], problems


def test_search_results_show_marked_snippets_by_keyboard(page, flows):
    flows.sign_up(page)
    word = flows.unique_name("tyto")
    title = flows.unique_name("Found ")
    post_id = flows.create_post(page, title, "Intro. " * 80 + f"The {word} owl hunts. " + "x " * 80)
    page.goto("/")
    keyboard = page.keyboard
    for _ in range(30):
        keyboard.press("Tab")
        if page.get_by_label("Search posts").evaluate("e => e === document.activeElement"):
            break
    keyboard.type(word)
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/search\?q={word}$"))
    result = page.locator("article.card")
    expect(result).to_have_count(1)
    expect(result.locator(".snippet mark")).to_have_text(word)
    expect(result.locator(".snippet")).to_contain_text(f"The {word} owl hunts.")
    expect(result.locator(".snippet")).to_contain_text("\u2026")
    # On to the post by keyboard, through the result's title.
    link = result.get_by_role("link", name=title, exact=True)
    for _ in range(30):
        keyboard.press("Tab")
        if link.evaluate("e => e === document.activeElement"):
            break
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/{post_id}/{slugify(title)}$"))


def test_an_error_page_offers_a_way_on(page, flows):
    problems = console_errors(page)
    flows.sign_up(page)
    title = flows.unique_name("Newest ")
    flows.create_post(page, title)
    response = page.goto("/no/such/page")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("404 Not Found")
    newest = page.get_by_role("region", name="Newest posts").get_by_role("link")
    expect(newest).to_have_count(5)
    expect(newest.first).to_have_text(title)
    search = page.get_by_label("Search the posts instead")
    search.fill(title)
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q="))
    expect(page.locator("article.card")).to_have_count(1)
    # The only console message is the browser's note of the 404 itself.
    assert [p for p in problems if "status of 404" not in p] == []
    assert len(problems) == 1
