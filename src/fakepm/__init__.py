"""fakepm: a fake PostgreSQL server for tests."""
