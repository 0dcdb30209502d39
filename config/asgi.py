"""ASGI entry point: HTTP through Django, WebSockets through Channels' router."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does before its handler

from config.http_handler import OneHopASGIHandler  # noqa: E402

# Django's handler, with the (synchronous) middleware and views entered in one thread hop.
django_asgi_app = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from carbon.consumers import BrowserOriginValidator  # noqa: E402
from config.body_limit import RequestBodyLimit, daphne_form_parsing_disable  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

daphne_form_parsing_disable()

application = ProtocolTypeRouter(
    {
        # Refuses oversized bodies before Django spools them to disk.
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
