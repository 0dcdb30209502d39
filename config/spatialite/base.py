"""Django's SpatiaLite backend, with the busy timeout that settings ask for actually kept.

Loading mod_spatialite resets SQLite's busy timeout to 5 s on the connection, whatever the
`timeout` option said; a burst of writers then got "database is locked" after 5 s of
waiting for the write lock. The timeout is set again once the extension is loaded.
"""

from django.contrib.gis.db.backends.spatialite import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        timeout_ms = int(float(conn_params.get("timeout", 5)) * 1000)
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        return conn
