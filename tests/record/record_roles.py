"""The upstream roles of tests/record (a module of its own: `from conftest import ...` picks
whichever conftest.py pytest loaded last when several test directories are given)."""

# role -> (hba method, password); the recorder/proxy authenticates upstream with these
ROLES = {
    "rec_scram": ("scram-sha-256", "Scram-Secret-9431"),
    "rec_md5": ("md5", "Md5-Secret-2287"),
    "rec_plain": ("password", "Plain-Secret-5512"),
}


def upstream_url(pg, role: str = "rec_scram", dbname: str = "postgres") -> str:
    return f"postgresql://{role}:{ROLES[role][1]}@{pg.host}:{pg.port}/{dbname}"
