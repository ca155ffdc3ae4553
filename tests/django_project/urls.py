"""URLs of the test project: a protected ``/whoami`` and a public ``/health`` (same view)."""

from __future__ import annotations

from django.urls import path

from tests.django_project.views import whoami

urlpatterns = [path("whoami", whoami), path("health", whoami)]
