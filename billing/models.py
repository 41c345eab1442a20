"""Prices per GPU-hour and, later, what customers are billed."""

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from clusters.choices import LeaseKind


class PriceBookEntry(models.Model):
    """The price of a GPU-hour for a lease kind (in one region, or everywhere) from a date on."""

    kind = models.CharField(max_length=20, choices=LeaseKind)
    region = models.ForeignKey(
        "clusters.Region",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="prices",
        help_text="Empty: the price everywhere without a regional price.",
    )
    price_per_gpu_hour = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "price book entries"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "region", "effective_from"],
                name="price_once_per_kind_region_instant",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["kind", "effective_from"], name="price_kind_from")]

    def __str__(self) -> str:
        where = self.region.code if self.region_id else "all regions"
        return f"{self.kind} {where} ${self.price_per_gpu_hour}/GPU-h from {self.effective_from:%Y-%m-%d}"
