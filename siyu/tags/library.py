"""The built-in tag library: parameterised families a Chinese brand operator plans with.

Keys are stable snake_case; a family's windows, channels and categories are parameters, so
the library is generated, not typed out. ``builtin_tags()`` returns it in dependency-safe
order (the compiler orders anyway).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from siyu.core import geo
from siyu.tags.definitions import (
    Aggregate,
    Cadence,
    Category,
    EventFilter,
    Formula,
    Function,
    TagDefinition,
    Trait,
    ValueType,
)

WINDOWS = (7, 30, 90, 180, 365)
DEFAULT_CATEGORIES = ("skincare", "makeup", "bodycare", "fragrance")
CATEGORY_ZH = {"skincare": "护肤", "makeup": "彩妆", "bodycare": "身体护理", "fragrance": "香氛"}
MESSAGE_CHANNELS = ("wecom", "sms", "email", "miniprogram")
CHANNEL_ZH = {
    "wecom": "企业微信",
    "sms": "短信",
    "email": "邮件",
    "miniprogram": "小程序",
    "web": "网页",
    "app": "App",
    "store": "门店",
    "crm": "CRM",
}
ORDER = ("order_paid",)
REFUND = ("refund",)
# What counts as the person being active (not what the brand did to them).
ACTIVE_EVENTS = (
    "login",
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "checkout",
    "order_paid",
    "review",
    "share",
    "checkin",
    "coupon_claim",
    "coupon_use",
    "message_clicked",
    "wecom_add_contact",
    "group_join",
    "register",
)

RFM_SEGMENTS = (
    "重要价值客户",
    "重要发展客户",
    "重要保持客户",
    "重要挽留客户",
    "一般价值客户",
    "一般发展客户",
    "一般保持客户",
    "一般挽留客户",
)
LIFECYCLE_STAGES = ("new", "growing", "mature", "silent", "churned", "returned", "prospect")
TIERS = ("钻石", "蓝宝石", "白金", "普通", "潜在")


def _tag(
    key: str,
    zh: str,
    en: str,
    category: Category,
    value_type: ValueType,
    compute: Any,
    **extra: Any,
) -> TagDefinition:
    return TagDefinition(
        key=key,
        name_zh=zh,
        name_en=en,
        category=category,
        value_type=value_type,
        compute=compute,
        owner="siyu",
        **extra,
    )


def agg(
    key: str,
    zh: str,
    en: str,
    category: Category,
    value_type: ValueType,
    events: Sequence[str],
    function: Function,
    *,
    field: str | None = None,
    window: int | None = None,
    where: Sequence[EventFilter] = (),
    top: int = 1,
    before: int | None = None,
    **extra: Any,
) -> TagDefinition:
    spec = Aggregate(
        events=tuple(events),
        function=function,
        field=field,
        window_days=window,
        before_days=before,
        where=tuple(where),
        top=top,
    )
    return _tag(key, zh, en, category, value_type, spec, **extra)


def formula(
    key: str,
    zh: str,
    en: str,
    category: Category,
    value_type: ValueType,
    expression: str,
    **extra: Any,
) -> TagDefinition:
    return _tag(key, zh, en, category, value_type, Formula(expression=expression), **extra)


def trait(
    key: str,
    zh: str,
    en: str,
    name: str,
    *,
    cast: str = "string",
    rule: str = "latest",
    **extra: Any,
) -> TagDefinition:
    value_type = {"string": ValueType.STRING, "date": ValueType.DATE, "number": ValueType.NUMBER}
    spec = Trait(trait=name, cast=cast, rule=rule)
    return _tag(key, zh, en, Category.BASIC, value_type[cast], spec, cadence=Cadence.DAILY, **extra)


B, BH, V, L, P, R = (
    Category.BASIC,
    Category.BEHAVIOUR,
    Category.VALUE,
    Category.LIFECYCLE,
    Category.PREFERENCE,
    Category.RISK,
)
NUM, BOOL, ENUM, DATE, LIST, STR = (
    ValueType.NUMBER,
    ValueType.BOOL,
    ValueType.ENUM,
    ValueType.DATE,
    ValueType.LIST,
    ValueType.STRING,
)


def demographics() -> Iterator[TagDefinition]:
    yield trait("gender", "性别", "Gender", "gender")
    yield trait("birthday", "生日", "Birthday", "birthday", cast="date", rule="first")
    yield trait("city", "城市", "City", "city")
    yield formula("province", "省份", "Province", B, STR, "province_of(city)")
    yield formula(
        "city_tier", "城市等级", "City tier", B, ENUM, "city_tier_of(city)", values=geo.CITY_TIERS
    )
    yield formula("age", "年龄", "Age", B, NUM, "age(birthday)", unit="岁")
    yield formula(
        "age_band",
        "年龄段",
        "Age band",
        B,
        ENUM,
        "bucket(age, [18, 25, 30, 35, 40, 50], "
        "['18岁以下', '18-24岁', '25-29岁', '30-34岁', '35-39岁', '40-49岁', '50岁及以上'])",
        values=("18岁以下", "18-24岁", "25-29岁", "30-34岁", "35-39岁", "40-49岁", "50岁及以上"),
    )
    yield formula(
        "generation",
        "世代",
        "Generation",
        B,
        ENUM,
        "bucket(year(birthday), [1970, 1980, 1990, 1995, 2000, 2005], "
        "['60后及以前', '70后', '80后', '90后', '95后', '00后', '05后'])",
        values=("60后及以前", "70后", "80后", "90后", "95后", "00后", "05后"),
    )
    yield formula("birthday_month", "生日月份", "Birthday month", B, NUM, "month(birthday)")
    yield formula(
        "days_to_birthday", "距生日天数", "Days to birthday", B, NUM, "days_to_birthday(birthday)"
    )
    yield formula(
        "is_birthday_month",
        "本月生日",
        "Birthday this month",
        B,
        BOOL,
        "month(birthday) == month(today)",
    )
    yield agg(
        "registration_channel",
        "注册渠道",
        "Registration channel",
        B,
        STR,
        ["register"],
        Function.FIRST_VALUE,
        field="channel",
    )
    yield agg(
        "registration_scene",
        "注册场景值",
        "Registration scene",
        B,
        STR,
        ["register"],
        Function.FIRST_VALUE,
        field="scene",
    )
    yield agg(
        "registered_date", "注册日期", "Registration date", B, DATE, ["register"], Function.FIRST_TS
    )
    yield formula(
        "is_registered", "已注册会员", "Registered member", B, BOOL, "registered_date is not None"
    )
    yield formula(
        "days_since_registration",
        "注册天数",
        "Days since registration",
        L,
        NUM,
        "days_since(registered_date)",
    )
    yield agg(
        "first_touch_source",
        "首次触达来源",
        "First-touch source",
        B,
        STR,
        ACTIVE_EVENTS,
        Function.FIRST_VALUE,
        field="utm_source",
    )
    yield agg(
        "first_touch_channel",
        "首次触达渠道",
        "First-touch channel",
        B,
        STR,
        ACTIVE_EVENTS,
        Function.FIRST_VALUE,
        field="channel",
    )
    yield agg(
        "last_active_channel",
        "最近活跃端",
        "Last active channel (platform)",
        BH,
        STR,
        ACTIVE_EVENTS,
        Function.LAST_VALUE,
        field="channel",
    )


def purchases(categories: Sequence[str]) -> Iterator[TagDefinition]:
    for w in WINDOWS:
        yield agg(
            f"orders_count_{w}d",
            f"近{w}天订单数",
            f"Orders, last {w} days",
            V,
            NUM,
            ORDER,
            Function.COUNT,
            window=w,
            unit="单",
        )
        yield agg(
            f"orders_amount_{w}d",
            f"近{w}天消费金额",
            f"Order amount, last {w} days",
            V,
            NUM,
            ORDER,
            Function.SUM,
            field="amount",
            window=w,
            unit="元",
        )
        yield agg(
            f"refunds_count_{w}d",
            f"近{w}天退款次数",
            f"Refunds, last {w} days",
            R,
            NUM,
            REFUND,
            Function.COUNT,
            window=w,
        )
        yield agg(
            f"refund_amount_{w}d",
            f"近{w}天退款金额",
            f"Refund amount, last {w} days",
            R,
            NUM,
            REFUND,
            Function.SUM,
            field="amount",
            window=w,
            unit="元",
        )
        yield formula(
            f"net_amount_{w}d",
            f"近{w}天净消费金额",
            f"Net amount (after refunds), last {w} days",
            V,
            NUM,
            f"orders_amount_{w}d - refund_amount_{w}d",
            unit="元",
        )
    for w in (90, 180, 365):
        yield formula(
            f"aov_{w}d",
            f"近{w}天客单价",
            f"Average order value, last {w} days",
            V,
            NUM,
            f"round(ratio(orders_amount_{w}d, orders_count_{w}d), 2)",
            unit="元",
        )
    yield formula(
        "aov_change_90d",
        "客单价变化(近90天对近365天)",
        "AOV change, 90 days vs 365 days",
        V,
        NUM,
        "round(ratio(aov_90d, aov_365d) - 1, 4)",
    )
    yield agg(
        "max_order_amount_365d",
        "近365天最高单笔金额",
        "Largest order, last 365 days",
        V,
        NUM,
        ORDER,
        Function.MAX,
        field="amount",
        window=365,
        unit="元",
    )
    yield agg("orders_count_all", "累计订单数", "Orders, all time", V, NUM, ORDER, Function.COUNT)
    yield agg(
        "orders_amount_all",
        "累计消费金额",
        "Order amount, all time",
        V,
        NUM,
        ORDER,
        Function.SUM,
        field="amount",
        unit="元",
    )
    yield agg(
        "refund_amount_all",
        "累计退款金额",
        "Refund amount, all time",
        R,
        NUM,
        REFUND,
        Function.SUM,
        field="amount",
    )
    yield agg(
        "first_order_amount",
        "首单金额",
        "First order amount",
        V,
        NUM,
        ORDER,
        Function.FIRST_VALUE,
        field="amount",
        unit="元",
    )
    yield agg(
        "last_order_amount",
        "最近一单金额",
        "Last order amount",
        V,
        NUM,
        ORDER,
        Function.LAST_VALUE,
        field="amount",
        unit="元",
    )
    yield agg("first_order_date", "首单日期", "First order date", V, DATE, ORDER, Function.FIRST_TS)
    yield agg(
        "last_order_date", "最近下单日期", "Last order date", V, DATE, ORDER, Function.LAST_TS
    )
    yield agg(
        "last_order_date_before_30d",
        "30天前最近下单日期",
        "Last order date before the last 30 days",
        V,
        DATE,
        ORDER,
        Function.LAST_TS,
        before=30,
    )
    yield agg(
        "days_since_last_order",
        "距最近下单天数",
        "Days since last order",
        V,
        NUM,
        ORDER,
        Function.DAYS_SINCE_LAST,
        unit="天",
    )
    yield agg(
        "days_since_first_order",
        "距首单天数",
        "Days since first order",
        V,
        NUM,
        ORDER,
        Function.DAYS_SINCE_FIRST,
        unit="天",
    )
    yield agg(
        "first_order_category",
        "首单品类",
        "First order category",
        P,
        STR,
        ORDER,
        Function.FIRST_VALUE,
        field="category",
    )
    yield agg(
        "last_order_category",
        "最近一单品类",
        "Last order category",
        P,
        STR,
        ORDER,
        Function.LAST_VALUE,
        field="category",
    )
    yield agg(
        "top_category_365d",
        "偏好品类",
        "Favourite category, last 365 days",
        P,
        STR,
        ORDER,
        Function.TOP,
        field="category",
        window=365,
    )
    yield agg(
        "top3_categories_365d",
        "偏好品类TOP3",
        "Top 3 categories, last 365 days",
        P,
        LIST,
        ORDER,
        Function.TOP,
        field="category",
        window=365,
        top=3,
    )
    yield agg(
        "top_sku_365d",
        "最常购买商品",
        "Most bought product, last 365 days",
        P,
        STR,
        ORDER,
        Function.TOP,
        field="sku",
        window=365,
    )
    yield agg(
        "categories_bought_365d",
        "近365天购买品类数",
        "Categories bought, last 365 days",
        P,
        NUM,
        ORDER,
        Function.COUNT_DISTINCT,
        field="category",
        window=365,
    )
    yield agg(
        "skus_bought_365d",
        "近365天购买商品数",
        "Products bought, last 365 days",
        P,
        NUM,
        ORDER,
        Function.COUNT_DISTINCT,
        field="sku",
        window=365,
    )
    yield agg(
        "items_365d",
        "近365天购买件数",
        "Items bought, last 365 days",
        V,
        NUM,
        ORDER,
        Function.SUM,
        field="quantity",
        window=365,
        unit="件",
    )
    yield formula(
        "avg_repurchase_interval",
        "平均回购周期",
        "Average repurchase interval",
        V,
        NUM,
        "round(ratio(days_between(first_order_date, last_order_date), orders_count_all - 1), 1)",
        unit="天",
    )
    yield formula("is_repurchaser", "复购客户", "Repeat buyer", V, BOOL, "orders_count_all >= 2")
    yield formula(
        "repurchases_365d",
        "近365天复购次数",
        "Repurchases, last 365 days",
        V,
        NUM,
        "greatest(orders_count_365d - 1, 0)",
    )
    yield formula(
        "ltv_365d",
        "365天实际LTV",
        "Realised LTV, last 365 days",
        V,
        NUM,
        "net_amount_365d",
        unit="元",
    )
    yield formula(
        "spending_power",
        "消费力",
        "Spending power",
        V,
        ENUM,
        "case(orders_count_all == 0, '未消费', net_amount_365d >= 3000, '高', "
        "net_amount_365d >= 800, '中', '低')",
        values=("高", "中", "低", "未消费"),
    )
    yield formula(
        "high_value_potential",
        "高价值潜力",
        "High-value potential",
        V,
        BOOL,
        "orders_count_90d >= 2 and aov_90d >= 300 and net_amount_365d < 5000",
    )
    for category in categories:
        zh = CATEGORY_ZH.get(category, category)
        on = [EventFilter(field="category", op="=", value=category)]
        yield agg(
            f"orders_count_{category}",
            f"{zh}订单数",
            f"{category} orders, all time",
            P,
            NUM,
            ORDER,
            Function.COUNT,
            where=on,
        )
        yield agg(
            f"first_order_date_{category}",
            f"{zh}首购日期",
            f"First {category} order",
            P,
            DATE,
            ORDER,
            Function.FIRST_TS,
            where=on,
        )
        yield agg(
            f"last_order_date_{category}",
            f"{zh}最近购买日期",
            f"Last {category} order",
            P,
            DATE,
            ORDER,
            Function.LAST_TS,
            where=on,
        )
        yield formula(
            f"repurchase_interval_{category}",
            f"{zh}回购周期",
            f"{category} repurchase interval",
            P,
            NUM,
            f"round(ratio(days_between(first_order_date_{category}, last_order_date_{category}), "
            f"orders_count_{category} - 1), 1)",
            unit="天",
        )


def promotions() -> Iterator[TagDefinition]:
    coupon = [EventFilter(field="properties.coupon_id", op="is not null")]
    promo = [EventFilter(field="properties.promo", op="is not null")]
    yield agg(
        "coupon_orders_365d",
        "近365天用券订单数",
        "Orders with a coupon, last 365 days",
        P,
        NUM,
        ORDER,
        Function.COUNT,
        window=365,
        where=coupon,
    )
    yield formula(
        "coupon_order_share_365d",
        "用券订单占比",
        "Share of orders with a coupon",
        P,
        NUM,
        "round(ratio(coupon_orders_365d, orders_count_365d), 4)",
    )
    yield agg(
        "promo_orders_365d",
        "近365天活动订单数",
        "Orders in a promotion, last 365 days",
        P,
        NUM,
        ORDER,
        Function.COUNT,
        window=365,
        where=promo,
    )
    yield formula(
        "promo_order_share_365d",
        "活动订单占比",
        "Share of orders in a promotion",
        P,
        NUM,
        "round(ratio(promo_orders_365d, orders_count_365d), 4)",
    )
    yield agg(
        "avg_discount_365d",
        "平均优惠金额",
        "Average discount, last 365 days",
        P,
        NUM,
        ORDER,
        Function.AVG,
        field="properties.discount",
        window=365,
        unit="元",
    )
    yield formula(
        "discount_depth_365d",
        "优惠力度",
        "Discount depth (discount / order value)",
        P,
        NUM,
        "round(ratio(avg_discount_365d, aov_365d), 4)",
    )
    yield formula(
        "price_sensitivity",
        "价格敏感度",
        "Price sensitivity",
        P,
        ENUM,
        "case(orders_count_365d == 0, None, "
        "coupon_order_share_365d + promo_order_share_365d >= 0.8, '高', "
        "coupon_order_share_365d + promo_order_share_365d >= 0.3, '中', '低')",
        values=("高", "中", "低"),
    )
    for w in (30, 90):
        yield agg(
            f"coupon_claims_{w}d",
            f"近{w}天领券次数",
            f"Coupons claimed, last {w} days",
            P,
            NUM,
            ["coupon_claim"],
            Function.COUNT,
            window=w,
        )
        yield agg(
            f"coupon_uses_{w}d",
            f"近{w}天用券次数",
            f"Coupons used, last {w} days",
            P,
            NUM,
            ["coupon_use"],
            Function.COUNT,
            window=w,
        )
    yield formula(
        "coupon_use_rate_90d",
        "近90天核销率",
        "Coupon redemption rate, last 90 days",
        P,
        NUM,
        "round(ratio(coupon_uses_90d, coupon_claims_90d), 4)",
    )


def activity() -> Iterator[TagDefinition]:
    yield agg(
        "last_active_date",
        "最近活跃日期",
        "Last active date",
        BH,
        DATE,
        ACTIVE_EVENTS,
        Function.LAST_TS,
        cadence=Cadence.REALTIME,
    )
    yield agg(
        "days_since_last_active",
        "距最近活跃天数",
        "Days since last active",
        BH,
        NUM,
        ACTIVE_EVENTS,
        Function.DAYS_SINCE_LAST,
        unit="天",
        cadence=Cadence.REALTIME,
    )
    for w in (7, 30, 90, 365):
        yield agg(
            f"active_days_{w}d",
            f"近{w}天活跃天数",
            f"Active days, last {w} days",
            BH,
            NUM,
            ACTIVE_EVENTS,
            Function.ACTIVE_DAYS,
            window=w,
            unit="天",
        )
    for w in (7, 30, 90):
        yield agg(
            f"logins_{w}d",
            f"近{w}天登录次数",
            f"Logins, last {w} days",
            BH,
            NUM,
            ["login"],
            Function.COUNT,
            window=w,
        )
        yield agg(
            f"page_views_{w}d",
            f"近{w}天浏览页面数",
            f"Page views, last {w} days",
            BH,
            NUM,
            ["page_view"],
            Function.COUNT,
            window=w,
        )
        yield agg(
            f"product_views_{w}d",
            f"近{w}天浏览商品数",
            f"Product views, last {w} days",
            BH,
            NUM,
            ["product_view"],
            Function.COUNT,
            window=w,
        )
    yield agg(
        "sessions_30d",
        "近30天访问次数",
        "Visits (distinct day × channel), last 30 days",
        BH,
        NUM,
        ("login", "page_view", "product_view", "search"),
        Function.COUNT_DISTINCT,
        field="properties.session_id",
        window=30,
        description="Distinct session ids sent by the SDK (properties.session_id).",
    )
    yield agg(
        "days_since_last_login",
        "距最近登录天数",
        "Days since last login",
        R,
        NUM,
        ["login"],
        Function.DAYS_SINCE_LAST,
        unit="天",
    )
    yield formula(
        "browse_depth_30d",
        "浏览深度",
        "Product views per active day, last 30 days",
        BH,
        NUM,
        "round(ratio(product_views_30d, active_days_30d), 2)",
    )
    for w in (30, 90):
        yield agg(
            f"searches_{w}d",
            f"近{w}天搜索次数",
            f"Searches, last {w} days",
            BH,
            NUM,
            ["search"],
            Function.COUNT,
            window=w,
        )
    yield agg(
        "top_search_keyword_90d",
        "常搜关键词",
        "Most searched keyword, last 90 days",
        P,
        STR,
        ["search"],
        Function.TOP,
        field="properties.keyword",
        window=90,
    )
    yield agg(
        "top3_search_keywords_90d",
        "常搜关键词TOP3",
        "Top 3 search keywords, last 90 days",
        P,
        LIST,
        ["search"],
        Function.TOP,
        field="properties.keyword",
        window=90,
        top=3,
    )
    yield agg(
        "top_viewed_category_90d",
        "浏览偏好品类",
        "Most viewed category, last 90 days",
        P,
        STR,
        ["product_view"],
        Function.TOP,
        field="category",
        window=90,
    )
    yield agg(
        "preferred_active_channel_90d",
        "常用端",
        "Most used channel, last 90 days",
        P,
        STR,
        ACTIVE_EVENTS,
        Function.TOP,
        field="channel",
        window=90,
    )
    yield agg(
        "active_channels_90d",
        "近90天活跃端数",
        "Channels used, last 90 days",
        BH,
        NUM,
        ACTIVE_EVENTS,
        Function.COUNT_DISTINCT,
        field="channel",
        window=90,
    )
    yield agg(
        "active_hour_90d",
        "常活跃时段",
        "Most active hour of day, last 90 days",
        P,
        STR,
        ACTIVE_EVENTS,
        Function.TOP,
        field="hour",
        window=90,
    )
    for w in (7, 30):
        yield agg(
            f"add_to_cart_{w}d",
            f"近{w}天加购次数",
            f"Add-to-carts, last {w} days",
            BH,
            NUM,
            ["add_to_cart"],
            Function.COUNT,
            window=w,
        )
    yield agg(
        "checkouts_30d",
        "近30天结算次数",
        "Checkouts, last 30 days",
        BH,
        NUM,
        ["checkout"],
        Function.COUNT,
        window=30,
    )
    yield formula(
        "cart_abandoned_7d",
        "7天内加购未购",
        "Abandoned a cart in the last 7 days",
        BH,
        BOOL,
        "add_to_cart_7d > 0 and orders_count_7d == 0",
    )
    yield formula(
        "cart_abandon_rate_30d",
        "近30天弃购率",
        "Cart abandonment rate, last 30 days",
        BH,
        NUM,
        "round(greatest(1 - ratio(orders_count_30d, add_to_cart_30d), 0), 4)",
    )


def engagement() -> Iterator[TagDefinition]:
    for w in (30, 90, 365):
        yield agg(
            f"shares_{w}d",
            f"近{w}天分享次数",
            f"Shares, last {w} days",
            BH,
            NUM,
            ["share"],
            Function.COUNT,
            window=w,
        )
    for w in (30, 90):
        yield agg(
            f"checkins_{w}d",
            f"近{w}天签到次数",
            f"Check-ins, last {w} days",
            BH,
            NUM,
            ["checkin"],
            Function.COUNT,
            window=w,
        )
    yield agg(
        "max_checkin_streak_90d",
        "近90天最长连签",
        "Longest check-in streak, last 90 days",
        BH,
        NUM,
        ["checkin"],
        Function.MAX,
        field="properties.streak",
        window=90,
        unit="天",
    )
    yield agg(
        "last_checkin_streak",
        "最近连签天数",
        "Streak at the last check-in",
        BH,
        NUM,
        ["checkin"],
        Function.LAST_VALUE,
        field="properties.streak",
    )
    yield agg(
        "days_since_last_checkin",
        "距最近签到天数",
        "Days since last check-in",
        BH,
        NUM,
        ["checkin"],
        Function.DAYS_SINCE_LAST,
    )
    yield formula(
        "checkin_streak",
        "当前连签天数",
        "Current check-in streak",
        BH,
        NUM,
        "case(days_since_last_checkin <= 1, last_checkin_streak, 0)",
        unit="天",
    )
    yield agg(
        "reviews_365d",
        "近365天评价次数",
        "Reviews, last 365 days",
        BH,
        NUM,
        ["review"],
        Function.COUNT,
        window=365,
    )
    yield agg(
        "avg_rating_365d",
        "平均评分",
        "Average rating, last 365 days",
        BH,
        NUM,
        ["review"],
        Function.AVG,
        field="properties.rating",
        window=365,
    )
    yield agg(
        "referral_shares_365d",
        "近365天邀请分享次数",
        "Referral shares, last 365 days",
        BH,
        NUM,
        ["share"],
        Function.COUNT,
        window=365,
        where=[EventFilter(field="properties.content", op="=", value="referral")],
    )
    yield agg(
        "last_wecom_contact_event",
        "最近企微好友变动",
        "Last WeCom contact change",
        BH,
        STR,
        ("wecom_add_contact", "wecom_delete_contact"),
        Function.LAST_VALUE,
        field="name",
    )
    yield formula(
        "is_wecom_friend",
        "企微好友",
        "WeCom contact (added and not deleted)",
        BH,
        BOOL,
        "last_wecom_contact_event == 'wecom_add_contact'",
    )
    yield agg(
        "wecom_added_date",
        "添加企微日期",
        "Date added on WeCom",
        BH,
        DATE,
        ["wecom_add_contact"],
        Function.FIRST_TS,
    )
    yield agg(
        "wecom_staff",
        "专属导购",
        "WeCom staff member",
        BH,
        STR,
        ["wecom_add_contact"],
        Function.LAST_VALUE,
        field="properties.staff_id",
    )
    yield agg(
        "wecom_store",
        "归属门店",
        "Store of the WeCom staff member",
        BH,
        STR,
        ["wecom_add_contact"],
        Function.LAST_VALUE,
        field="properties.store_id",
    )
    yield agg(
        "groups_joined",
        "加入社群次数",
        "Customer groups joined",
        BH,
        NUM,
        ["group_join"],
        Function.COUNT,
    )
    yield agg(
        "groups_left",
        "退出社群次数",
        "Customer groups left",
        BH,
        NUM,
        ["group_leave"],
        Function.COUNT,
    )
    yield formula(
        "in_wecom_group",
        "在企微社群中",
        "In a WeCom customer group",
        BH,
        BOOL,
        "groups_joined > groups_left",
    )


def messaging() -> Iterator[TagDefinition]:
    for channel in MESSAGE_CHANNELS:
        zh = CHANNEL_ZH[channel]
        on = [EventFilter(field="channel", op="=", value=channel)]
        for step, step_zh in (("sent", "发送"), ("opened", "打开"), ("clicked", "点击")):
            yield agg(
                f"messages_{step}_{channel}_90d",
                f"近90天{zh}{step_zh}数",
                f"{channel} messages {step}, last 90 days",
                BH,
                NUM,
                [f"message_{step}"],
                Function.COUNT,
                window=90,
                where=on,
            )
        yield formula(
            f"open_rate_{channel}_90d",
            f"{zh}打开率",
            f"{channel} open rate, last 90 days",
            BH,
            NUM,
            f"round(ratio(messages_opened_{channel}_90d, messages_sent_{channel}_90d), 4)",
        )
        yield formula(
            f"click_rate_{channel}_90d",
            f"{zh}点击率",
            f"{channel} click rate, last 90 days",
            BH,
            NUM,
            f"round(ratio(messages_clicked_{channel}_90d, messages_sent_{channel}_90d), 4)",
        )
        yield agg(
            f"unsubscribed_{channel}",
            f"已退订{zh}",
            f"Unsubscribed from {channel}",
            R,
            BOOL,
            ["unsubscribe"],
            Function.EXISTS,
            where=on,
        )
    for step, step_zh in (("sent", "发送"), ("opened", "打开"), ("clicked", "点击")):
        yield agg(
            f"messages_{step}_90d",
            f"近90天消息{step_zh}数",
            f"Messages {step}, last 90 days",
            BH,
            NUM,
            [f"message_{step}"],
            Function.COUNT,
            window=90,
        )
    yield formula(
        "open_rate_90d",
        "消息打开率",
        "Message open rate, last 90 days",
        BH,
        NUM,
        "round(ratio(messages_opened_90d, messages_sent_90d), 4)",
    )
    yield formula(
        "click_rate_90d",
        "消息点击率",
        "Message click rate, last 90 days",
        BH,
        NUM,
        "round(ratio(messages_clicked_90d, messages_sent_90d), 4)",
    )
    yield agg(
        "preferred_channel",
        "偏好触达渠道",
        "Preferred channel (most opens and clicks, last 180 days)",
        P,
        STR,
        ("message_opened", "message_clicked"),
        Function.TOP,
        field="channel",
        window=180,
    )
    yield agg(
        "best_contact_hour",
        "最佳触达时段",
        "Best hour to contact (most opens and clicks, last 180 days)",
        P,
        STR,
        ("message_opened", "message_clicked"),
        Function.TOP,
        field="hour",
        window=180,
    )
    yield agg(
        "unsubscribed_channels",
        "已退订渠道",
        "Channels unsubscribed from",
        R,
        LIST,
        ["unsubscribe"],
        Function.TOP,
        field="channel",
        top=8,
    )
    yield agg(
        "complaints_365d",
        "近365天投诉次数",
        "Complaints, last 365 days",
        R,
        NUM,
        ["complaint"],
        Function.COUNT,
        window=365,
    )
    yield agg(
        "has_complained",
        "有投诉记录",
        "Has ever complained",
        R,
        BOOL,
        ["complaint"],
        Function.EXISTS,
    )


def rfm_and_lifecycle() -> Iterator[TagDefinition]:
    buyer = "orders_count_all > 0"
    yield formula(
        "rfm_r",
        "R值得分",
        "RFM recency score (1-5)",
        V,
        NUM,
        "ntile(days_since_last_order, 5, desc=True)",
        description="Quintile of days since the last order among buyers; 5 = most recent. "
        "Ties are broken by person id.",
    )
    yield formula(
        "rfm_f",
        "F值得分",
        "RFM frequency score (1-5)",
        V,
        NUM,
        f"ntile(orders_count_365d if {buyer} else None, 5)",
    )
    yield formula(
        "rfm_m",
        "M值得分",
        "RFM monetary score (1-5)",
        V,
        NUM,
        f"ntile(net_amount_365d if {buyer} else None, 5)",
    )
    yield formula("rfm_score", "RFM总分", "RFM score (R+F+M)", V, NUM, "rfm_r + rfm_f + rfm_m")
    yield formula(
        "rfm_segment",
        "RFM客户分群",
        "RFM segment",
        V,
        ENUM,
        "case(rfm_r is None, None, "
        "rfm_r >= 3 and rfm_f >= 3 and rfm_m >= 3, '重要价值客户', "
        "rfm_r >= 3 and rfm_f < 3 and rfm_m >= 3, '重要发展客户', "
        "rfm_r < 3 and rfm_f >= 3 and rfm_m >= 3, '重要保持客户', "
        "rfm_r < 3 and rfm_f < 3 and rfm_m >= 3, '重要挽留客户', "
        "rfm_r >= 3 and rfm_f >= 3, '一般价值客户', "
        "rfm_r >= 3, '一般发展客户', "
        "rfm_f >= 3, '一般保持客户', "
        "'一般挽留客户')",
        values=RFM_SEGMENTS,
        description="High means a score of 3 or more (the median quintile and above).",
    )
    yield formula(
        "rfm_group",
        "RFM运营分组",
        "RFM group",
        V,
        ENUM,
        "case(rfm_score is None, None, rfm_r <= 1, '流失', rfm_score >= 12, '高价值', "
        "rfm_r >= 3, '潜力', '一般')",
        values=("高价值", "潜力", "一般", "流失"),
    )
    yield formula(
        "lifecycle_stage",
        "生命周期阶段",
        "Lifecycle stage",
        L,
        ENUM,
        "case("
        "orders_count_all == 0 and days_since_last_active is None, 'prospect', "
        "days_since_last_active > 180 or (orders_count_all > 0 and days_since_last_order > 365),"
        " 'churned', "
        "days_since_last_active > 60, 'silent', "
        "orders_count_all == 0, 'prospect', "
        "orders_count_30d > 0 and days_since(last_order_date_before_30d) > 180, 'returned', "
        "days_since_first_order <= 30 and orders_count_all <= 1, 'new', "
        "orders_count_365d >= 3, 'mature', "
        "'growing')",
        values=LIFECYCLE_STAGES,
        cadence=Cadence.DAILY,
    )
    yield formula(
        "operations_stage",
        "运营阶段",
        "Operations stage (acquire, activate, retain, grow, value, churn prevention)",
        L,
        ENUM,
        "case(lifecycle_stage in ['silent', 'churned'], '流失预防', "
        "lifecycle_stage == 'prospect' and days_since_registration <= 30, '获客', "
        "lifecycle_stage == 'prospect', '激活', "
        "net_amount_365d >= 3000, '价值', "
        "orders_count_365d >= 2, '成长', "
        "'留存')",
        values=("获客", "激活", "留存", "成长", "价值", "流失预防"),
    )
    yield formula(
        "recency_band",
        "最近购买时间段",
        "Days since last order, banded",
        L,
        ENUM,
        "bucket(days_since_last_order, [31, 91, 181, 366], "
        "['30天内', '31-90天', '91-180天', '181-365天', '365天以上'])",
        values=("30天内", "31-90天", "91-180天", "181-365天", "365天以上"),
    )
    yield formula(
        "purchase_frequency_band",
        "购买频次段",
        "Orders in the last 365 days, banded",
        V,
        ENUM,
        "case(orders_count_365d == 0, '0次', orders_count_365d == 1, '1次', "
        "orders_count_365d <= 3, '2-3次', orders_count_365d <= 6, '4-6次', '7次及以上')",
        values=("0次", "1次", "2-3次", "4-6次", "7次及以上"),
    )
    yield formula(
        "no_login_30d",
        "30天未登录",
        "No login for 30 days",
        R,
        BOOL,
        "coalesce(days_since_last_login, 100000) >= 30",
    )
    yield formula(
        "repurchase_overdue",
        "超期未复购",
        "Overdue for repurchase (beyond 2 × own cycle)",
        R,
        BOOL,
        "days_since_last_order > 2 * avg_repurchase_interval",
    )
    yield formula(
        "churn_risk_score",
        "流失风险分",
        "Churn risk score (0-100)",
        R,
        NUM,
        "case(orders_count_all == 0, None, round(100 * clip(ratio(days_since_last_order, "
        "2 * coalesce(avg_repurchase_interval, 60)), 0, 1) * 0.7 + "
        "30 * clip(ratio(days_since_last_active, 90), 0, 1), 1))",
    )
    yield formula(
        "churn_risk_level",
        "流失风险等级",
        "Churn risk level",
        R,
        ENUM,
        "bucket(churn_risk_score, [40, 70], ['低', '中', '高'])",
        values=("低", "中", "高"),
    )
    yield formula(
        "tier",
        "会员等级",
        "Tier",
        V,
        ENUM,
        "case("
        "net_amount_365d >= 5000 and coalesce(avg_repurchase_interval, 100000) <= 15, '钻石', "
        "net_amount_365d >= 3000, '蓝宝石', "
        "net_amount_365d >= 1000, '白金', "
        "active_days_30d >= 3 or orders_count_365d > 0, '普通', "
        "'潜在')",
        values=TIERS,
    )
    yield formula(
        "is_vip", "VIP会员", "VIP (5+ repurchases a year)", V, BOOL, "repurchases_365d >= 5"
    )
    yield formula(
        "value_activity_quadrant",
        "价值活跃四象限",
        "LTV × activity quadrant",
        V,
        ENUM,
        "case(ltv_365d >= 1000 and active_days_30d >= 3, '高价值高活跃', "
        "ltv_365d >= 1000, '高价值低活跃', active_days_30d >= 3, '低价值高活跃', '低价值低活跃')",
        values=("高价值高活跃", "高价值低活跃", "低价值高活跃", "低价值低活跃"),
    )


def builtin_tags(categories: Sequence[str] = DEFAULT_CATEGORIES) -> list[TagDefinition]:
    """Every built-in tag, keys unique."""
    tags = [
        *demographics(),
        *purchases(categories),
        *promotions(),
        *activity(),
        *engagement(),
        *messaging(),
        *rfm_and_lifecycle(),
    ]
    return [t.model_copy(update={"track_history": t.track_history}) for t in tags]
