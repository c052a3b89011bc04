"""WordPress: importing a WordPress export (WXR 1.1 or 1.2) as posts, tags, comments and authors."""

import html
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from urllib.parse import urljoin
from xml.parsers import expat

import click
from flask.cli import with_appcontext
from markdownify import MarkdownConverter

from .db import get_db, inserted_id, transaction
from .forms import BODY_MAX, COMMENT_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX
from .portability import AUTHOR_NAME_MAX, check_schema
from .tags import TAG_PATTERN, normalize, save_tags

SOURCE = "wordpress"
WXR_NAMESPACES = {
    "http://wordpress.org/export/1.1/": "1.1",
    "http://wordpress.org/export/1.2/": "1.2",
}
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
# An export is read whole into memory; larger files are refused before reading.
WXR_MAX_BYTES = 1024**3
# WordPress's statuses of the posts brought in, and what each becomes here (as the summary
# counts it): a future post is scheduled for its date; one pending review is a draft.
POST_STATES = {
    "publish": "posts",
    "future": "scheduled posts",
    "draft": "drafts",
    "pending": "drafts",
}
# How much longer than the stored text a post's or comment's HTML may be (markup takes room).
HTML_PER_CHARACTER = 10
# The password of an imported author: not a hash of anything, so no password matches it
# until an admin gives the author a reset link.
NO_PASSWORD = "!"  # noqa: S105
# The "no category" category WordPress gives every post that has none: not a real tag.
DEFAULT_CATEGORY = "uncategorized"
# What the skipped items of other types are called in the summary.
SKIPPED_TYPES = {"page": "pages", "attachment": "attachments", "nav_menu_item": "menu items"}

# Shortcodes WordPress or its common plugins render into markup. Only these are taken
# apart: other text in brackets ("[sic]") is the writer's own and stays as it is.
SHORTCODES = (
    "caption|wp_caption|gallery|embed|video|audio|playlist|youtube|vimeo|soundcloud|tweet"
    "|instagram|googlemaps|contact-form|contact-form-7|gravityform|code|sourcecode"
)
CODE_SHORTCODE = re.compile(r"\[(code|sourcecode)\b[^\]]*\](.*?)\[/\1\]", re.DOTALL)
EMBED_SHORTCODE = re.compile(r"\[embed\b[^\]]*\](.*?)\[/embed\]", re.DOTALL)
SHORTCODE = re.compile(rf"\[/?(?:{SHORTCODES})\b((?:[^\]\"']|\"[^\"]*\"|'[^']*')*)\]")
SHORTCODE_URL = re.compile(r"\b(?:src|url|mp4|href)\s*=\s*[\"']?(https?://[^\s\"'\]]+)")
# Link targets carried over: web and mail addresses and relative paths; never javascript:,
# data: or other schemes (the renderer would refuse them anyway, leaving Markdown noise).
SAFE_TARGET = re.compile(r"(?:https?:|mailto:|/|#|\w[\w.-]*(?:/|$))", re.IGNORECASE)
# WordPress's excerpt marker, with or without its own "read more" text.
MORE = re.compile(r"<!--more(?:\s[^>]*)?-->")
PRE_BLOCK = re.compile(r"<pre\b.*?</pre>", re.DOTALL | re.IGNORECASE)
BLOCK_START = re.compile(
    r"<(?:p|div|h[1-6]|ul|ol|li|blockquote|pre|figure|table|hr|dl|!--|address|section)\b",
    re.IGNORECASE,
)


class NotWxr(click.ClickException):
    """A file that is not a WordPress export this importer reads."""

    def __init__(self, path, reason):
        super().__init__(f"{path} is not a WordPress export: {reason}.")


class Converter(MarkdownConverter):
    """WordPress HTML to Markdown that leaves no live markup: scripts and frames go,
    embedded media become links, and images hosted elsewhere stay links to them."""

    def convert_img(self, el, text, parent_tags):
        """An image elsewhere becomes a link to it (its alt text inside a link)."""
        alt = " ".join((el.get("alt") or "").split()) or "image"
        src = (el.get("src") or "").strip()
        if "a" in parent_tags or not SAFE_TARGET.match(src):
            return alt
        return f"[{escape_brackets(alt)}]({link_target(self.absolute(src))})"

    def convert_a(self, el, text, parent_tags):
        """A link to a web or mail address stays a link; any other (javascript:) is text."""
        href = (el.get("href") or "").strip()
        if not SAFE_TARGET.match(href):
            return text
        el["href"] = self.absolute(href)
        return super().convert_a(el, text, parent_tags)

    def absolute(self, url):
        """Return a link relative to the old blog as an address on it: this site has none of
        its paths. Links within the page (#...) stay as they are."""
        site = self.options.get("site_url")
        return urljoin(site + "/", url) if site and not url.startswith("#") else url

    def convert_iframe(self, el, text, parent_tags):
        """An embedded frame becomes a plain link to what it showed."""
        src = el.get("src") or ""
        return f" <{src}> " if src.startswith(("http://", "https://")) else ""

    def drop(self, el, text, parent_tags):
        """Leave out an element and all it contains."""
        return ""

    convert_script = convert_style = convert_noscript = convert_template = drop
    convert_object = convert_embed = convert_form = convert_svg = convert_math = drop
    convert_button = convert_select = convert_textarea = convert_input = drop


class PlainConverter(Converter):
    """WordPress comment HTML to the plain text Flaskr comments are: no Markdown marks,
    links written as their text and address."""

    def keep_text(self, el, text, parent_tags):
        """Keep what an inline element says, without its formatting."""
        return text

    convert_b = convert_strong = convert_em = convert_i = convert_code = keep_text
    convert_del = convert_s = convert_sub = convert_sup = convert_kbd = keep_text

    def convert_a(self, el, text, parent_tags):
        """A link becomes its text followed by its address."""
        href = el.get("href") or ""
        return text if not href or href == text.strip() else f"{text} ({href})"

    def convert_img(self, el, text, parent_tags):
        """An image becomes its alt text."""
        return " ".join((el.get("alt") or "").split())


def escape_brackets(text):
    """Escape what would end a Markdown link's text early."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def link_target(url):
    """Write a URL as a Markdown link target, in angle brackets when it has spaces or parens."""
    if re.search(r"[\s()<>]", url):
        return "<" + re.sub(r"[\s<>]", lambda m: f"%{ord(m.group()):02X}", url) + ">"
    return url


def autop(text):
    """Make paragraphs of text separated by blank lines, as WordPress does when it shows a post.

    Posts from WordPress's classic editor keep paragraphs as blank lines, not <p>; blocks
    that already are markup, and everything inside <pre>, are left as they are.
    """
    kept = []

    def keep(match):
        kept.append(match.group())
        return f"\x00{len(kept) - 1}\x00"

    text = PRE_BLOCK.sub(keep, text)
    chunks = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        chunk = chunk.strip()
        if chunk and not BLOCK_START.match(chunk) and not chunk.startswith("\x00"):
            chunk = "<p>" + chunk.replace("\n", "<br>\n") + "</p>"
        chunks.append(chunk)
    text = "\n\n".join(chunks)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def expand_shortcodes(text):
    """Replace shortcodes by what can be carried: code as code, media as plain links.

    Other known shortcodes ([caption], [gallery]...) lose their brackets and keep the
    text between them.
    """
    text = CODE_SHORTCODE.sub(lambda m: f"<pre><code>{html.escape(m.group(2))}</code></pre>", text)
    text = EMBED_SHORTCODE.sub(lambda m: f"\n\n{html.escape(m.group(1).strip())}\n\n", text)

    def replace(match):
        url = SHORTCODE_URL.search(match.group(1))
        return f" {html.escape(url.group(1))} " if url else ""

    return SHORTCODE.sub(replace, text)


def html_to_text(text):
    """Convert a WordPress comment to plain text, paragraphs kept as blank lines."""
    converter = PlainConverter(escape_asterisks=False, escape_underscores=False)
    return tidy(converter.convert(autop(text.replace("\r\n", "\n"))))


def tidy(markdown):
    """Drop trailing spaces that end no line break, blank lines of spaces and extra blank lines."""
    markdown = re.sub(r"[ \t]+(?=\n[ \t]*\n|\n?\Z)", "", markdown)
    markdown = re.sub(r"^[ \t]+$", "", markdown, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", markdown).strip()


def html_to_markdown(text, site_url=""):
    """Convert a WordPress post's body to Markdown; relative links point into site_url.

    The <!--more--> marker ends the post's opening (what lists and previews show): it
    becomes a paragraph break, so the text before it is the first paragraphs of the post.
    """
    text = MORE.sub("\n\n<p></p>\n\n", text.replace("\r\n", "\n"))
    text = autop(expand_shortcodes(text))
    converter = Converter(
        heading_style="ATX", bullets="-", escape_underscores=False, site_url=site_url.rstrip("/")
    )
    return tidy(converter.convert(text))


def qualified(name):
    """Turn expat's 'uri name' into ElementTree's '{uri}name'."""
    uri, _, local = name.rpartition(" ")
    return f"{{{uri}}}{local}" if uri else local


def parse_xml(path, data):
    """Parse XML into an element tree, refusing any document type declaration.

    A WordPress export never has one; refusing it shuts out external entities and entity
    expansion (the "billion laughs") whatever the parser's defaults.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True

    def refuse_doctype(*args):
        raise NotWxr(path, "it declares a document type, which a WordPress export never does")

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.StartElementHandler = lambda tag, attributes: builder.start(
        qualified(tag), {qualified(name): value for name, value in attributes.items()}
    )
    parser.EndElementHandler = lambda tag: builder.end(qualified(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        problem = f"{expat.ErrorString(e.code)}, line {e.lineno}"
        raise NotWxr(path, f"it is not well-formed XML ({problem})") from None
    return builder.close()


def read_export(path):
    """Return (channel element, WXR namespace) of a WordPress export file."""
    try:
        if os.path.getsize(path) > WXR_MAX_BYTES:
            raise NotWxr(path, f"it is larger than {WXR_MAX_BYTES:,} bytes")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise click.ClickException(f"Cannot read {path}: {e.strerror}.") from e
    root = parse_xml(path, data)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise NotWxr(path, f"its root element is <{root.tag}>, not <rss> with a <channel>")
    for child in channel:
        namespace, _, local = child.tag[1:].rpartition("}")
        if local == "wxr_version" and child.tag.startswith("{"):
            if namespace in WXR_NAMESPACES:
                return channel, namespace
            raise NotWxr(path, f"its WXR version is {child.text}; 1.1 and 1.2 are supported")
    raise NotWxr(path, "it has no wp:wxr_version (an RSS feed is not an export)")


def text_of(element, tag):
    """Return the text of a child element, stripped ('' when missing)."""
    return (element.findtext(tag) or "").strip()


def wordpress_time(element, wp, name):
    """Return an item's time in UTC as stored here, or None when it has no valid one.

    The *_gmt field is UTC; drafts leave it all zeros, and then the local time is used.
    """
    for tag in (f"{{{wp}}}{name}_gmt", f"{{{wp}}}{name}"):
        try:
            return datetime.strptime(text_of(element, tag), "%Y-%m-%d %H:%M:%S").isoformat(sep=" ")
        except ValueError:
            continue
    return None


def plain_line(text):
    """Return text as one line: entities decoded, runs of white space made one space."""
    return " ".join(html.unescape(text).split())


class Importer:
    """One import run: the database writes and the summary of what was imported and skipped."""

    def __init__(self, db, channel, wp):
        self.db = db
        self.channel = channel
        self.wp = wp
        self.imported = Counter()
        self.skipped = Counter()
        self.authors = {
            text_of(author, f"{{{wp}}}author_login"): text_of(author, f"{{{wp}}}author_id")
            for author in channel.findall(f"{{{wp}}}author")
        }
        self.author_logins = {id: login for login, id in self.authors.items() if id}
        self.site_url = text_of(channel, f"{{{wp}}}base_blog_url") or text_of(channel, "link")

    def wp_text(self, element, name):
        return text_of(element, f"{{{self.wp}}}{name}")

    def remembered(self, kind, key):
        row = self.db.execute(
            "SELECT row_id FROM imported WHERE source = ? AND kind = ? AND key = ?",
            (SOURCE, kind, key),
        ).fetchone()
        return None if row is None else row[0]

    def remember(self, kind, key, row_id):
        self.db.execute(
            "INSERT INTO imported (source, kind, key, row_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, kind, key) DO UPDATE SET row_id = excluded.row_id",
            (SOURCE, kind, key, row_id),
        )

    def run(self):
        """Import every item of the export."""
        tags_before = self.db.execute("SELECT COUNT(*) FROM tag").fetchone()[0]
        for item in self.channel.findall("item"):
            self.item(item)
        tags_after = self.db.execute("SELECT COUNT(*) FROM tag").fetchone()[0]
        self.imported["new tags"] = tags_after - tags_before

    def item(self, item):
        """Import one item if it is a published post; count it as skipped otherwise."""
        kind = self.wp_text(item, "post_type")
        status = self.wp_text(item, "status")
        if kind != "post":
            self.skipped[SKIPPED_TYPES.get(kind, f"items of type '{kind}'")] += 1
        elif status == "private":
            self.skipped["private posts (Flaskr has none)"] += 1
        elif status not in POST_STATES:
            self.skipped[f"posts with status '{status}'"] += 1
        elif self.wp_text(item, "post_password"):
            self.skipped["password-protected posts"] += 1
        else:
            self.post(item, POST_STATES[status])

    def post(self, item, state):
        """Import one post (published, scheduled or a draft) with its tags and approved comments."""
        key = text_of(item, "guid")
        if not key:
            key = f"{text_of(self.channel, 'link')}?p={self.wp_text(item, 'post_id')}"
        if self.remembered("post", key) is not None:
            self.skipped["posts already imported"] += 1
            return
        created = wordpress_time(item, self.wp, "post_date")
        if created is None:
            self.skipped["posts without a valid date"] += 1
            return
        html = item.findtext(CONTENT) or ""
        body = self.converted(
            lambda: html_to_markdown(html, self.site_url), html, BODY_MAX, "posts"
        )
        if body is None:
            return
        title = plain_line(text_of(item, "title")) or "Untitled"
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "…"
            self.imported["titles shortened"] += 1
        modified = wordpress_time(item, self.wp, "post_modified")
        updated = modified if modified and modified > created else None
        author_id = self.user_for(text_of(item, CREATOR) or "wordpress")
        post_id = inserted_id(
            self.db.execute(
                "INSERT INTO post (title, body, author_id, created, updated, draft)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (title, body, author_id, created, updated, int(state == "drafts")),
            )
        )
        save_tags(self.db, post_id, self.tags(item))
        self.remember("post", key, post_id)
        self.imported[state] += 1
        for comment in item.findall(f"{{{self.wp}}}comment"):
            self.comment(comment, post_id)

    def converted(self, convert, html, limit, what):
        """Return convert()'s text of html, or None (counted as skipped) when it cannot be stored.

        HTML far longer than the limit is not converted at all: its text could not fit, and
        converting it would cost time for nothing.
        """
        too_long = f"{what} longer than {limit:,} characters"
        if len(html) > limit * HTML_PER_CHARACTER:
            self.skipped[too_long] += 1
            return None
        try:
            text = convert()
        except RecursionError:
            self.skipped[f"{what} with markup nested too deeply to convert"] += 1
            return None
        if len(text) > limit:
            self.skipped[too_long] += 1
            return None
        return text

    def tags(self, item):
        """Return the Flaskr tags of a post's categories and tags; count those dropped."""
        names, seen = [], set()
        for category in item.findall("category"):
            if category.get("domain") not in ("category", "post_tag"):
                continue
            if category.get("nicename") == DEFAULT_CATEGORY:
                continue
            name = normalize(html.unescape(category.text or ""))
            if name in seen:
                continue
            seen.add(name)
            if not name or len(name) > TAG_MAX or not TAG_PATTERN.fullmatch(name):
                self.skipped["tags not valid here (letters, digits, ' -_.', 32 at most)"] += 1
            elif len(names) == TAGS_MAX:
                self.skipped[f"tags beyond {TAGS_MAX} on one post"] += 1
            else:
                names.append(name)
        return names

    def comment(self, comment, post_id):
        """Import one approved comment, by its account's author or under its writer's name."""
        kind = self.wp_text(comment, "comment_type")
        if kind not in ("", "comment"):
            self.skipped["pingbacks and trackbacks"] += 1
            return
        if self.wp_text(comment, "comment_approved") != "1":
            self.skipped["comments not approved (pending, spam or trash)"] += 1
            return
        html = self.wp_text(comment, "comment_content")
        body = self.converted(lambda: html_to_text(html), html, COMMENT_MAX, "comments")
        if body is None:
            return
        if not body:
            self.skipped["empty comments"] += 1
            return
        created = wordpress_time(comment, self.wp, "comment_date")
        if created is None:
            self.skipped["comments without a valid date"] += 1
            return
        login = self.author_logins.get(self.wp_text(comment, "comment_user_id"))
        author_id = self.user_for(login) if login else None
        name = None
        if author_id is None:
            name = plain_line(self.wp_text(comment, "comment_author"))[:AUTHOR_NAME_MAX]
            name = name or "Anonymous"
        self.db.execute(
            "INSERT INTO comment (post_id, author_id, author_name, created, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (post_id, author_id, name, created, body),
        )
        self.imported["comments"] += 1

    def user_for(self, login):
        """Return the account of a WordPress author, creating one that cannot log in.

        Authors are remembered per blog: two blogs' "admin" are two people.
        """
        key = f"{self.site_url} {login}"
        user_id = self.remembered("author", key)
        if (
            user_id is not None
            and self.db.execute("SELECT 1 FROM user WHERE id = ?", (user_id,)).fetchone()
        ):
            return user_id
        user_id = inserted_id(
            self.db.execute(
                "INSERT INTO user (username, password) VALUES (?, ?) RETURNING id",
                (self.free_username(login), NO_PASSWORD),
            )
        )
        self.remember("author", key, user_id)
        self.imported["authors"] += 1
        return user_id

    def free_username(self, login):
        """Return a valid username for a login that no account has (in any case)."""
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", login).strip("-.")[:32] or "author"
        name, number = base, 1
        while self.db.execute(
            "SELECT 1 FROM user WHERE lower(username) = lower(?)", (name,)
        ).fetchone():
            number += 1
            name = f"{base[: 31 - len(str(number))]}-{number}"
        return name


def import_wordpress(path):
    """Import a WordPress export in one transaction; return the Importer with its counts."""
    channel, wp = read_export(path)
    db = get_db()
    check_schema(db)
    with transaction(db):
        importer = Importer(db, channel, wp)
        importer.run()
    return importer


@click.command("import-wordpress")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def import_wordpress_command(path):
    """Import the posts (published, scheduled, drafts), tags, comments and authors of a WXR file."""
    importer = import_wordpress(path)
    done = importer.imported
    counts = [f"{done['posts']} posts"]
    counts += [f"{done[kind]} {kind}" for kind in ("scheduled posts", "drafts") if done[kind]]
    click.echo(
        f"Imported {', '.join(counts)}, {done['comments']} comments, {done['authors']} new"
        f" authors and {done['new tags']} new tags from {path}."
    )
    if done["titles shortened"]:
        click.echo(f"  {done['titles shortened']} titles were shortened to {TITLE_MAX} characters.")
    if importer.skipped:
        click.echo("Skipped:")
        for reason, number in sorted(importer.skipped.items()):
            click.echo(f"  {number} {reason}")
