"""System checks of how this deployment is configured: `manage.py check --deploy` warns of
settings that are fine on a developer's machine but not in production.

Weak or missing secrets never get this far: settings refuse to load (config.secret_keys).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def carbon_deploy_check(app_configs, **kwargs) -> list[Warning]:
    found: list[Warning] = []
    if settings.CARBON_SECRETS_FROM_FILE:
        found.append(
            Warning(
                "Secrets are generated into var/secrets.json on this machine: "
                + ", ".join(settings.CARBON_SECRETS_FROM_FILE)
                + ".",
                hint="Production sets them in the environment and leaves CARBON_LOCAL unset.",
                id="carbon.W001",
            )
        )
    if settings.SECURE_PROXY_SSL_HEADER and not settings.REST_FRAMEWORK.get("NUM_PROXIES"):
        found.append(
            Warning(
                "A proxy terminates TLS (SECURE_PROXY_SSL_HEADER) but NUM_PROXIES is 0: every "
                "client would look like the proxy to the login throttles and lockouts.",
                hint="Set NUM_PROXIES to the number of proxies in front of the app.",
                id="carbon.W002",
            )
        )
    if not settings.CONTENT_SECURITY_POLICY:
        found.append(
            Warning(
                "No Content-Security-Policy is enforced (CSP_POLICY=off or CSP_REPORT_ONLY=1).",
                hint="Leave CSP_POLICY unset for the built-in policy, or give your own.",
                id="carbon.W003",
            )
        )
    return found
