"""The app's own tests, run by `manage.py test shop` (Django makes and drops test_<NAME>)."""

from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.test import TestCase, TransactionTestCase

from shop.models import Author, Book


class BookTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ada = Author.objects.create(name="Ada")
        Book.objects.create(author=cls.ada, title="Notes", price=Decimal("12.50"), tags=["math"])

    def test_database_is_the_test_database(self):
        self.assertTrue(connection.settings_dict["NAME"].startswith("test_"))
        with connection.cursor() as c:
            c.execute("SELECT current_database()")
            self.assertEqual(c.fetchone()[0], connection.settings_dict["NAME"])

    def test_filter_and_update(self):
        Book.objects.filter(title="Notes").update(price=Decimal("1.00"))
        self.assertEqual(Book.objects.get(title="Notes").price, Decimal("1.00"))
        self.assertEqual(list(self.ada.books.values_list("title", flat=True)), ["Notes"])

    def test_unique_violation_rolls_back_to_the_savepoint(self):
        with self.assertRaises(IntegrityError):
            with transaction.atomic():
                Author.objects.create(name="Ada")
        self.assertEqual(Author.objects.count(), 1)

    def test_check_constraint(self):
        with self.assertRaises(IntegrityError):
            with transaction.atomic():
                Book.objects.create(author=self.ada, title="Debt", price=Decimal("-1"))


class CommitTests(TransactionTestCase):
    def test_commit_is_visible(self):
        with transaction.atomic():
            Author.objects.create(name="Grace")
        self.assertEqual(list(Author.objects.values_list("name", flat=True)), ["Grace"])
