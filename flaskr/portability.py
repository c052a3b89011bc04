"""Moving a whole site: export to one zip file and import into an empty database, as commands."""

import json
import os
import re
import zipfile
import zlib
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from PIL import Image, UnidentifiedImageError

from .admin import ROLES, SETTING_NAMES, SITE_DESCRIPTION_MAX
from .auth import USERNAME_PATTERN
from .db import (
    advance_sequences,
    backend,
    get_db,
    init_db,
    latest_version,
    schema_version,
    transaction,
)
from .forms import (
    BIO_MAX,
    BODY_MAX,
    COMMENT_MAX,
    DISPLAY_NAME_MAX,
    IMAGE_ALT_MAX,
    PASSWORD_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
)
from .tags import TAG_PATTERN, normalize
from .uploads import FORMATS, image_data, reencode, save_image

FORMAT = "flaskr-site"
FORMAT_VERSION = 1
# A post's state: a scheduled post is published at its created time, still to come.
STATES = ("published", "draft", "scheduled")
# The name a comment by someone without an account was written under (imported comments).
AUTHOR_NAME_MAX = 100
# What an import reads at most, so that a crafted archive (a zip bomb) is refused before
# it costs memory or time: entries, declared bytes in all, and bytes of site.json.
MAX_ENTRIES = 1_000_000
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_JSON_BYTES = 1024**3
# What decoding a hostile or damaged image raises (as uploads.read_image catches).
IMAGE_ERRORS = (
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
)
IMAGE_EXTENSIONS = "|".join(extension for extension, _ in FORMATS.values())

# The tables of a site, in the order an import inserts them (each row's references first),
# with their columns. Security bookkeeping (sessions, login failures, registration
# attempts) belongs to one running site and is never carried.
TABLES = {
    "users": (
        "id",
        "username",
        "password",
        "role",
        "suspended",
        "joined",
        "last_login",
        "display_name",
        "bio",
    ),
    "tags": ("id", "name"),
    "posts": (
        "id",
        "author_id",
        "title",
        "body",
        "state",
        "created",
        "updated",
        "image",
        "image_alt",
    ),
    "post_tags": ("post_id", "tag_id"),
    "comments": ("id", "post_id", "author_id", "author_name", "created", "body"),
    "likes": ("post_id", "user_id", "created"),
    "imported": ("source", "kind", "key", "row_id"),
    "site_settings": ("name", "value"),
}
# What came after the format's first version: an export made before lacks these columns
# (which take these values) and tables (which are empty).
LATER_COLUMNS = {
    "users": {
        "role": "author",
        "suspended": None,
        "joined": None,
        "last_login": None,
        "display_name": "",
        "bio": "",
    },
    "posts": {"image_alt": ""},
}
LATER_TABLES = ("site_settings",)
TIME_COLUMNS = ("created", "updated", "suspended", "joined", "last_login")
# A post's state as the export names it.
POST_STATE = (
    "CASE WHEN draft <> 0 THEN 'draft' WHEN created > CURRENT_TIMESTAMP THEN 'scheduled'"
    " ELSE 'published' END"
)
EXPORT_QUERIES = {
    "users": "SELECT id, username, password, role, suspended, joined, last_login, display_name,"
    " bio FROM user ORDER BY id",
    "tags": "SELECT id, name FROM tag ORDER BY id",
    "posts": f"SELECT id, author_id, title, body, {POST_STATE} AS state, created, updated, image,"
    " image_alt FROM post ORDER BY id",
    "post_tags": "SELECT post_id, tag_id FROM post_tag ORDER BY post_id, tag_id",
    "comments": "SELECT id, post_id, author_id, author_name, created, body"
    " FROM comment ORDER BY id",
    "likes": "SELECT post_id, user_id, created FROM post_like ORDER BY post_id, user_id",
    "imported": "SELECT source, kind, key, row_id FROM imported ORDER BY source, kind, key",
    "site_settings": "SELECT name, value FROM site_setting ORDER BY name",
}
IMPORT_STATEMENTS = {
    "users": "INSERT INTO user (id, username, password, role, suspended, joined, last_login,"
    " display_name, bio) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "tags": "INSERT INTO tag (id, name) VALUES (?, ?)",
    # A draft is stored as one; a scheduled post is a published one whose time is to come.
    "posts": "INSERT INTO post (id, author_id, title, body, draft, created, updated, image,"
    " image_alt) VALUES (?, ?, ?, ?, CASE WHEN ? = 'draft' THEN 1 ELSE 0 END, ?, ?, ?, ?)",
    # A tag link copies its post's time (for the tag page's index). Both backends name a
    # VALUES list's columns column1, column2.
    "post_tags": "INSERT INTO post_tag (post_id, tag_id, created)"
    " SELECT v.column1, v.column2, p.created FROM (VALUES (?, ?)) v"
    " JOIN post p ON p.id = v.column1",
    "comments": "INSERT INTO comment (id, post_id, author_id, author_name, created, body)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "likes": "INSERT INTO post_like (post_id, user_id, created) VALUES (?, ?, ?)",
    "imported": "INSERT INTO imported (source, kind, key, row_id) VALUES (?, ?, ?, ?)",
    "site_settings": "INSERT INTO site_setting (name, value) VALUES (?, ?)",
}


def timestamp(value):
    """Return a stored time as the export writes it: 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    return None if value is None else value.isoformat(sep=" ")


def slug(title):
    """Return a short file-name-safe form of a title ('post' when nothing is left)."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "post"


def markdown_file(post, author, tags):
    """Return a post as Markdown after its front matter (values in JSON, which YAML reads)."""
    fields = {
        "id": post["id"],
        "title": post["title"],
        "author": author,
        "state": post["state"],
        "created": post["created"],
        "updated": post["updated"],
        "tags": tags,
        "image": post["image"],
    }
    lines = [f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in fields.items()]
    return "---\n" + "\n".join(lines) + "\n---\n\n" + post["body"]


def read_site(db):
    """Return every table of the site as lists of dicts, times as text."""
    site = {"format": FORMAT, "version": FORMAT_VERSION}
    for table, query in EXPORT_QUERIES.items():
        rows = [dict(row) for row in db.execute(query)]
        for row in rows:
            for column in TIME_COLUMNS:
                if column in row:
                    row[column] = timestamp(row[column])
        site[table] = rows
    return site


def check_schema(db):
    """Refuse a database that init-db has not made or upgraded to this Flaskr's schema."""
    if schema_version(db) != latest_version(backend(db)):
        raise click.ClickException(
            "The database is not at this Flaskr's schema: run 'flask --app flaskr init-db' first."
        )


def export_site(path):
    """Write the whole site to a new zip file at path; return the site as written.

    Everything is read inside one read transaction, so the file is one consistent moment
    of the site even while the server writes. The zip is written beside path and renamed
    into place, so a failed export leaves no partial file.
    """
    if os.path.exists(path):
        raise click.ClickException(f"{path} already exists; choose a new file name.")
    db = get_db()
    check_schema(db)
    tmp = f"{path}.partial"
    try:
        db.execute("BEGIN")
        try:
            site = read_site(db)
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                write_archive(archive, site)
        finally:
            db.execute("COMMIT")
        os.replace(tmp, path)
    except OSError as e:
        remove_quietly(tmp)
        raise click.ClickException(f"Cannot write {path}: {e.strerror or e}.") from e
    except BaseException:
        remove_quietly(tmp)
        raise
    return site


def write_archive(archive, site):
    """Write images, site.json and one Markdown file per post into an open zip."""
    usernames = {user["id"]: user["username"] for user in site["users"]}
    tag_names = {tag["id"]: tag["name"] for tag in site["tags"]}
    tags = {post["id"]: [] for post in site["posts"]}
    for row in site["post_tags"]:
        tags[row["post_id"]].append(tag_names[row["tag_id"]])
    site["missing_images"] = 0
    for post in site["posts"]:
        name = post["image"]
        if name is None:
            continue
        # Named after the post, not the stored file: an import stores images under new
        # names, and a second export must read the same.
        post["image"] = f"images/{post['id']}.{name.rsplit('.', 1)[1]}"
        data = image_data(name)
        if data is None:
            # Lost (an older Flaskr's file that was gone when init-db moved the images):
            # export the post without it rather than fail.
            post["image"] = None
            site["missing_images"] += 1
        else:
            archive.writestr(post["image"], data, zipfile.ZIP_STORED)
    content = {key: value for key, value in site.items() if key != "missing_images"}
    archive.writestr("site.json", json.dumps(content, ensure_ascii=False, indent=1) + "\n")
    for post in site["posts"]:
        text = markdown_file(post, usernames[post["author_id"]], sorted(tags[post["id"]]))
        archive.writestr(f"posts/{post['id']}-{slug(post['title'])}.md", text)


def remove_quietly(path):
    """Remove a file if it exists."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# --- import -----------------------------------------------------------------------------


def refuse(problem):
    """Stop the import with a one-line reason."""
    raise click.ClickException(f"Cannot import: {problem}.")


def unsafe_name(name):
    """Whether a zip entry's name could reach outside a folder it was extracted into."""
    parts = name.split("/")
    return name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0]


def open_archive(path):
    """Open an export zip and check its shape before anything in it is decompressed."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        refuse(f"there is no file {path}")
    except zipfile.BadZipFile:
        refuse(f"{path} is not a zip file")
    except OSError as e:
        refuse(f"{path} cannot be read ({e.strerror})")
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        refuse(f"the archive has more than {MAX_ENTRIES:,} entries")
    if sum(entry.file_size for entry in entries) > MAX_TOTAL_BYTES:
        refuse(f"the archive would unpack to more than {MAX_TOTAL_BYTES:,} bytes")
    for entry in entries:
        if unsafe_name(entry.filename):
            refuse(f"the archive has an unsafe entry name {entry.filename!r}")
    return archive


def read_entry(archive, name, limit):
    """Return the bytes of one entry, reading at most limit of them."""
    try:
        entry = archive.getinfo(name)
    except KeyError:
        refuse(f"the archive has no {name}")
    if entry.file_size > limit:
        refuse(f"{name} is larger than {limit:,} bytes")
    try:
        # zipfile yields no more than the declared size and checks the CRC at its end:
        # an entry that unpacks to more than it declares is refused as damaged.
        with archive.open(entry) as f:
            return f.read()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        refuse(f"{name} in the archive is damaged ({e})")


def load_site(archive):
    """Return site.json's content once every row in it has been checked."""
    try:
        site = json.loads(read_entry(archive, "site.json", MAX_JSON_BYTES).decode("utf-8"))
    except UnicodeDecodeError:
        refuse("site.json is not UTF-8 text")
    except json.JSONDecodeError as e:
        refuse(f"site.json is not valid JSON ({e})")
    except RecursionError:
        refuse("site.json is nested too deeply")
    if not isinstance(site, dict) or site.get("format") != FORMAT:
        refuse("site.json is not a Flaskr site export")
    if site.get("version") != FORMAT_VERSION:
        refuse(f"site.json is format version {site.get('version')!r}; this Flaskr reads 1")
    Checker(site, archive).check()
    return site


class Checker:
    """Checks every row of an export against the limits and rules typed content obeys."""

    def __init__(self, site, archive):
        self.site = site
        self.archive_names = set(archive.namelist())
        self.usernames = set()
        self.tag_names = set()

    def check(self):
        """Check each table in turn; refuse the first problem found."""
        self.users = self.keyed("users", self.check_user)
        self.tags = self.keyed("tags", self.check_tag)
        self.posts = self.keyed("posts", self.check_post)
        self.keyed("comments", self.check_comment)
        self.pairs("post_tags", ("post_id", self.posts), ("tag_id", self.tags))
        per_post = {}
        for row in self.site["post_tags"]:
            per_post[row["post_id"]] = per_post.get(row["post_id"], 0) + 1
            if per_post[row["post_id"]] > TAGS_MAX:
                refuse(f"post {row['post_id']} has more than {TAGS_MAX} tags")
        self.pairs("likes", ("post_id", self.posts), ("user_id", self.users))
        for where, row in self.rows("likes"):
            self.time(row, "created", where)
        seen = set()
        for where, row in self.rows("imported"):
            key = tuple(self.text(row, name, where, 1000) for name in ("source", "kind", "key"))
            self.integer(row, "row_id", where)
            if key in seen:
                refuse(f"{where} repeats an earlier row")
            seen.add(key)
        names = set()
        for where, row in self.rows("site_settings"):
            name = self.text(row, "name", where, None)
            if name not in SETTING_NAMES or name in names:
                refuse(f"{where}.name {name!r} is not a site setting, or repeats one")
            names.add(name)
            self.text(row, "value", where, SITE_DESCRIPTION_MAX, required=False)

    def rows(self, table):
        """Yield (where, row) for a table's rows, each a JSON object with the table's columns."""
        rows = self.site.setdefault(table, [] if table in LATER_TABLES else None)
        if not isinstance(rows, list):
            refuse(f"site.json has no list of {table}")
        for number, row in enumerate(rows):
            where = f"{table}[{number}]"
            if isinstance(row, dict):
                for column, value in LATER_COLUMNS.get(table, {}).items():
                    row.setdefault(column, value)
            if not isinstance(row, dict) or set(row) != set(TABLES[table]):
                refuse(f"{where} must have exactly the fields {', '.join(TABLES[table])}")
            yield where, row

    def keyed(self, table, check_row):
        """Check a table whose rows have unique ids; return {id: row}."""
        found = {}
        for where, row in self.rows(table):
            id = self.integer(row, "id", where)
            if id in found:
                refuse(f"{where} repeats id {id}")
            check_row(row, where)
            found[id] = row
        return found

    def pairs(self, table, *references):
        """Check a table of unique (id, id) pairs, each naming an existing row."""
        seen = set()
        for where, row in self.rows(table):
            pair = tuple(self.reference(row, field, rows, where) for field, rows in references)
            if pair in seen:
                refuse(f"{where} repeats an earlier row")
            seen.add(pair)

    def check_user(self, row, where):
        username = self.text(row, "username", where, None)
        if not USERNAME_PATTERN.fullmatch(username):
            refuse(f"{where}.username must be 1 to 32 letters, digits, '_', '-' or '.'")
        # Unique ignoring case, as the database's index has it (usernames are ASCII).
        if username.lower() in self.usernames:
            refuse(f"{where}.username {username!r} is taken by an earlier user")
        self.usernames.add(username.lower())
        self.text(row, "password", where, PASSWORD_MAX)
        if row["role"] not in ROLES:
            refuse(f"{where}.role must be one of {', '.join(ROLES)}")
        for column in ("suspended", "joined", "last_login"):
            self.time(row, column, where, nullable=True)
        self.text(row, "display_name", where, DISPLAY_NAME_MAX, required=False)
        self.text(row, "bio", where, BIO_MAX, required=False)

    def check_tag(self, row, where):
        name = self.text(row, "name", where, TAG_MAX)
        if name != normalize(name) or not TAG_PATTERN.fullmatch(name):
            refuse(f"{where}.name {name!r} is not a tag name as Flaskr stores one")
        if name in self.tag_names:
            refuse(f"{where}.name {name!r} is taken by an earlier tag")
        self.tag_names.add(name)

    def check_post(self, row, where):
        self.reference(row, "author_id", self.users, where)
        self.text(row, "title", where, TITLE_MAX)
        self.text(row, "body", where, BODY_MAX, required=False)
        self.text(row, "image_alt", where, IMAGE_ALT_MAX, required=False)
        if row["state"] not in STATES:
            refuse(f"{where}.state must be one of {', '.join(STATES)}")
        self.time(row, "created", where)
        self.time(row, "updated", where, nullable=True)
        image = row["image"]
        if image is not None:
            pattern = rf"images/{row['id']}\.(?:{IMAGE_EXTENSIONS})"
            if not isinstance(image, str) or not re.fullmatch(pattern, image):
                refuse(f"{where}.image must be null or images/{row['id']}.<png|jpg|gif|webp>")
            if image not in self.archive_names:
                refuse(f"{where}.image {image} is not in the archive")

    def check_comment(self, row, where):
        self.reference(row, "post_id", self.posts, where)
        if row["author_id"] is not None:
            self.reference(row, "author_id", self.users, where)
        if row["author_name"] is not None:
            self.text(row, "author_name", where, AUTHOR_NAME_MAX)
        elif row["author_id"] is None:
            refuse(f"{where} needs an author_id or an author_name")
        if not self.text(row, "body", where, COMMENT_MAX).strip():
            refuse(f"{where}.body must not be blank")
        self.time(row, "created", where)

    @staticmethod
    def integer(row, field, where):
        value = row[field]
        if type(value) is not int or not 0 < value < 2**63:
            refuse(f"{where}.{field} must be a positive integer")
        return value

    def reference(self, row, field, rows, where):
        value = self.integer(row, field, where)
        if value not in rows:
            refuse(f"{where}.{field} names no row ({value})")
        return value

    @staticmethod
    def text(row, field, where, max_length, required=True):
        value = row[field]
        if not isinstance(value, str):
            refuse(f"{where}.{field} must be text")
        if "\x00" in value:
            refuse(f"{where}.{field} must not contain NUL characters")
        if required and not value:
            refuse(f"{where}.{field} must not be empty")
        if max_length is not None and len(value) > max_length:
            refuse(f"{where}.{field} must be at most {max_length} characters")
        return value

    @staticmethod
    def time(row, field, where, nullable=False):
        """Check a time and store it normalised (UTC, 'YYYY-MM-DD HH:MM:SS')."""
        value = row[field]
        if value is None and nullable:
            return
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            refuse(f"{where}.{field} must be a time like 2024-01-31 12:00:00")
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        row[field] = timestamp(moment)


def database_is_empty(db):
    """Whether the database holds no users, posts, tags or import records."""
    query = " UNION ALL ".join(
        f"SELECT 1 FROM {table}" for table in ("user", "post", "tag", "imported")
    )
    return db.execute(f"SELECT NOT EXISTS ({query})").fetchone()[0]


def import_site(path):
    """Load an export zip into the empty database in one transaction; return the site.

    Nothing is written unless everything is: images are re-encoded as uploads are (so an
    archive cannot plant a hostile file) and stored in the same transaction.
    """
    archive = open_archive(path)
    with archive:
        site = load_site(archive)
        init_db()
        with transaction() as db:
            if not database_is_empty(db):
                refuse("the database is not empty; import loads a site into a new one only")
            for post in site["posts"]:
                if post["image"] is not None:
                    post["image"] = store_image(db, archive, post["image"])
            for table, statement in IMPORT_STATEMENTS.items():
                columns = TABLES[table]
                db.executemany(statement, ([row[c] for c in columns] for row in site[table]))
            # The rows keep their ids: new ones must come after them.
            advance_sequences(db)
    return site


def store_image(db, archive, name):
    """Re-encode one image of the archive as an upload would be, store it, return its name."""
    data = read_entry(archive, name, current_app.config["IMAGE_MAX_BYTES"])
    try:
        image = reencode(data)
    except IMAGE_ERRORS:
        refuse(f"{name} is not an image Flaskr accepts")
    return save_image(db, image)


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def export_command(path):
    """Write the whole site (users, posts, tags, comments, likes, images) to a new zip file."""
    site = export_site(path)
    click.echo(
        f"Exported {len(site['users'])} users, {len(site['posts'])} posts,"
        f" {len(site['comments'])} comments and {len(site['likes'])} likes to {path}."
    )
    if site["missing_images"]:
        click.echo(f"  {site['missing_images']} posts' images were missing; left out.")
    click.echo("  The file holds password hashes: keep it private.")


@click.command("import")
@click.argument("path")
@with_appcontext
def import_command(path):
    """Load a site exported by 'export' into this instance's new, empty database."""
    site = import_site(path)
    click.echo(
        f"Imported {len(site['users'])} users, {len(site['posts'])} posts,"
        f" {len(site['comments'])} comments and {len(site['likes'])} likes from {path}."
    )


def init_app(app):
    """Register the export and import commands, WordPress's included."""
    from .wordpress import import_wordpress_command

    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
    app.cli.add_command(import_wordpress_command)
