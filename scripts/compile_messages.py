"""Compile locale/*/LC_MESSAGES/django.po into the .mo Django reads, without GNU gettext
(where it is installed, `manage.py compilemessages` does the same). The .mo files are
committed, so a fresh machine serves the translations with neither tool;
tests/carbon/test_localisation.py fails while a .mo is older than its .po."""

from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"

if __name__ == "__main__":
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        polib.pofile(str(po_path)).save_as_mofile(str(po_path.with_suffix(".mo")))
        print(f"compiled {po_path.relative_to(LOCALE.parent)}")
