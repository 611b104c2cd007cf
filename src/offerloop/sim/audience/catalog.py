"""The demo creator's shop as the simulator sees it: products, pages, campaigns, names and user agents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_FIRST_NAMES: Final = (
    "Jane", "Maya", "Liam", "Noah", "Ava", "Sofia", "Mateo", "Aisha", "Priya", "Kenji", "Chloe", "Zoe",
    "Diego", "Fatima", "Elena", "Omar", "Grace", "Leo", "Hana", "Ivy", "Jonah", "Kai", "Lucia", "Nia",
    "Owen", "Ruby", "Sam", "Tariq", "Uma", "Wren", "Yusuf", "Ella", "Marcus", "Riya", "Felix", "Ines",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Doe", "Nguyen", "Garcia", "Smith", "Okafor", "Patel", "Kim", "Silva", "Müller", "Rossi", "Cohen",
    "Tanaka", "Haddad", "Johnson", "Lopez", "Brown", "Novak", "Dubois", "Khan", "Ivanova", "Mensah",
    "O'Brien", "Larsen", "Santos", "Chen", "Reyes", "Walker", "Moreau", "Ahmed", "Fischer",
)  # fmt: skip
_EMAIL_DOMAINS: Final = (
    "gmail.example", "gmail.example", "gmail.example", "icloud.example", "outlook.example",
    "yahoo.example", "proton.example", "example.com", "example.net", "example.org",
)  # fmt: skip
_AREA_CODES: Final = ("212", "415", "312", "737", "206", "646", "303", "617", "213", "404")

_UA_IOS_SAFARI: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
_UA_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.122 Mobile Safari/537.36"
)
_UA_SAMSUNG: Final = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
_UA_MAC_CHROME: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
_UA_MAC_SAFARI: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
_UA_WIN_EDGE: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
_UA_WIN_FIREFOX: Final = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
_UA_TIKTOK_IOS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US "
    "WKWebView/1 BytedanceWebview/d8a21c6"
)
_UA_TIKTOK_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 trill_350103 JsSdk/1.0 "
    "NetType/MOBILE Channel/googleplay AppName/trill app_version/35.1.3 ByteLocale/en"
)
_UA_INSTAGRAM_IOS: Final = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 339.0.3.12.91 "
    "(iPhone15,2; iOS 17_5; en_US; en; scale=3.00; 1179x2556; 617384013)"
)
_UA_INSTAGRAM_ANDROID: Final = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240705.005; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 Instagram 339.0.0.36.112 "
    "Android (34/14; 420dpi; 1080x2400; Google/google; Pixel 7; panther; panther; en_US; 617385510)"
)
_UA_APP: Final = "RowanValeCommunity/2.3.1 (iPhone; iOS 17.5.1; Scale/3.00)"
_BROWSER_UAS: Final = (
    (_UA_IOS_SAFARI, 0.30),
    (_UA_ANDROID, 0.14),
    (_UA_SAMSUNG, 0.06),
    (_UA_MAC_CHROME, 0.18),
    (_UA_MAC_SAFARI, 0.10),
    (_UA_WIN_EDGE, 0.12),
    (_UA_WIN_FIREFOX, 0.10),
)

_LIB_JS: Final = {"name": "analytics.js", "version": "npm:next-1.72.0"}
_LIB_IOS: Final = {"name": "analytics-ios", "version": "4.1.8"}
_LIB_SERVER: Final = {"name": "analytics-python", "version": "2.3.3"}

_BASE_URL: Final = "https://rowanvale.example"
_SITE: Final = "Rowan Vale"


@dataclass(frozen=True, slots=True)
class _Product:
    product_id: str
    name: str
    product_type: str
    price_cents: int
    path: str


_COURSES: Final = (
    _Product("course_launch_lab", "Launch Lab", "course", 29700, "/courses/launch-lab"),
    _Product("course_content_engine", "Content Engine", "course", 19700, "/courses/content-engine"),
    _Product("course_pricing", "Pricing Masterclass", "course", 14900, "/courses/pricing-masterclass"),
)
_PLAYBOOKS: Final = (
    _Product("pb_viral_hooks", "Viral Hooks Playbook", "playbook", 2900, "/playbooks/viral-hooks"),
    _Product("pb_brand_deals", "Brand Deal Playbook", "playbook", 4900, "/playbooks/brand-deals"),
    _Product("pb_newsletter", "Newsletter Growth Playbook", "playbook", 3900, "/playbooks/newsletter-growth"),
)
_COACHING: Final = (
    _Product("coach_strategy_call", "1:1 Strategy Call", "coaching", 25000, "/coaching/strategy-call"),
    _Product("coach_group_6wk", "Group Coaching (6 weeks)", "coaching", 45000, "/coaching/group"),
)
_MEMBERSHIP: Final = _Product(
    "sub_inner_circle_monthly", "Inner Circle Membership", "subscription", 2900, "/membership"
)
_SHOP_PRODUCTS: Final = _COURSES + _PLAYBOOKS + _COACHING
_GIFTABLE: Final = _PLAYBOOKS + _COURSES + _COACHING[:1]
_MODULES: Final = 6
_LESSONS_PER_MODULE: Final = 4

_BLOG: Final = (
    "how-i-got-my-first-1000-subscribers", "pricing-your-first-digital-product", "hooks-that-stop-the-scroll",
    "brand-deal-rate-card", "newsletter-vs-community", "my-content-system", "launch-week-retrospective",
    "creator-burnout-is-a-pricing-problem", "tiktok-to-email-funnel", "what-i-earned-last-quarter",
)  # fmt: skip
_STATIC_TITLES: Final = {
    "/": f"{_SITE} — Courses, Playbooks & Drops",
    "/shop": f"Shop | {_SITE}",
    "/drops": f"Drops | {_SITE}",
    "/gifts": f"Gift Guide | {_SITE}",
    "/membership": f"Inner Circle Membership | {_SITE}",
    "/members": f"Your Library | {_SITE}",
    "/community": f"Community | {_SITE}",
    "/community/new": f"New Post | {_SITE}",
    "/quiz/creator-type": f"What Kind of Creator Are You? | {_SITE}",
    "/quiz/creator-type/results": f"Your Creator Type | {_SITE}",
    "/assessment/launch-readiness": f"Launch Readiness Assessment | {_SITE}",
    "/about": f"About | {_SITE}",
    "/faq": f"FAQ | {_SITE}",
    "/testimonials": f"Wall of Love | {_SITE}",
    "/pricing": f"Pricing | {_SITE}",
    "/links": f"Links | {_SITE}",
    "/checkout": f"Checkout | {_SITE}",
    "/checkout/thank-you": f"Thank You! | {_SITE}",
    "/account/orders": f"Your Orders | {_SITE}",
    "/blog": f"Blog | {_SITE}",
}
_RESEARCH_PATHS: Final = (
    "/about", "/faq", "/testimonials", "/pricing", "/blog", "/community", "/shop",
    *(p.path for p in _SHOP_PRODUCTS),
)  # fmt: skip
_LURKER_PATHS: Final = _RESEARCH_PATHS + tuple(f"/blog/{b}" for b in _BLOG)
_RETURN_PATHS: Final = (*_RESEARCH_PATHS, "/gifts")
_SOCIAL_CAMPAIGNS: Final = ("creator_tips", "bio_link", "launch_lab_fall", "hooks_series", "drop_teaser")

_QUIZ_QUESTIONS: Final = (
    ("platform", ("tiktok", "instagram", "youtube", "newsletter", "podcast")),
    ("audience_size", ("<1k", "1k-10k", "10k-100k", "100k+")),
    ("goal", ("launch_course", "grow_newsletter", "land_brand_deals", "build_community", "sell_merch")),
    ("hours_per_week", ("<5", "5-10", "10-20", "20+")),
    ("budget", ("$0", "<$100", "$100-500", "$500+")),
)
_QUIZ_RESULTS: Final = ("the_educator", "the_entertainer", "the_curator", "the_community_builder")
_COMMUNITY_SPACES: Final = ("wins", "questions", "drops", "feedback", "introductions")
_GIFT_NOTES: Final = ("Happy birthday!", "You've got this :)", "For your launch", "Enjoy!", "", "Love you")
_SUBJECTS: Final = (
    "The hook formula I use every week", "I priced my course wrong (twice)", "New drop this Thursday",
    "3 creators who doubled their list", "What I'd do with 1,000 followers", "Behind the scenes: launch week",
)  # fmt: skip
_PROMO_NAMES: Final = (
    ("flash_sale", "FLASH"), ("summer_send_off", "SUMMER"), ("back_to_school", "BTS"),
    ("labor_day_sale", "LABOR"), ("fall_bundle", "FALL"), ("creator_week", "CREATOR"),
    ("anniversary_sale", "BDAY"), ("early_bird", "EARLY"), ("black_friday", "BF"), ("cyber_monday", "CYBER"),
)  # fmt: skip
_DROP_NAMES: Final = (
    "Studio Hoodie — Batch {n}", "Creator Kit Vol. {n}", "Signed Zine #{n}", "Preset Pack {n}",
    "Enamel Pin Set {n}", "Notion Creator OS v{n}", "Sticker Sheet {n}", "Limited Print No. {n}",
)  # fmt: skip
_DROP_PRICES: Final = (3500, 4900, 4900, 7900, 12000, 2500)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
