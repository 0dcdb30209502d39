"""Settings of bench/http_serving.py's server: the product's settings, plus a bare view (in
bench/http_urls.py) served by the same stack as the baseline. Never the product's."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.http_urls"
