"""Reference data for the demo brand: catalogue, cities, calendar, daily rhythm.

The brand is 悦颜 (YUEYAN), a Chinese beauty/FMCG brand selling skincare, makeup, body care
and fragrance through its mini-program store, offline counters and store staff on WeCom.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from siyu.core import geo

BRAND = "悦颜 YUEYAN"

CATEGORIES = ("skincare", "makeup", "bodycare", "fragrance")
CATEGORY_NAMES_ZH = {
    "skincare": "护肤",
    "makeup": "彩妆",
    "bodycare": "身体护理",
    "fragrance": "香氛",
}
# Share of people whose main category this is.
CATEGORY_WEIGHTS = np.array([0.45, 0.25, 0.20, 0.10])
# Mean days between two purchases in a category, for a "regular" customer.
CATEGORY_CYCLE_DAYS = np.array([45.0, 60.0, 35.0, 120.0])

# (sku, name, category, price in yuan, popularity weight)
PRODUCTS: tuple[tuple[str, str, str, float, float], ...] = (
    ("SK001", "玻尿酸水润保湿精华 30ml", "skincare", 299.0, 10.0),
    ("SK002", "烟酰胺焕亮精华 30ml", "skincare", 329.0, 8.0),
    ("SK003", "氨基酸温和洁面乳 120g", "skincare", 89.0, 9.0),
    ("SK004", "神经酰胺修护面霜 50g", "skincare", 399.0, 6.0),
    ("SK005", "清透防晒乳 SPF50+ 50ml", "skincare", 159.0, 7.0),
    ("SK006", "补水保湿面膜 10片", "skincare", 129.0, 8.0),
    ("SK007", "胜肽紧致眼霜 15g", "skincare", 359.0, 4.0),
    ("SK008", "舒缓爽肤水 200ml", "skincare", 169.0, 6.0),
    ("SK009", "轻润保湿乳液 120ml", "skincare", 189.0, 5.0),
    ("SK010", "净澈卸妆油 200ml", "skincare", 149.0, 5.0),
    ("SK011", "A醇抗老精华 30ml", "skincare", 459.0, 3.0),
    ("SK012", "护肤旅行套装", "skincare", 199.0, 2.0),
    ("MU001", "丝绒雾面口红 #01 正红", "makeup", 169.0, 8.0),
    ("MU002", "丝绒雾面口红 #05 豆沙", "makeup", 169.0, 7.0),
    ("MU003", "水光唇釉 #12", "makeup", 149.0, 5.0),
    ("MU004", "轻薄气垫粉底 #象牙白", "makeup", 259.0, 6.0),
    ("MU005", "大地色九宫格眼影盘", "makeup", 219.0, 4.0),
    ("MU006", "纤长卷翘睫毛膏", "makeup", 129.0, 4.0),
    ("MU007", "防水极细眉笔", "makeup", 79.0, 5.0),
    ("MU008", "柔雾腮红", "makeup", 139.0, 3.0),
    ("MU009", "控油定妆散粉", "makeup", 159.0, 4.0),
    ("MU010", "保湿妆前乳", "makeup", 149.0, 3.0),
    ("BC001", "白茶香氛沐浴露 500ml", "bodycare", 79.0, 8.0),
    ("BC002", "烟酰胺美白身体乳 250ml", "bodycare", 99.0, 7.0),
    ("BC003", "玫瑰护手霜 50g", "bodycare", 49.0, 9.0),
    ("BC004", "氨基酸洗发水 500ml", "bodycare", 89.0, 6.0),
    ("BC005", "修护护发精油 100ml", "bodycare", 129.0, 4.0),
    ("BC006", "海盐身体磨砂膏 200g", "bodycare", 109.0, 3.0),
    ("FR001", "栀子花淡香水 30ml", "fragrance", 459.0, 5.0),
    ("FR002", "木质调淡香水 50ml", "fragrance", 659.0, 3.0),
    ("FR003", "香薰蜡烛 200g", "fragrance", 199.0, 4.0),
    ("FR004", "车载香薰", "fragrance", 129.0, 3.0),
    ("FR005", "香体喷雾 100ml", "fragrance", 149.0, 4.0),
)

SEARCH_KEYWORDS = (
    "保湿",
    "美白",
    "抗老",
    "口红",
    "防晒",
    "敏感肌",
    "香水",
    "面膜",
    "精华",
    "眼霜",
    "粉底",
    "卸妆",
    "祛痘",
    "身体乳",
    "礼盒",
    "双11",
    "小样",
    "控油",
)

# Where demo people live: every city of siyu.core.geo, with a weight (share of people).
CITY_WEIGHTS: dict[str, float] = {
    "上海": 6.0,
    "北京": 5.5,
    "广州": 4.0,
    "深圳": 4.0,
    "成都": 3.5,
    "杭州": 3.5,
    "重庆": 3.0,
    "西安": 2.2,
    "苏州": 2.4,
    "武汉": 2.6,
    "南京": 2.4,
    "天津": 2.0,
    "郑州": 2.0,
    "长沙": 2.2,
    "东莞": 1.6,
    "宁波": 1.5,
    "佛山": 1.4,
    "合肥": 1.5,
    "青岛": 1.6,
    "昆明": 1.3,
    "沈阳": 1.3,
    "济南": 1.3,
    "无锡": 1.2,
    "厦门": 1.2,
    "福州": 1.2,
    "温州": 1.1,
    "金华": 0.9,
    "哈尔滨": 1.1,
    "大连": 1.0,
    "贵阳": 1.0,
    "南宁": 1.0,
    "泉州": 0.9,
    "石家庄": 1.0,
    "长春": 0.9,
    "南昌": 0.9,
    "惠州": 0.8,
    "常州": 0.8,
    "嘉兴": 0.7,
    "徐州": 0.7,
    "南通": 0.7,
    "太原": 0.8,
    "保定": 0.7,
    "珠海": 0.6,
    "中山": 0.6,
    "兰州": 0.6,
    "临沂": 0.6,
    "潍坊": 0.6,
    "烟台": 0.6,
    "绍兴": 0.6,
    "台州": 0.6,
    "海口": 0.5,
    "乌鲁木齐": 0.5,
    "洛阳": 0.5,
    "廊坊": 0.5,
    "汕头": 0.5,
    "湖州": 0.5,
    "咸阳": 0.5,
    "盐城": 0.5,
    "济宁": 0.5,
    "呼和浩特": 0.5,
    "扬州": 0.5,
    "赣州": 0.5,
    "阜阳": 0.4,
    "桂林": 0.4,
    "九江": 0.35,
    "宜昌": 0.35,
    "襄阳": 0.35,
    "岳阳": 0.3,
    "常德": 0.3,
    "蚌埠": 0.3,
    "株洲": 0.3,
    "绵阳": 0.3,
    "遵义": 0.3,
    "大理": 0.25,
    "日照": 0.25,
    "丽水": 0.25,
    "黄山": 0.15,
    "三亚": 0.15,
    "延边": 0.12,
    "张家界": 0.12,
    "丽江": 0.12,
    "拉萨": 0.1,
}
# (city, province, tier, weight)
CITIES: tuple[tuple[str, str, str, float], ...] = tuple(
    (city, province, tier, CITY_WEIGHTS[city]) for city, province, tier in geo.CITIES
)

# Registration channels: how a person first joined the brand's private domain.
REGISTRATION_CHANNELS = ("wecom_qr", "miniprogram", "livestream", "store_pos", "referral")
REGISTRATION_WEIGHTS = np.array([0.30, 0.30, 0.12, 0.20, 0.08])
REGISTRATION_NAMES_ZH = {
    "wecom_qr": "导购企微二维码",
    "miniprogram": "小程序",
    "livestream": "视频号直播",
    "store_pos": "门店收银",
    "referral": "老带新",
}

# Customer types drive cadence, spend and loyalty.
CUSTOMER_TYPES = ("loyal", "regular", "occasional", "one_off", "deal_seeker")
CUSTOMER_TYPE_WEIGHTS = np.array([0.12, 0.33, 0.30, 0.15, 0.10])
# Multiplier on the category cycle (smaller = buys more often).
CYCLE_MULTIPLIER = np.array([0.8, 1.15, 2.0, 1.0, 1.5])
# Mean days from registration (or window start) to churn.
MEAN_LIFETIME_DAYS = np.array([1400.0, 420.0, 170.0, 45.0, 260.0])
# Browsing sessions per active day.
SESSION_RATE = np.array([0.05, 0.025, 0.014, 0.012, 0.022])
# Chance of an extra order in a promotion window (618, 双11) while active.
PROMO_BUY_PROBABILITY = np.array([0.45, 0.25, 0.12, 0.0, 0.75])
# Share of orders paid with a coupon.
COUPON_SHARE = np.array([0.2, 0.2, 0.15, 0.1, 0.7])

# Share of activity by local hour (0..23): lunch and late-evening peaks.
HOURLY_PROFILE = np.array(
    [1.2, 0.6, 0.3, 0.2, 0.15, 0.2, 0.5, 1.2, 2.2, 3.0, 3.5, 3.8,
     4.6, 4.4, 3.6, 3.4, 3.5, 3.8, 4.2, 5.0, 6.2, 7.0, 6.5, 3.5]
)  # fmt: skip
# Relative activity by weekday, Monday = 0.
WEEKDAY_PROFILE = np.array([0.9, 0.9, 0.95, 0.95, 1.05, 1.2, 1.15])

# Chinese New Year's day; the week around it is quiet (logistics stop, family time).
SPRING_FESTIVAL = {
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}


def promo_windows(year: int) -> list[tuple[date, date]]:
    """The two big shopping festivals: 618 (June 1-18) and 双11 (Oct 20 - Nov 11), inclusive."""
    return [(date(year, 6, 1), date(year, 6, 18)), (date(year, 10, 20), date(year, 11, 11))]
