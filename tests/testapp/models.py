"""A small library domain with the key types and constraints the demo does not have.

``Shelf`` has a string primary key, ``Book`` an integer one and a PROTECTed foreign
key, a unique field and a check constraint; ``Member`` has a write-only password set
through a model method. The app has no migrations: pytest-django creates its tables.
"""

from __future__ import annotations

import hashlib
import uuid

from django.db import models


class Shelf(models.Model):
    code = models.CharField(primary_key=True, max_length=20)
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)


class Book(models.Model):
    shelf = models.ForeignKey(Shelf, on_delete=models.PROTECT, related_name="books")
    title = models.CharField(max_length=100)
    isbn = models.CharField(max_length=20, unique=True)
    pages = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(pages__lte=10_000), name="book_pages_reasonable")]

    def title_upper(self) -> str:
        return self.title.upper()


class Chapter(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="chapters")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=100)

    class Meta:
        ordering = ["number"]


class Loan(models.Model):
    """Protects the book it lends: deleting a lent book is a 409."""

    book = models.ForeignKey(Book, on_delete=models.PROTECT, related_name="loans")
    borrower = models.CharField(max_length=64)


class Member(models.Model):
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    password_hash = models.CharField(max_length=64, blank=True)

    def set_password(self, raw: str) -> None:
        self.password_hash = hashlib.sha256(raw.encode()).hexdigest()

    def has_password(self) -> bool:
        return bool(self.password_hash)


# -- added for the mapping, plan and routing tests --------------------------------------
# These models only point at each other, so deleting a Shelf or a Book costs what it did.


class Genre(models.Model):
    """Not a node of any test tree: the target of a foreign key that a body may set."""

    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="subgenres")

    @property
    def label(self) -> str:
        return f"#{self.name.lower()}"


class Room(models.Model):
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)


class Exhibit(models.Model):
    """Two foreign keys to Room (a tree must say which one is the parent) and a nullable one to Genre."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="exhibits")
    origin_room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="originating_exhibits"
    )
    genre = models.ForeignKey(Genre, on_delete=models.SET_NULL, null=True, blank=True, related_name="exhibits")
    title = models.CharField(max_length=100)

    @property
    def display_title(self) -> str:
        return f"{self.title} ({self.room_id})"


class BookDetail(models.Model):
    """A book's own detail row (reverse one-to-one): written as a nested object of the book."""

    book = models.OneToOneField(Book, on_delete=models.CASCADE, related_name="detail")
    summary = models.CharField(max_length=200)
    reviewed = models.BooleanField(default=False)


class Ledger(models.Model):
    """Amounts wider than a float holds (19 digits): the aggregate route must add them in exact decimals."""

    tenant_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=19, decimal_places=4)


class Note(models.Model):
    """Owned by the user who wrote it (``owner_field``), stamped on every change (``auto_now``)."""

    tenant_id = models.CharField(max_length=64)
    author_id = models.CharField(max_length=64)
    title = models.CharField(max_length=100)
    body = models.TextField(default="", blank=True)
    pinned = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)


class NoteComment(models.Model):
    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="comments")
    author_id = models.CharField(max_length=64)
    text = models.CharField(max_length=200)
    stars = models.PositiveIntegerField(default=0)


class Account(models.Model):
    """A user table of the test app's own (integer ids); see Reminder."""

    name = models.CharField(max_length=64)


class Reminder(models.Model):
    """Owned through a foreign key to a user table with integer ids."""

    tenant_id = models.CharField(max_length=64)
    owner = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=100)


class Museum(models.Model):
    """The root of a three-level tree whose leaves refer sideways to a row of the middle level."""

    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)


class Gallery(models.Model):
    museum = models.ForeignKey(Museum, on_delete=models.CASCADE, related_name="galleries")
    name = models.CharField(max_length=100)


class Artwork(models.Model):
    """``loaned_from`` must be a gallery of the artwork's own museum (references stay inside the parents)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="artworks")
    loaned_from = models.ForeignKey(Gallery, on_delete=models.SET_NULL, null=True, blank=True, related_name="loans")
    title = models.CharField(max_length=100)


class Playlist(models.Model):
    """A plain many-to-many (Django's own through table) to Genre, which is no node of a tree."""

    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    genres = models.ManyToManyField(Genre, related_name="playlists", blank=True)


#: Titles the default manager of Episode leaves out; tests change it between reads.
HIDDEN_EPISODE_TITLES = ["unreleased"]


class ReleasedEpisodes(models.Manager["Episode"]):
    """A default manager that filters with a value of its own, read anew for every query."""

    def get_queryset(self) -> models.QuerySet[Episode]:
        return super().get_queryset().exclude(title=HIDDEN_EPISODE_TITLES[0])


class Episode(models.Model):
    """A playlist's episodes, behind a default manager with a parameter (``djfapi.orm.statements``)."""

    playlist = models.ForeignKey(Playlist, on_delete=models.CASCADE, related_name="episodes")
    title = models.CharField(max_length=100)

    objects = ReleasedEpisodes()


class Journal(models.Model):
    """Its ``save()`` writes a first entry: rows a create did not write (``djfapi.orm.side_effects``)."""

    tenant_id = models.CharField(max_length=64)
    title = models.CharField(max_length=100)

    def save(self, *args: object, **kwargs: object) -> None:
        creating = self._state.adding
        super().save(*args, **kwargs)  # type: ignore[arg-type]
        if creating:
            JournalEntry.objects.create(journal=self, text="opened")


class JournalEntry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    journal = models.ForeignKey(Journal, on_delete=models.CASCADE, related_name="entries")
    text = models.CharField(max_length=100)
