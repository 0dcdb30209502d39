"""The offers as a resident sees them: on sale now, in the request's language, with what is
left, what they may still redeem and whether they can afford each; filters; the picture."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from rewards.offers.images import offer_image_prepare
from tests.carbon.api_helpers import assert_error
from tests.carbon.photo_samples import encode, picture
from tests.rewards.factories import OfferFactory
from tests.rewards.helpers import OFFERS, redeem

pytestmark = pytest.mark.django_db


def test_offers_on_sale_with_what_the_caller_has_left_and_can_afford(funded_api, merchant):
    cheap = OfferFactory(partner=merchant, price_g=100, limit_per_day=2, limit_lifetime=5)
    dear = OfferFactory(partner=merchant, price_g=5000)
    topup = OfferFactory(topup=True, price_g=120)
    OfferFactory(partner=merchant, is_active=False)
    OfferFactory(partner=merchant, valid_from=timezone.now() + timedelta(days=1))
    redeem(funded_api, cheap)

    answer = funded_api.get(OFFERS)

    assert answer.status_code == 200
    rows = {row["id"]: row for row in answer.json()["results"]}
    assert set(rows) == {cheap.pk, dear.pk, topup.pk}
    row = rows[cheap.pk]
    assert (row["kind"], row["price_g"], row["stock_left"]) == ("voucher", 100, 49)
    assert (row["remaining_limit"], row["can_afford"]) == (1, True)
    assert row["partner"] == {"id": merchant.pk, "name": "Green Grocer"}
    assert row["valid_until"] is None and row["image_url"] is None
    assert row["title"] == cheap.title_en and row["terms"] == cheap.terms_en
    assert (rows[dear.pk]["can_afford"], rows[dear.pk]["remaining_limit"]) == (False, None)
    assert rows[topup.pk]["kind"] == "transit_topup"


def test_filters_by_kind_partner_and_affordability(funded_api, merchant):
    cheap = OfferFactory(partner=merchant, price_g=100)
    OfferFactory(partner=merchant, price_g=5000)
    topup = OfferFactory(topup=True, price_g=120)

    def ids(**query):
        answer = funded_api.get(OFFERS, query)
        assert answer.status_code == 200, answer.content
        return {row["id"] for row in answer.json()["results"]}

    assert ids(kind="transit_topup") == {topup.pk}
    assert ids(affordable="true") == {cheap.pk, topup.pk}
    assert ids(partner=merchant.pk, affordable="true") == {cheap.pk}
    for bad in ({"kind": "car"}, {"partner": "x"}, {"partner": "0"}, {"affordable": "maybe"}):
        assert_error(funded_api.get(OFFERS, bad), 400, "invalid")


def test_titles_and_terms_follow_the_request_language(funded_api, offer):
    zh = funded_api.get(OFFERS, HTTP_ACCEPT_LANGUAGE="zh-hans").json()["results"][0]
    en = funded_api.get(OFFERS, HTTP_ACCEPT_LANGUAGE="en").json()["results"][0]

    assert (zh["title"], zh["terms"]) == (offer.title_zh, offer.terms_zh)
    assert (en["title"], en["terms"]) == (offer.title_en, offer.terms_en)


def test_the_picture_is_served_without_metadata_to_anyone(funded_api, api, offer):
    offer.image.save("x.jpg", offer_image_prepare(data=encode(picture(7), "PNG")), save=True)

    url = funded_api.get(OFFERS).json()["results"][0]["image_url"]
    answer = api.get(url)

    assert answer.status_code == 200 and answer["Content-Type"] == "image/jpeg"
    jpeg = b"".join(answer.streaming_content)
    assert jpeg[:2] == b"\xff\xd8" and b"Exif" not in jpeg
    assert_error(api.get(f"/api/v1/rewards/offers/{offer.pk + 1}/image"), 404, "not_found")


def test_an_upload_that_is_no_picture_is_refused_by_the_pipeline(offer):
    from carbon.errors import DomainError

    with pytest.raises(DomainError) as refused:
        offer_image_prepare(data=b"<html>not a picture</html>")
    assert refused.value.code.value == "not_an_image"
    assert isinstance(offer_image_prepare(data=encode(picture(3), "JPEG")), ContentFile)
