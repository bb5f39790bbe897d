"""ORM create / update / get / filter inside transaction.atomic, then a second transaction.

Prints one JSON object on stdout: what the ORM read back, and how each transaction ended
("committed", or the SQLSTATE its COMMIT failed with)."""

import json
from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F

from shop.models import Author, Book


def _sqlstate(e):
    cause = e.__cause__
    return getattr(cause, "sqlstate", None) or getattr(getattr(cause, "diag", None), "sqlstate", None)


class Command(BaseCommand):
    help = "exercise the ORM in transactions"

    def handle(self, *args, **options):
        out = {}
        try:
            with transaction.atomic():
                ada = Author.objects.create(name="Ada", born=date(1815, 12, 10))
                notes = Book.objects.create(author=ada, title="Notes", price=Decimal("12.50"), tags=["math"])
                Book.objects.create(author=ada, title="Letters", price=Decimal("7.00"), in_stock=False)
                Book.objects.filter(pk=notes.pk).update(price=F("price") + 1)
                try:
                    with transaction.atomic():  # a savepoint, rolled back by the duplicate
                        Author.objects.create(name="Ada")
                except IntegrityError as e:
                    out["duplicate"] = _sqlstate(e)
                notes.refresh_from_db()
                out["updated_price"] = str(notes.price)
                out["get"] = Author.objects.get(name="Ada").born.isoformat()
                out["in_stock"] = list(Book.objects.filter(author__name="Ada", in_stock=True)
                                       .values_list("title", flat=True))
            out["first"] = "committed"
        except OperationalError as e:
            out["first"] = _sqlstate(e)
        try:
            with transaction.atomic():
                grace = Author.objects.create(name="Grace")
                Book.objects.create(author=grace, title="Compilers", price=Decimal("30.00"), tags=["cs", "navy"])
            out["second"] = "committed"
        except OperationalError as e:
            out["second"] = _sqlstate(e)
        out["authors"] = sorted(Author.objects.values_list("name", flat=True))
        out["book_count"] = Book.objects.count()
        out["tagged_cs"] = list(Book.objects.filter(tags__contains=["cs"]).values_list("title", flat=True))
        self.stdout.write(json.dumps(out))
