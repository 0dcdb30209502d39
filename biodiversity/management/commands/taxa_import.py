"""manage.py taxa_import checklist.csv: create or update taxa from a checklist CSV."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from biodiversity.taxa.services import COLUMNS, TaxaImportError, taxa_import


class Command(BaseCommand):
    help = f"Create or update taxa from a CSV with the columns {', '.join(COLUMNS)} (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("csv_path")

    def handle(self, *args, csv_path, **options):
        try:
            text = Path(csv_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {csv_path}: {exc}") from None
        try:
            result = taxa_import(text=text)
        except TaxaImportError as exc:
            raise CommandError("nothing imported: " + "; ".join(exc.problems)) from None
        self.stdout.write(
            f"taxa: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged"
        )
