"""The pages themselves: accessible (axe-core, labels, focus, keyboard), responsive, dark mode."""

import re
from importlib.resources import files
from pathlib import Path

import pytest
from playwright.sync_api import expect

# axe-core as bundled by the axe-playwright-python package (a test dependency).
AXE_SOURCE = files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
BLOCKING_IMPACTS = {"serious", "critical"}
SCREENSHOTS = Path(__file__).parent / "screenshots"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

# The main pages, and whether a logged-in author with a post sees them. The author's post
# has Markdown, tags, an image and a comment; {word} is a word of its body, {tag} one of its
# tags, {username} its author.
PAGES = {
    "index": ("/", True),
    "post": ("/{post_id}", True),
    "tag": ("/tag/{tag}", True),
    "search": ("/search?q={word}", True),
    "author": ("/user/{username}", True),
    "update": ("/{post_id}/update", True),
    "create": ("/create", True),
    "drafts": ("/drafts", True),
    "login": ("/auth/login", False),
    "register": ("/auth/register", False),
    # Typed or followed from elsewhere, /auth/logout asks before logging out.
    "logout": ("/auth/logout", True),
    "help": ("/help/markdown", False),
    # An error page: a post's id with a wrong action, a 404 with the newest posts.
    "error": ("/{post_id}/update/nothing", True),
    "settings": ("/settings", True),
    # The author is made an admin first (see prepare).
    "admin": ("/admin", True),
}

LONG_WORD = "Supercalifragilistic" * 9
LONG_URL = "https://example.org/" + "a-very-long-path-segment/" * 20 + "?q=" + "x" * 100
BODY = (
    "A first paragraph of the post, with **bold** and *italic* words.\n"
    "A second line, with a [link](https://example.org/).\n\n"
    "- a list item\n- another one\n\n`some code`"
)
COMMENT = "What a nice post!\nThanks for writing it."


def prepare(
    page, flows, name, post=("A post", BODY), username=None, image_size=(800, 300), comment=COMMENT
):
    """Set up what page `name` shows (a user, a post) in the page's context; return its path."""
    path, as_author = PAGES[name]
    if not as_author:
        return path
    username = flows.sign_up(page, username)
    if name == "admin":
        flows.make_admin(username)
    word = flows.unique_name("word")
    tag = flows.unique_name("tag")
    title, body = post
    post_id = flows.create_post(
        page,
        title,
        f"{body}\n\nSearch word: {word}",
        tags=f"{tag}, travel, Owls",
        image=flows.png_file(size=image_size),
    )
    response = page.context.request.post(f"/{post_id}/comment", form={"body": comment})
    assert response.ok
    return path.format(post_id=post_id, tag=tag, word=word, username=username)


def open_page(new_page, flows, name, post=("A post", BODY), username=None, **options):
    """Open one of PAGES in a new context, as an author with a post when the page needs it."""
    image_size = options.pop("image_size", (800, 300))
    comment = options.pop("comment", COMMENT)
    page = new_page(**options)
    page.goto(prepare(page, flows, name, post, username, image_size, comment))
    return page


def axe_violations(page):
    """Run axe-core on the page; return the serious and critical violations, readably."""
    # Evaluated through the DevTools protocol, so the site's script-src 'self' does not block it.
    page.evaluate(AXE_SOURCE)
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]


# Resolves once every image has loaded (or failed); lazy ones are made to load now.
LOAD_IMAGES = """() => Promise.all([...document.images].map(image => {
    image.loading = "eager";
    return image.complete ? null : new Promise(done => { image.onload = image.onerror = done; });
}))"""


def wait_for_images(page):
    """Wait until the page's images have loaded, and check that they all did."""
    page.evaluate(LOAD_IMAGES)
    broken = page.evaluate("() => [...document.images].filter(i => !i.naturalWidth).length")
    assert broken == 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_axe_violations_and_screenshots(new_page, flows, name, scheme):
    page = open_page(
        new_page,
        flows,
        name,
        ("Screenshots of Flaskr", BODY),
        color_scheme=scheme,
        viewport=DESKTOP,
    )
    wait_for_images(page)
    assert axe_violations(page) == []

    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-1280-{scheme}.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}-375-{scheme}.png", full_page=True)


# Buttons and navigation links whose label breaks over two lines.
BROKEN_LABELS = """() => [...document.querySelectorAll(".action, .site-nav a, button")]
    .filter(element => {
        const range = document.createRange();
        range.selectNodeContents(element);
        return new Set([...range.getClientRects()].map(rect => rect.top)).size > 1;
    })
    .map(element => element.textContent.trim())"""


@pytest.mark.parametrize("name", list(PAGES))
def test_no_sideways_scroll_on_a_phone(new_page, flows, name):
    post = (f"Long {LONG_WORD}", f"{LONG_WORD}\nSee {LONG_URL}\n{'word ' * 200}")
    # The longest username allowed, in the navigation bar.
    username = flows.unique_name("phone-").ljust(32, "W")
    comment = f"{LONG_WORD}\n{LONG_URL}"
    page = open_page(
        new_page,
        flows,
        name,
        post,
        username,
        viewport=PHONE,
        image_size=(1600, 400),
        comment=comment,
    )
    wait_for_images(page)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert page.evaluate(BROKEN_LABELS) == []
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-375-long-words.png", full_page=True)


def luminance(css_color):
    """Relative luminance (0 black .. 1 white) of an rgb()/rgba() colour."""
    red, green, blue = (int(c) / 255 for c in re.findall(r"\d+", css_color)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


@pytest.mark.parametrize(("scheme", "dark"), [("light", False), ("dark", True)])
def test_colour_scheme_follows_the_system(new_page, flows, scheme, dark):
    page = open_page(new_page, flows, "login", color_scheme=scheme)
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("() => getComputedStyle(document.body).color")
    if dark:
        assert luminance(background) < 0.2 < 0.8 < luminance(text)
    else:
        assert luminance(text) < 0.2 < 0.8 < luminance(background)


# A field is labelled by a label naming its id, by a label around it (the task lists of
# Markdown), or by aria-label.
UNLABELLED_FIELDS = """() => [...document.querySelectorAll("input, textarea, select")]
    .filter(field => !["submit", "hidden", "button", "reset"].includes(field.type))
    .filter(field => !(field.id && document.querySelector(`label[for="${field.id}"]`))
        && !field.closest("label") && !field.getAttribute("aria-label"))
    .map(field => field.outerHTML)"""


@pytest.mark.parametrize("name", list(PAGES))
def test_every_field_has_a_label(new_page, flows, name):
    page = open_page(new_page, flows, name)
    assert page.evaluate(UNLABELLED_FIELDS) == []


FOCUS_OUTLINE = """() => {
    const style = getComputedStyle(document.activeElement);
    return [document.activeElement.tagName, style.outlineStyle, parseFloat(style.outlineWidth)];
}"""


def tab_to(page, locator, limit=30):
    """Press Tab until the locator's element has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {locator}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_is_visible_on_the_post_page(new_page, flows, scheme):
    page = open_page(new_page, flows, "post", color_scheme=scheme)
    post = page.locator("article.post-detail")
    for target in (
        page.get_by_label("Search posts"),
        post.get_by_role("link", name="Edit", exact=True),
        post.get_by_role("link", name="travel"),
        page.get_by_role("button", name="Like", exact=True),
        page.get_by_role("button", name="Delete comment"),
        page.get_by_label("Add a comment"),
        page.get_by_role("button", name="Comment", exact=True),
    ):
        tab_to(page, target)
        tag, outline_style, outline_width = page.evaluate(FOCUS_OUTLINE)
        assert outline_style != "none" and outline_width > 0, f"no focus outline on {tag}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_is_visible(new_page, flows, scheme):
    page = open_page(new_page, flows, "update", color_scheme=scheme)
    for target in (
        page.get_by_role("link", name="Skip to content"),
        page.get_by_role("button", name="Log Out"),
        page.get_by_label("Title"),
        page.get_by_role("button", name="Update", exact=True),
        page.get_by_role("button", name="Delete"),
    ):
        tab_to(page, target)
        tag, outline_style, outline_width = page.evaluate(FOCUS_OUTLINE)
        assert outline_style != "none" and outline_width > 0, f"no focus outline on {tag}"


def test_the_whole_flow_works_by_keyboard(page, flows, server):
    username = flows.unique_name()
    title = flows.unique_name("By keyboard ")
    keyboard = page.keyboard
    page.goto("/")

    tab_to(page, page.get_by_role("link", name="Register"))
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    tab_to(page, page.get_by_label("Username"))
    keyboard.type(username)
    keyboard.press("Tab")
    keyboard.type(flows.password)
    keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/auth/login$"))
    tab_to(page, page.get_by_label("Username"))
    keyboard.type(username)
    keyboard.press("Tab")
    keyboard.type(flows.password)
    keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/$"))
    tab_to(page, page.get_by_role("link", name="New"))
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/create$"))
    tab_to(page, page.get_by_label("Title"))
    keyboard.type(title)
    keyboard.press("Tab")
    keyboard.type("Written without a mouse.")
    keyboard.press("Tab")
    keyboard.press("Enter")

    # Enter in a field submits with the form's first button, Publish: on to the post.
    expect(page).to_have_url(re.compile(r"/\d+/[^/]+$"))
    expect(page.get_by_role("alert")).to_have_text("Published.")
    expect(page.locator("article.post-detail h1")).to_have_text(title)
    assert server.count_posts(title) == 1

    # The skip link takes the keyboard past the navigation, to the page's content.
    page.goto("/")
    keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/#content$"))


# The error page's own status is reported on the console as a failed load: test_reading
# checks it under the policy, ignoring that one message.
@pytest.mark.parametrize("name", [name for name in PAGES if name != "error"])
def test_pages_load_without_errors_under_the_content_security_policy(new_page, flows, name):
    problems = []
    page = new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(prepare(page, flows, name, ("CSP", BODY)))
    page.wait_for_load_state("load")
    wait_for_images(page)
    assert problems == []


def test_like_and_comment_by_keyboard(page, flows):
    path = prepare(page, flows, "post")
    page.goto(path)
    keyboard = page.keyboard
    like = page.get_by_role("button", name="Like", exact=True)
    tab_to(page, like)
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/\d+/[^/#]+#likes$"))
    expect(like).to_have_attribute("aria-pressed", "true")
    # The page reloads at #likes, so Tab goes on from there; Space presses a button too.
    tab_to(page, like)
    keyboard.press("Space")
    expect(like).to_have_attribute("aria-pressed", "false")

    tab_to(page, page.get_by_label("Add a comment"))
    keyboard.type("Typed, not clicked.")
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Comment", exact=True)).to_be_focused()
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/\d+/[^/#]+#comment-\d+$"))
    expect(page.locator(".comment-body").last).to_have_text("Typed, not clicked.")

    # Deleting it by keyboard goes through the same confirm dialog.
    comments = page.locator("article.comment")
    expect(comments).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    tab_to(page, comments.last.get_by_role("button", name="Delete comment"), limit=40)
    keyboard.press("Enter")
    expect(comments).to_have_count(1)


def test_password_change_and_sessions_by_keyboard(new_page, flows):
    page = open_page(new_page, flows, "settings")
    keyboard = page.keyboard
    new_password = "a brand new passphrase"
    tab_to(page, page.get_by_label("Current password"))
    keyboard.type("not my password")
    keyboard.press("Tab")
    keyboard.type(new_password)
    keyboard.press("Tab")
    keyboard.type(new_password)
    keyboard.press("Enter")
    # The error is beside its field, and announced with it.
    current = page.get_by_label("Current password")
    expect(current).to_have_attribute("aria-invalid", "true")
    expect(current).to_have_accessible_description(re.compile("Incorrect password."))
    assert axe_violations(page) == []

    tab_to(page, page.get_by_label("Current password"))
    keyboard.type(flows.password)
    keyboard.press("Tab")
    keyboard.type(new_password)
    keyboard.press("Tab")
    keyboard.type(new_password)
    keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Password changed.")
    expect(page.locator(".sessions li")).to_have_count(1)
    tab_to(page, page.get_by_role("button", name="Log out all other sessions"), limit=60)
    keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Every other session of yours is logged out.")


def test_admin_page_by_keyboard(new_page, flows, server):
    page = open_page(new_page, flows, "admin")
    keyboard = page.keyboard
    victim = flows.unique_name()
    other = new_page()
    flows.sign_up(other, victim)
    page.reload()
    tab_to(page, page.get_by_role("button", name=f"Suspend {victim}"), limit=80)
    page.once("dialog", lambda dialog: dialog.accept())
    keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text(f"{victim} is suspended")
    other.goto("/")
    expect(other.get_by_role("link", name="Log In")).to_be_visible()

    tab_to(page, page.get_by_role("button", name=f"Password reset link for {victim}"), limit=80)
    keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Link")).to_have_value(re.compile("/account/reset/"))
    assert axe_violations(page) == []

    tab_to(page, page.get_by_label("Site title"), limit=120)
    keyboard.press("Tab")
    keyboard.press("Tab")
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save settings")).to_be_focused()
    tab_to(page, page.get_by_role("button", name="Make an invite link"), limit=10)
    keyboard.press("Enter")
    invite = page.get_by_role("textbox", name="Link")
    expect(invite).to_have_value(re.compile("/auth/register/invite/"))
