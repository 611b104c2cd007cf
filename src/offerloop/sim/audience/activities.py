"""What a buyer does in a session: page views, traffic sources, checkouts, lessons, community, quizzes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from offerloop.sim.audience.catalog import (
    _BASE_URL,
    _COMMUNITY_SPACES,
    _COURSES,
    _GIFT_NOTES,
    _LESSONS_PER_MODULE,
    _MODULES,
    _QUIZ_QUESTIONS,
    _QUIZ_RESULTS,
    _SHOP_PRODUCTS,
    _SITE,
    _SOCIAL_CAMPAIGNS,
    _STATIC_TITLES,
    _money,
    _Product,
)
from offerloop.sim.audience.clock import _iso
from offerloop.sim.audience.run import _RunState
from offerloop.sim.audience.world import _Drop, _Promo


class _Activities(_RunState):
    """The building blocks of a session, shared by every persona's behaviour."""

    __slots__ = ()

    # ---- pages and traffic ----------------------------------------------------------------------

    def _title(self, path: str) -> str:
        title = _STATIC_TITLES.get(path)
        if title is not None:
            return title
        for p in _SHOP_PRODUCTS:
            if p.path == path:
                return f"{p.name} | {_SITE}"
        if path.startswith("/blog/"):
            return path[6:].replace("-", " ").capitalize() + f" | {_SITE}"
        if path.startswith("/drops/"):
            for d in self.world.drops:
                if d.slug == path[7:]:
                    return f"{d.product.name} | {_SITE}"
        if path.startswith("/members/"):
            return f"Lesson | {_SITE}"
        if path.startswith("/community/"):
            return f"Thread | Community | {_SITE}"
        return _SITE

    def _view(
        self,
        path: str,
        *,
        search: str = "",
        referrer: str | None = None,
        campaign: dict[str, str] | None = None,
    ) -> None:
        title = self._title(path)
        if self.device.app:
            self.page, self.campaign = None, None
            self._emit("screen", {"name": title.split(" | ")[0], "properties": {"path": path}})
        else:
            url = _BASE_URL + path + search
            if referrer is None:
                referrer = self.page["url"] if self.page is not None else ""
            self.page = {"path": path, "referrer": referrer, "search": search, "title": title, "url": url}
            self.campaign = campaign
            self._emit("page", {"name": title.split(" | ")[0], "properties": self.page})
        self._tick(5, 90)

    def _traffic(
        self, source: str, campaign_name: str
    ) -> tuple[list[tuple[str, str]], str, dict[str, str] | None]:
        rng = self.rng
        params: list[tuple[str, str]] = []
        if source == "tiktok":
            src = rng.choice(("tiktok", "tiktok", "TikTok ", "tt"))
            med = rng.choice(("social", "bio_link", "paid_social", "Social"))
            params = [("utm_source", src), ("utm_medium", med), ("utm_campaign", campaign_name)]
            if rng.random() < 0.3:
                params.append(("utm_content", f"v{rng.randint(10**17, 10**18 - 1)}"))
            if med == "paid_social" or rng.random() < 0.15:
                params.append(("ttclid", f"E.C.P.{rng.getrandbits(160):040x}"))
            referrer = "https://www.tiktok.com/" if rng.random() < 0.5 else ""
        elif source == "instagram":
            src = rng.choice(("ig", "instagram", "Instagram"))
            med = rng.choice(("social", "story", "reel", "paid_social", "bio_link"))
            params = [("utm_source", src), ("utm_medium", med), ("utm_campaign", campaign_name)]
            if med == "paid_social" or rng.random() < 0.3:
                params.append(("fbclid", f"PAZXh0bgNhZW0CMTEAAa{rng.getrandbits(192):048x}"))
            referrer = rng.choices(("https://l.instagram.com/", "https://www.instagram.com/", ""), (6, 2, 2))[
                0
            ]
        elif source == "newsletter":
            src = rng.choice(("newsletter", "convertkit"))
            params = [("utm_source", src), ("utm_medium", "email"), ("utm_campaign", campaign_name)]
            referrer = rng.choice(("", "", "https://mail.google.com/"))
        elif source == "google_ads":
            params = [("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", campaign_name)]
            params.append(("gclid", f"Cj0KCQjw{rng.getrandbits(180):045x}"))
            referrer = "https://www.google.com/"
        elif source == "organic":
            referrer = rng.choices(
                ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"), (8, 1, 1)
            )[0]
        else:  # direct
            referrer = ""
        campaign: dict[str, str] | None = None
        if params:
            keys = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name"}
            keys["utm_content"] = "content"
            campaign = {keys[k]: v for k, v in params if k in keys}
        return params, referrer, campaign

    def _land(
        self,
        reason: str,
        path: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
        campaign_name: str | None = None,
    ) -> None:
        """First view of a session: page (web) or screen (app) with the traffic source."""
        plan, rng = self.plan, self.rng
        if self.device.app:
            self._view("/community" if rng.random() < 0.6 else "/members")
            return
        if campaign_name is None:
            campaign_name = rng.choice(_SOCIAL_CAMPAIGNS)
        if reason.startswith("email:"):
            _, idx, link_path = reason.split(":", 2)
            source, campaign_name = "newsletter", self.world.sends[int(idx)].name
            path = path or link_path
        elif reason == "first":
            source = plan.channel
            if source == "site":
                source = rng.choices(("organic", "direct", "google_ads"), (55, 25, 20))[0]
                campaign_name = rng.choice(("brand_search", "launch_lab_search"))
            elif source == "newsletter":
                campaign_name = rng.choice(self.world.sends).name if self.world.sends else "welcome"
        elif reason in ("drop", "promo"):
            social = (
                plan.channel
                if plan.channel in ("tiktok", "instagram")
                else rng.choice(("tiktok", "instagram"))
            )
            source = rng.choices((social, "direct", "newsletter"), (6, 3, 2 if plan.subscriber else 0))[0]
        else:
            other = "instagram" if plan.channel == "tiktok" else "tiktok"
            own = plan.channel if plan.channel in ("tiktok", "instagram") else "organic"
            source = rng.choices(("direct", own, "organic", other), (40, 30, 15, 15))[0]
        if source == "newsletter" and reason not in ("promo", "first") and not reason.startswith("email:"):
            campaign_name = rng.choice(self.world.sends).name if self.world.sends else "weekly"
        params, referrer, campaign = self._traffic(source, campaign_name)
        params.extend(extra)
        search = "?" + urlencode(params) if params else ""
        if path is None:
            path = self._landing_path()
        self._view(path, search=search, referrer=referrer, campaign=campaign)

    def _landing_path(self) -> str:
        """Where a session without a set destination lands (the persona's habit)."""
        raise NotImplementedError

    # ---- activities -----------------------------------------------------------------------------

    def _checkout(
        self,
        product: _Product,
        *,
        complete: bool = True,
        coupon: _Promo | None = None,
        welcome: bool = False,
        gift: str | None = None,
        drop: _Drop | None = None,
    ) -> None:
        rng, plan = self.rng, self.plan
        checkout_id = self._id("chk")
        self._view("/checkout", search=f"?product={product.product_id}")
        currency = plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD", "AUD") else "USD"
        price = product.price_cents
        self._track(
            "Checkout Started",
            {
                "checkout_id": checkout_id,
                "product_id": product.product_id,
                "product_type": product.product_type,
                "value": _money(price),
                "currency": currency,
            },
        )
        self._tick(10, 120)
        self._maybe_identify()
        discount = 0
        props: dict[str, Any] = {}
        if coupon is not None or welcome:
            code = coupon.code if coupon is not None else "WELCOME10"
            pct = coupon.pct if coupon is not None else 10
            discount = price * pct // 100
            self._track(
                "Coupon Applied",
                {
                    "checkout_id": checkout_id,
                    "coupon_id": code.lower(),
                    "coupon_name": code,
                    "discount": _money(discount),
                    "currency": currency,
                },
            )
            self._tick(5, 60)
            props = {"coupon": code, "discount": _money(discount)}
        if not complete:
            return
        order: dict[str, Any] = {
            "order_id": self._id("ord"),
            "checkout_id": checkout_id,
            "product_id": product.product_id,
            "product_name": product.name,
            "product_type": product.product_type,
            "revenue": _money(price - discount),
            "currency": currency,
        }
        order.update(props)
        if drop is not None:
            order["drop_id"] = drop.drop_id
        if gift is not None:
            order["gift"] = True
            order["gift_occasion"] = gift
            order["gift_message"] = rng.choice(_GIFT_NOTES)
        self._track("Order Completed", order)
        if product.product_type == "course" and product not in self.owned:
            self.owned.append(product)
        self._view("/checkout/thank-you", search=f"?order={order['order_id']}")

    def _drop_viewed(self, drop: _Drop) -> None:
        elapsed = max(0, self.t - drop.opens_ms) / (drop.closes_ms - drop.opens_ms)
        remaining = max(0, int(drop.inventory * (1 - min(1.0, elapsed) ** 0.5)))
        self._track(
            "Drop Viewed",
            {
                "drop_id": drop.drop_id,
                "product_id": drop.product.product_id,
                "name": drop.product.name,
                "price": _money(drop.product.price_cents),
                "release_at": _iso(drop.opens_ms),
                "inventory_remaining": remaining,
                "limited_edition": True,
            },
        )
        self._tick(10, 90)

    def _product_viewed(self, product: _Product) -> None:
        self._track(
            "Product Viewed",
            {
                "product_id": product.product_id,
                "name": product.name,
                "product_type": product.product_type,
                "price": _money(product.price_cents),
            },
        )
        self._tick(15, 180)

    def _lessons(self, n: int) -> None:
        rng = self.rng
        if not self.owned:
            self._view(rng.choice(_COURSES).path)
            return
        for _ in range(n):
            course = rng.choice(self.owned)
            done = self.progress.get(course.product_id, 0)
            if done >= _MODULES * _LESSONS_PER_MODULE:
                done = rng.randrange(_MODULES * _LESSONS_PER_MODULE)  # rewatch
                self.progress[course.product_id] = done
            module, lesson = divmod(done, _LESSONS_PER_MODULE)
            module_id = f"{course.product_id}_m{module + 1}"
            lesson_id = f"{module_id}_l{lesson + 1}"
            slug = course.path.rsplit("/", 1)[1]
            self._view(f"/members/{slug}/m{module + 1}/l{lesson + 1}")
            base = {"course_id": course.product_id, "module_id": module_id, "lesson_id": lesson_id}
            self._track("Lesson Started", dict(base, lesson_number=done + 1))
            duration = rng.randint(4, 25) * 60
            self.t += duration * 1000
            if rng.random() < 0.85:
                self._track("Lesson Completed", dict(base, duration_seconds=duration))
                self.progress[course.product_id] = done + 1
                if lesson + 1 == _LESSONS_PER_MODULE:
                    self._track("Module Completed", {"module_id": module_id, "course_id": course.product_id})
            else:
                break

    def _community(self, post: bool, comments: int) -> None:
        rng = self.rng
        self._view("/community")
        if post:
            self._view("/community/new")
            self._tick(60, 600)
            self._track(
                "Community Post Created",
                {
                    "post_id": self._id("post"),
                    "space": rng.choice(_COMMUNITY_SPACES),
                    "characters": rng.randint(20, 1800),
                    "has_media": rng.random() < 0.3,
                },
            )
        for _ in range(comments):
            post_id = self._id("post")
            self._view(f"/community/t/{post_id[5:]}")
            self._tick(20, 240)
            self._track(
                "Community Comment Created",
                {"comment_id": self._id("cmt"), "post_id": post_id, "space": rng.choice(_COMMUNITY_SPACES)},
            )

    def _quiz(self) -> None:
        rng = self.rng
        self.quizzed = True
        self._view("/quiz/creator-type")
        self._tick(60, 300)
        answers = {key: rng.choice(options) for key, options in _QUIZ_QUESTIONS}
        score = rng.randint(20, 100)
        self._track(
            "Quiz Completed",
            {
                "quiz_id": "creator_type_quiz",
                "answers": answers,
                "score": score,
                "result": _QUIZ_RESULTS[score % len(_QUIZ_RESULTS)],
            },
        )
        self._maybe_identify()  # results are emailed: the quiz is an email gate
        self._view("/quiz/creator-type/results")

    def _assessment(self) -> None:
        self.assessed = True
        self._view("/assessment/launch-readiness")
        self._tick(120, 600)
        self._track(
            "Assessment Completed",
            {"assessment_id": "launch_readiness", "score": self.rng.randint(0, 100), "questions": 12},
        )
