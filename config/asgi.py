"""ASGI entry point: HTTP through Django, WebSockets through Channels' router."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

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
