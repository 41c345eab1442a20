"""Named choices of the early-stage program."""

from django.db import models


class CompanyStage(models.TextChoices):
    PRE_SEED = "pre_seed", "Pre-seed"
    SEED = "seed", "Seed"
    SERIES_A = "series_a", "Series A"
    LATER = "later", "Series B or later"
    RESEARCH = "research", "Research group"


class ApplicationStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
