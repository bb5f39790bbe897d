from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)
    born = models.DateField(null=True)

    def __str__(self):
        return self.name


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    tags = models.JSONField(default=list)
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["title"])]
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="book_price_not_negative")]
