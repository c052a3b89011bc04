import re


def test_the_markdown_help_shows_each_feature_with_its_result(client):
    response = client.get("/help/markdown")
    assert response.status_code == 200
    page = response.data.decode()
    assert "<h1>Writing in Markdown</h1>" in page
    # Each example is shown as typed and as rendered.
    assert "| Item | Price |" in page and '<td class="align-right">2.50</td>' in page
    assert '<span class="k">def</span>' in page
    assert 'type="checkbox"> written</label>' in page
    assert '<sup class="footnote-ref">' in page
    assert "Images from other sites are shown as links" in page
    assert re.search(
        r'<a href="https://example.org/photo.jpg"[^>]*>A photo on another site</a>', page
    )
    assert "<img" not in page


def test_the_post_form_links_to_the_markdown_help(client, auth):
    auth.login()
    for path in ("/create", "/1/update"):
        assert (
            b'<a class="help-link" href="/help/markdown">Markdown help</a>' in client.get(path).data
        )
