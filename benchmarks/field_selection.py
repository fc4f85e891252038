"""What ``?fields=`` saves on a page (``python -m benchmarks.field_selection``).

The demo on a fresh SQLite database: 200 companies, each with 10 departments and 10
cost centres. The same page (``GET /companies?limit=200``) is read in-process through
FastAPI's ``TestClient`` in four shapes — everything, ``?fields=id,name``,
``?fields=name,departments.name``, ``?fields=id,costcenters`` — in interleaved rounds
(so machine noise hits every shape alike), each round timing ``--requests`` requests.
Printed per shape: body size, median milliseconds per request
over the rounds with their min-max spread, and the ratio to the full page measured in
the same run. Compare ratios, not absolute figures across machines; other processes on
the machine show up as spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SHAPES = {
    "everything": "",
    "id,name": "&fields=id,name",
    "name,departments.name": "&fields=name,departments.name",
    "id,costcenters": "&fields=id,costcenters",
}


def _setup(database: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment

    companies = Company.objects.bulk_create(Company(tenant_id="bench", name=f"Company {i:03}") for i in range(200))
    CompanyDepartment.objects.bulk_create(
        CompanyDepartment(company=c, name=f"Department {d}") for c in companies for d in range(10)
    )
    CompanyCostcenter.objects.bulk_create(
        CompanyCostcenter(company=c, code=f"C{d}", name=f"Centre {d}") for c in companies for d in range(10)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="requests per shape and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        _setup(Path(directory) / "bench.sqlite3")
        from fastapi.testclient import TestClient

        from testproject.app import create_app
        from testproject.tokens import mint_token

        headers = {
            "Authorization": "Bearer " + mint_token(tenant="bench", user="b", scopes=["business.companies.read.any"])
        }
        timings: dict[str, list[float]] = {shape: [] for shape in SHAPES}
        with TestClient(create_app()) as client:
            # (the query counts per shape, 3/1/2/2, are asserted in tests/test_field_selection.py)
            sizes = {
                shape: len(client.get(f"/companies?limit=200{q}", headers=headers).content)
                for shape, q in SHAPES.items()
            }
            for _ in range(args.rounds):
                for shape, query in SHAPES.items():
                    start = time.perf_counter()
                    for _ in range(args.requests):
                        client.get(f"/companies?limit=200{query}", headers=headers)
                    timings[shape].append((time.perf_counter() - start) * 1000 / args.requests)
        baseline = statistics.median(timings["everything"])
        print(f"{'shape':<24}{'bytes':>10}{'median ms':>11}{'spread ms':>16}{'ratio':>7}")
        for shape, values in timings.items():
            median = statistics.median(values)
            spread = f"{min(values):.1f}-{max(values):.1f}"
            print(f"{shape:<24}{sizes[shape]:>10}{median:>11.1f}{spread:>16}{median / baseline:>7.2f}")


if __name__ == "__main__":
    main()
