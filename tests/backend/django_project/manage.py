#!/usr/bin/env python
"""manage.py of the tiny Django project tests/backend/test_backend_django.py runs through fakepm.

The database is whatever FAKEPM_DJANGO_DSN names (a FakePostgres in backend mode)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
