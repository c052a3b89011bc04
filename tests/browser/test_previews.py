"""What a link preview, a search engine or a browser tab reads from a post page's <head>."""


def meta(page, attribute, name):
    return page.locator(f'head meta[{attribute}="{name}"]').get_attribute("content")


def test_a_post_page_head_describes_it_for_previews(page, flows, server):
    flows.sign_up(page)
    title = flows.unique_name("Preview ")
    body = "Owls **hunt** at night. " * 20
    post_id = flows.create_post(page, title, body, tags="owl", image=flows.png_file())
    page.goto(f"/{post_id}")

    assert page.title() == f"{title} - Flaskr"
    canonical = page.locator('head link[rel="canonical"]').get_attribute("href")
    assert canonical == page.url  # where /<id> led: the post's address with its slug
    assert canonical.startswith(f"{server.url}/{post_id}/preview-")
    description = meta(page, "name", "description")
    assert description.startswith("Owls hunt at night. Owls hunt")
    assert len(description) <= 160
    assert meta(page, "property", "og:title") == title
    assert meta(page, "property", "og:url") == canonical
    assert meta(page, "property", "og:image").startswith(f"{server.url}/uploads/")
    assert meta(page, "property", "og:image:width") == "64"
    assert meta(page, "property", "article:tag") == "owl"
    assert meta(page, "name", "twitter:card") == "summary_large_image"
    icon = page.locator('head link[rel="icon"]').get_attribute("href")
    assert page.request.get(icon).ok
