"""Routes of the public notice board."""

urlpatterns: list = []
