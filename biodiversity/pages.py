"""The app's pages for people (not the API): the public map."""

from django.urls import path

from biodiversity.maps.page import map_page

app_name = "biodiversity-pages"

urlpatterns = [path("map/", map_page, name="map")]
